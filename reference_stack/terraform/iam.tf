# Least-privilege roles.
#
#   <prefix>-events-role    dynamodb:Query/Scan/GetItem/PutItem on the table, its own log group
#   <prefix>-search-role    es:ESHttpPost on <domain>/<index>/_search, its own log group
#   <prefix>-requester      execute-api:Invoke on exactly the routes (the load generator's identity)
#   <prefix>-denied         nothing: the identity the security check expects to be refused
#   <prefix>-search-admin   es:ESHttpGet/Head/Post/Put/Delete on <domain>/<index> and
#                           <domain>/<index>/*: create the index and load the corpus (POST <index>/_bulk)
#
# The OpenSearch domain policy (opensearch.tf) grants the same, from the same locals: within one
# account IAM allows a request when the identity policy *or* the resource policy allows it, so a
# broader domain policy would widen these roles (docs/aws-behaviour.md §9.3).
# tests/unit/test_terraform_policies.py evaluates both together for every role and action.

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Who may assume the requester and search-admin roles: the description's principals, or by
  # default this account (then an identity policy allowing sts:AssumeRole is needed as well).
  trusted_principal_arns = length(var.requester.trusted_principal_arns) > 0 ? var.requester.trusted_principal_arns : [
    "arn:${local.partition}:iam::${local.account_id}:root"
  ]

  # arn:aws:execute-api:<region>:<account>:<api-id>/$default/GET/events (docs/aws-behaviour.md §1.3).
  # The stage reference orders the policy after the stage; its name is local.stage_name.
  route_arns = [
    for key, route in local.route_parts :
    "${aws_apigatewayv2_api.http.execution_arn}/${aws_apigatewayv2_stage.default.name}/${route.method}${route.arn_path}"
  ]

  # The same scopes as loadcheck/core/description.py (search_function_resources,
  # search_admin_resources) gives the local stack.
  search_function_actions   = ["es:ESHttpPost"]
  search_function_resources = ["${aws_opensearch_domain.search.arn}/${var.search.index}/_search"]
  search_admin_actions      = ["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete"]
  search_admin_resources = [
    "${aws_opensearch_domain.search.arn}/${var.search.index}",
    "${aws_opensearch_domain.search.arn}/${var.search.index}/*",
  ]
}

# ---------------------------------------------------------------------------------------------
# Function roles

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = var.functions

  name               = local.function_role_names[each.key]
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

data "aws_iam_policy_document" "function_logs" {
  for_each = var.functions

  statement {
    sid       = "WriteOwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
  }
}

data "aws_iam_policy_document" "events_data" {
  statement {
    sid       = "EventTable"
    actions   = ["dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.events.arn]
  }
}

data "aws_iam_policy_document" "search_data" {
  statement {
    sid       = "SearchIndex"
    actions   = local.search_function_actions
    resources = local.search_function_resources
  }
}

locals {
  # Each function's data permissions beyond its logs; a function not listed only writes logs.
  function_data_policies = {
    (var.table.function)  = data.aws_iam_policy_document.events_data.json
    (var.search.function) = data.aws_iam_policy_document.search_data.json
  }
}

data "aws_iam_policy_document" "function" {
  for_each = var.functions

  source_policy_documents = compact([
    data.aws_iam_policy_document.function_logs[each.key].json,
    lookup(local.function_data_policies, each.key, ""),
  ])
}

resource "aws_iam_role_policy" "function" {
  for_each = var.functions

  name   = "least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json
}

# ---------------------------------------------------------------------------------------------
# Requester: the identity that signs load-test requests (SigV4, service execute-api)

data "aws_iam_policy_document" "trusted_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = local.trusted_principal_arns
    }
  }
}

resource "aws_iam_role" "requester" {
  name                 = "${var.name_prefix}-requester"
  assume_role_policy   = data.aws_iam_policy_document.trusted_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "requester" {
  statement {
    sid       = "InvokeRoutes"
    actions   = ["execute-api:Invoke"]
    resources = local.route_arns
  }
}

resource "aws_iam_role_policy" "requester" {
  name   = "invoke-routes"
  role   = aws_iam_role.requester.id
  policy = data.aws_iam_policy_document.requester.json
}

# Denied: a signed, valid identity without execute-api:Invoke. API Gateway must refuse it with
# 403 (docs/aws-behaviour.md §1.2); the local stack's `denied` identity plays the same part.
resource "aws_iam_role" "denied" {
  name                 = "${var.name_prefix}-denied"
  assume_role_policy   = data.aws_iam_policy_document.trusted_assume.json
  max_session_duration = 3600
}

# ---------------------------------------------------------------------------------------------
# Search admin: creates the index and loads the corpus (signed with service es)

resource "aws_iam_role" "search_admin" {
  name                 = "${var.name_prefix}-search-admin"
  assume_role_policy   = data.aws_iam_policy_document.trusted_assume.json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "search_admin" {
  statement {
    sid       = "SearchIndexHttp"
    actions   = local.search_admin_actions
    resources = local.search_admin_resources
  }
}

resource "aws_iam_role_policy" "search_admin" {
  name   = "search-index-http"
  role   = aws_iam_role.search_admin.id
  policy = data.aws_iam_policy_document.search_admin.json
}
