# The HTTP API: Lambda proxy integrations (payload 2.0), every route authorized with AWS_IAM,
# the $default stage with auto-deploy, explicit throttling and JSON access logs.

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name_prefix}-http-api"
  protocol_type = "HTTP"

  # Clients reach the API only on the custom domain (docs/aws-behaviour.md §6).
  disable_execute_api_endpoint = var.disable_execute_api_endpoint

  # API Gateway answers preflights itself and ignores CORS headers from the integration
  # (docs/aws-behaviour.md §5).
  cors_configuration {
    allow_origins     = var.cors.allow_origins
    allow_methods     = var.cors.allow_methods
    allow_headers     = var.cors.allow_headers
    expose_headers    = var.cors.expose_headers
    max_age           = var.cors.max_age
    allow_credentials = var.cors.allow_credentials
  }
}

resource "aws_apigatewayv2_integration" "function" {
  for_each = var.functions

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.this[each.key].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_s * 1000
}

resource "aws_apigatewayv2_route" "this" {
  for_each = var.routes

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.function[each.value].id}"
  authorization_type = "AWS_IAM"

  lifecycle {
    precondition {
      condition     = contains(keys(var.functions), each.value)
      error_message = "The route \"${each.key}\" names function \"${each.value}\", which is not a key of functions."
    }
  }
}

resource "aws_cloudwatch_log_group" "access" {
  name              = var.access_log.log_group
  retention_in_days = var.access_log.retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = local.stage_name
  auto_deploy = true

  # Both limits always set: default_route_settings without them means 0/0, and every request
  # is answered 429 (docs/aws-behaviour.md §4).
  default_route_settings {
    throttling_rate_limit    = var.throttle.rate_limit
    throttling_burst_limit   = var.throttle.burst_limit
    detailed_metrics_enabled = true
  }

  dynamic "route_settings" {
    for_each = var.route_throttle

    content {
      route_key                = route_settings.key
      throttling_rate_limit    = route_settings.value.rate_limit
      throttling_burst_limit   = route_settings.value.burst_limit
      detailed_metrics_enabled = true
    }
  }

  # HTTP APIs deliver access logs through a CloudWatch Logs log delivery, not an account-level
  # role (docs/aws-behaviour.md §2.4). The format is the description's field map, one JSON line.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format          = jsonencode(var.access_log.format)
  }

  lifecycle {
    precondition {
      condition     = alltrue([for key in keys(var.route_throttle) : contains(keys(var.routes), key)])
      error_message = "Every key of route_throttle must be a key of routes."
    }
  }

  # route_settings name routes, which must exist first.
  depends_on = [aws_apigatewayv2_route.this]
}

# API Gateway may invoke each function only for the routes that target it.
resource "aws_lambda_permission" "api" {
  for_each = local.route_parts

  statement_id  = each.value.statement_id
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.value.function].function_name
  principal     = "apigateway.amazonaws.com"
  # Any stage (`*`); method and path tie the permission to this route.
  source_arn = "${aws_apigatewayv2_api.http.execution_arn}/*/${each.value.method}${each.value.path}"
}
