# The OpenSearch domain behind GET/POST /search, reached only over HTTPS (TLS >= 1.2) and signed
# with SigV4 service `es` (docs/aws-behaviour.md §9.1). Its access policy admits the search function's
# role (read) and the search-admin role (index and corpus), on `<domain arn>/*`: without the
# trailing `/*` the policy matches no index or API path (docs/aws-behaviour.md §9.3).

resource "aws_opensearch_domain" "search" {
  domain_name    = var.search.domain_name
  engine_version = var.search.engine_version

  cluster_config {
    instance_type  = var.search.instance_type
    instance_count = var.search.instance_count
    # One AZ: a load-test stack, not a production cluster (see .checkov.yaml).
    zone_awareness_enabled = false
  }

  ebs_options {
    ebs_enabled = true
    volume_type = "gp3"
    volume_size = var.search.volume_size_gb
  }

  encrypt_at_rest {
    enabled = true
  }

  node_to_node_encryption {
    enabled = true
  }

  domain_endpoint_options {
    enforce_https       = true
    tls_security_policy = "Policy-Min-TLS-1-2-2019-07"
  }

  log_publishing_options {
    log_type                 = "ES_APPLICATION_LOGS"
    cloudwatch_log_group_arn = aws_cloudwatch_log_group.search_domain.arn
  }

  depends_on = [aws_cloudwatch_log_resource_policy.search_domain]
}

data "aws_iam_policy_document" "search_domain_access" {
  statement {
    sid       = "SearchFunctionReads"
    actions   = ["es:ESHttpGet", "es:ESHttpPost"]
    resources = [local.search_domain_resource]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["search"].arn]
    }
  }

  statement {
    sid       = "AdminLoadsCorpus"
    actions   = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
    resources = [local.search_domain_resource]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.search_admin.arn]
    }
  }
}

resource "aws_opensearch_domain_policy" "search" {
  domain_name     = aws_opensearch_domain.search.domain_name
  access_policies = data.aws_iam_policy_document.search_domain_access.json
}

# Application (error) logs of the domain, so a failing cluster can be diagnosed.
resource "aws_cloudwatch_log_group" "search_domain" {
  name              = "/aws/opensearch/${var.search.domain_name}/application"
  retention_in_days = var.access_log.retention_days
}

data "aws_iam_policy_document" "search_domain_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.search_domain.arn}:*"]

    principals {
      type        = "Service"
      identifiers = ["es.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_cloudwatch_log_resource_policy" "search_domain" {
  policy_name     = "${var.name_prefix}-opensearch-logs"
  policy_document = data.aws_iam_policy_document.search_domain_logs.json
}
