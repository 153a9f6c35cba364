# Names derived from the description alone (no resource attributes), so the offline tests can
# evaluate them with real Terraform and compare them with loadcheck/core/description.py, which
# derives the same names for the local stack.

locals {
  # The $default stage: served at the root of the custom domain (docs/aws-behaviour.md §6).
  stage_name = "$default"

  function_names      = { for key, _ in var.functions : key => "${var.name_prefix}-${key}" }
  function_role_names = { for key, name in local.function_names : key => "${name}-role" }
  function_log_groups = { for key, name in local.function_names : key => "/aws/lambda/${name}" }

  # Route key "GET /events" -> its parts, the Lambda permission's statement id, and the
  # execute-api ARN suffix <stage>/<METHOD><path> (docs/aws-behaviour.md §1.3).
  route_parts = {
    for key, function in var.routes : key => {
      method       = split(" ", key)[0]
      path         = split(" ", key)[1]
      function     = function
      statement_id = "AllowApiGateway-${split(" ", key)[0]}-${replace(trim(split(" ", key)[1], "/"), "/[^A-Za-z0-9_-]/", "_")}"
      # IAM authorizes the path a request was sent to: each path variable is a `*` in the policy.
      arn_path   = replace(split(" ", key)[1], "/\\{[A-Za-z0-9_]+\\+?\\}/", "*")
      arn_suffix = "${local.stage_name}/${split(" ", key)[0]}${replace(split(" ", key)[1], "/\\{[A-Za-z0-9_]+\\+?\\}/", "*")}"
    }
  }
}
