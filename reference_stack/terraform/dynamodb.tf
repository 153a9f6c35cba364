# The event table: hash key `date`, range key `time` (both strings), PROVISIONED 1/1 by default so
# that a modest load finds the capacity limit (docs/aws-behaviour.md §7).
resource "aws_dynamodb_table" "events" {
  name         = var.table.name
  billing_mode = var.table.billing_mode
  hash_key     = var.table.hash_key
  range_key    = var.table.range_key

  # Capacity applies to PROVISIONED tables only; PAY_PER_REQUEST must leave it unset.
  read_capacity  = var.table.billing_mode == "PROVISIONED" ? var.table.read_capacity : null
  write_capacity = var.table.billing_mode == "PROVISIONED" ? var.table.write_capacity : null

  attribute {
    name = var.table.hash_key
    type = "S"
  }

  attribute {
    name = var.table.range_key
    type = "S"
  }

  point_in_time_recovery {
    enabled = var.table.point_in_time_recovery
  }

  # Encrypted with the AWS-managed key aws/dynamodb (no customer key to pay for and manage).
  server_side_encryption {
    enabled = true
  }
}
