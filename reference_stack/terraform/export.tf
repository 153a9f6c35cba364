# The bucket DynamoDB exports the table to, so the dynamodb_contents check reads a point-in-time
# snapshot instead of the table: an export consumes none of the table's capacity
# (docs/aws-behaviour.md §7.7). Private, encrypted, versioned, and emptied by a lifecycle rule:
# exports are evidence for a check, kept export_expire_days. The local stack provisions the same
# bucket (reference_stack/local/provision.py, provision_export_bucket).

locals {
  # The name the local stack derives too (loadcheck/core/description.py, export_bucket).
  export_bucket_name = "${var.name_prefix}-exports-${local.account_id}"
  export_expire_days = 7
}

resource "aws_s3_bucket" "exports" {
  bucket = local.export_bucket_name
  # Teardown (`terraform destroy`) removes the bucket with the exports still in it.
  force_destroy = true
}

resource "aws_s3_bucket_public_access_block" "exports" {
  bucket = aws_s3_bucket.exports.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "exports" {
  bucket = aws_s3_bucket.exports.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "exports" {
  bucket = aws_s3_bucket.exports.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "exports" {
  bucket = aws_s3_bucket.exports.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "exports" {
  bucket = aws_s3_bucket.exports.id

  rule {
    id     = "expire-exports"
    status = "Enabled"

    filter {}

    expiration {
      days = local.export_expire_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Only over TLS. DynamoDB writes an export with the permissions of whoever requested it.
resource "aws_s3_bucket_policy" "exports" {
  bucket = aws_s3_bucket.exports.id
  policy = data.aws_iam_policy_document.exports_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.exports]
}

data "aws_iam_policy_document" "exports_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.exports.arn, "${aws_s3_bucket.exports.arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
