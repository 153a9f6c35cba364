# What `loadcheck run --target aws` reads through `terraform output -json`
# (loadcheck/core/aws_target.py turns these into the keys of the local stack's stack.json).

output "endpoint_url" {
  description = "Base URL of the API on its custom domain."
  value       = "https://${aws_apigatewayv2_domain_name.api.domain_name}"
}

output "domain" {
  description = "The API's custom domain name."
  value       = aws_apigatewayv2_domain_name.api.domain_name
}

output "region" {
  description = "Region of every resource, and the SigV4 signing region."
  value       = var.region
}

output "account_id" {
  description = "The AWS account the stack lives in."
  value       = local.account_id
}

output "api_id" {
  description = "The HTTP API's id."
  value       = aws_apigatewayv2_api.http.id
}

output "execute_api_arn" {
  description = "arn:aws:execute-api:<region>:<account>:<api-id>; route ARNs are <this>/$default/<METHOD><path>."
  value       = aws_apigatewayv2_api.http.execution_arn
}

output "table_name" {
  description = "The DynamoDB event table."
  value       = aws_dynamodb_table.events.name
}

output "access_log_group" {
  description = "CloudWatch Logs group of the $default stage's access logs."
  value       = aws_cloudwatch_log_group.access.name
}

output "lambda_log_groups" {
  description = "Function key to its CloudWatch Logs group."
  value       = { for key, group in aws_cloudwatch_log_group.lambda : key => group.name }
}

output "function_names" {
  description = "Function key to the deployed function name."
  value       = { for key, function in aws_lambda_function.this : key => function.function_name }
}

output "requester_role_arn" {
  description = "Role the load generator assumes to sign requests (execute-api:Invoke on exactly the routes)."
  value       = aws_iam_role.requester.arn
}

output "denied_role_arn" {
  description = "Role with no permissions: signed requests from it must be refused (security check)."
  value       = aws_iam_role.denied.arn
}

output "search_admin_role_arn" {
  description = "Role that may create the search index and load the corpus."
  value       = aws_iam_role.search_admin.arn
}

output "search_endpoint" {
  description = "HTTPS endpoint of the OpenSearch domain."
  value       = "https://${aws_opensearch_domain.search.endpoint}"
}

output "search_index" {
  description = "The index the search function queries."
  value       = var.search.index
}

output "routes" {
  description = "Route keys of the HTTP API, e.g. \"GET /events\"."
  value       = sort(keys(aws_apigatewayv2_route.this))
}

output "export_bucket" {
  description = "S3 bucket the dynamodb_contents check exports the table to (no table capacity consumed)."
  value       = aws_s3_bucket.exports.bucket
}
