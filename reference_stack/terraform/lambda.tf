# The Lambda functions of the description, named <name_prefix>-<key>; table.function reads and
# writes the table, search.function queries the index.
#
# Each function's zip holds the whole handlers directory at its root, so the handler
# "events.handler" is module events.py, function handler, exactly as the local Lambda service
# runs it from reference_stack/handlers.

locals {
  handlers_dir = "${path.module}/${var.handlers_dir}"

  # What each function needs to find its backend, merged over the description's environment.
  function_backend_env = {
    (var.table.function) = {
      TABLE_NAME = aws_dynamodb_table.events.name
    }
    (var.search.function) = {
      SEARCH_ENDPOINT = "https://${aws_opensearch_domain.search.endpoint}"
      SEARCH_INDEX    = var.search.index
    }
  }
}

data "archive_file" "handlers" {
  for_each = var.functions

  type        = "zip"
  source_dir  = local.handlers_dir
  output_path = "${path.module}/build/${each.key}.zip"
  # A fixed mode keeps the zip, and so source_code_hash, the same on every machine.
  output_file_mode = "0644"
  excludes         = ["__pycache__", "tests"]
}

resource "aws_cloudwatch_log_group" "lambda" {
  for_each = var.functions

  name              = local.function_log_groups[each.key]
  retention_in_days = each.value.log_retention_days
}

resource "aws_lambda_function" "this" {
  for_each = var.functions

  function_name = local.function_names[each.key]
  role          = aws_iam_role.function[each.key].arn
  handler       = each.value.handler
  runtime       = each.value.runtime
  architectures = ["arm64"]

  filename         = data.archive_file.handlers[each.key].output_path
  source_code_hash = data.archive_file.handlers[each.key].output_base64sha256

  memory_size = each.value.memory_mb
  timeout     = each.value.timeout_s
  # null (the description's default): unreserved, sharing the account's concurrency. A reservation
  # fails on accounts whose quota is 10 or 50, where the whole quota must stay unreserved
  # (docs/aws-behaviour.md §8.6).
  reserved_concurrent_executions = each.value.reserved_concurrency

  environment {
    variables = merge(each.value.environment, lookup(local.function_backend_env, each.key, {}))
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.lambda[each.key].name
  }

  # The log group must exist (with its retention) before the first invocation creates it.
  depends_on = [
    aws_cloudwatch_log_group.lambda,
    aws_iam_role_policy.function,
  ]
}
