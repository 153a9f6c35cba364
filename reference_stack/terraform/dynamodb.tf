# The event table: keys, their types and capacity from the description (the reference stack: hash
# key `date`, range key `time`, both strings), PROVISIONED 1/1 by default so
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
    type = var.table.hash_key_type
  }

  attribute {
    name = var.table.range_key
    type = var.table.range_key_type
  }

  point_in_time_recovery {
    enabled = var.table.point_in_time_recovery
  }

  # Encrypted with the AWS-managed key aws/dynamodb (no customer key to pay for and manage).
  server_side_encryption {
    enabled = true
  }

  lifecycle {
    precondition {
      condition     = contains(keys(var.functions), var.table.function) && contains(keys(var.functions), var.search.function)
      error_message = "The table.function and search.function must each name a key of functions."
    }
  }
}
