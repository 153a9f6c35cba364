# One variable per top-level key of stack.auto.tfvars.json, the single description of the stack
# that loadcheck/core/description.py also reads for the local emulation. The validations here mirror
# description.py, so a value the local stack refuses is refused by `terraform plan` too.
#
# Your own values (domain, hosted zone, region, trusted principals) go in user.auto.tfvars.json
# beside it: git-ignored, loaded after stack.auto.tfvars.json (Terraform reads *.auto.tfvars.json in
# lexical order of file names), each key replacing the tracked one whole. The tracked file keeps the
# local stack's placeholders under .test, which the validations below refuse for AWS.

variable "region" {
  description = "AWS region of every resource (the ACM certificate of a REGIONAL domain must be in it too)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "The region must be an AWS region name like us-east-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name: functions are <name_prefix>-<key>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name_prefix))
    error_message = "The name_prefix must be 1-31 characters of lower-case letters, digits and '-', starting with a letter."
  }
}

variable "domain_name" {
  description = "The API's custom domain (clients call https://<domain_name>/...)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9-]+\\.)+[a-z0-9-]+$", var.domain_name))
    error_message = "The domain_name must be a lower-case DNS name like events.example.com."
  }

  validation {
    # .test is reserved (RFC 6761): no public delegation, so ACM can never validate the certificate.
    condition     = !endswith(var.domain_name, ".test")
    error_message = "The domain_name is the local stack's placeholder (a .test name ACM cannot validate): set \"domain_name\" and \"hosted_zone_name\" in reference_stack/terraform/user.auto.tfvars.json (git-ignored; copy user.auto.tfvars.json.example)."
  }
}

variable "hosted_zone_name" {
  description = "The public Route 53 hosted zone that holds domain_name (certificate validation and the alias record go there)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9-]+\\.)+[a-z0-9-]+$", var.hosted_zone_name))
    error_message = "The hosted_zone_name must be a DNS zone name like example.com (no trailing dot)."
  }

  validation {
    condition     = !endswith(var.hosted_zone_name, ".test") && var.hosted_zone_name != "test"
    error_message = "The hosted_zone_name is the local stack's placeholder (a .test zone cannot be delegated publicly): set \"hosted_zone_name\" (your public Route 53 zone) in reference_stack/terraform/user.auto.tfvars.json (git-ignored; copy user.auto.tfvars.json.example)."
  }
}

variable "disable_execute_api_endpoint" {
  description = "Turn off https://<api-id>.execute-api.<region>.amazonaws.com so only the custom domain answers (docs/aws-behaviour.md §6)."
  type        = bool
}

variable "table" {
  description = "The DynamoDB event table."
  type = object({
    name                   = string
    hash_key               = string
    range_key              = string
    billing_mode           = string
    read_capacity          = number
    write_capacity         = number
    point_in_time_recovery = optional(bool, true)
    hash_key_type          = optional(string, "S") # S, N or B
    range_key_type         = optional(string, "S")
    function               = optional(string, "events") # the function that reads and writes the table
  })

  validation {
    condition     = contains(["PROVISIONED", "PAY_PER_REQUEST"], var.table.billing_mode)
    error_message = "The table.billing_mode must be PROVISIONED or PAY_PER_REQUEST."
  }

  validation {
    condition = var.table.billing_mode != "PROVISIONED" || (
      var.table.read_capacity >= 1 && var.table.write_capacity >= 1 &&
      floor(var.table.read_capacity) == var.table.read_capacity &&
      floor(var.table.write_capacity) == var.table.write_capacity
    )
    error_message = "A PROVISIONED table needs whole-number table.read_capacity and table.write_capacity of at least 1."
  }

  validation {
    condition     = contains(["S", "N", "B"], var.table.hash_key_type) && contains(["S", "N", "B"], var.table.range_key_type) && var.table.hash_key != var.table.range_key
    error_message = "The table.hash_key_type and table.range_key_type must be S, N or B, and the two keys must differ."
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.table.name))
    error_message = "The table.name must be 3-255 characters of letters, digits, '_', '-' and '.'."
  }
}

variable "functions" {
  description = "The Lambda functions by key; table.function and search.function name two of them."
  type = map(object({
    handler              = string
    runtime              = string
    memory_mb            = number
    timeout_s            = number
    reserved_concurrency = optional(number) # null: unreserved
    log_retention_days   = number
    environment          = optional(map(string), {})
  }))

  validation {
    condition     = alltrue([for f in values(var.functions) : can(regex("^[A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z_][A-Za-z0-9_]*$", f.handler))])
    error_message = "Every functions.<key>.handler must be module.function, e.g. events.handler."
  }

  validation {
    # python3.12 or newer: the runtime the handlers are written and tested for.
    condition = alltrue([
      for f in values(var.functions) :
      can(regex("^python3\\.[0-9]+$", f.runtime)) && try(tonumber(split(".", f.runtime)[1]) >= 12, false)
    ])
    error_message = "Every functions.<key>.runtime must be python3.12 or newer, e.g. python3.12."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.memory_mb >= 128 && f.memory_mb <= 10240 && floor(f.memory_mb) == f.memory_mb])
    error_message = "Every functions.<key>.memory_mb must be a whole number from 128 to 10240 (Lambda's range)."
  }

  validation {
    condition     = alltrue([for f in values(var.functions) : f.timeout_s >= 1 && f.timeout_s <= 900 && floor(f.timeout_s) == f.timeout_s])
    error_message = "Every functions.<key>.timeout_s must be a whole number of seconds from 1 to 900 (Lambda's range)."
  }

  validation {
    # null (the default) leaves the function unreserved: a reservation must leave the account's
    # minimum unreserved concurrency free, which accounts with a quota of 10 or 50 cannot
    # (docs/aws-behaviour.md §8.6). Reserved concurrency 0 would throttle every invocation.
    condition = alltrue([
      for f in values(var.functions) :
      try(f.reserved_concurrency >= 1 && floor(f.reserved_concurrency) == f.reserved_concurrency, f.reserved_concurrency == null)
    ])
    error_message = "Every functions.<key>.reserved_concurrency must be null (unreserved) or a whole number of at least 1 (0 throttles every call)."
  }

  validation {
    condition = alltrue([
      for f in values(var.functions) :
      contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], f.log_retention_days)
    ])
    error_message = "Every functions.<key>.log_retention_days must be a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "routes" {
  description = "Route key (\"GET /events\") to function key. Every route is authorized with AWS_IAM."
  type        = map(string)

  validation {
    condition     = length(var.routes) > 0 && alltrue([for k in keys(var.routes) : can(regex("^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /[A-Za-z0-9._~/{}+-]*$", k))])
    error_message = "Every routes key must be a route key like \"GET /events\" (method, one space, path)."
  }
}

variable "throttle" {
  description = "Stage-wide throttling of the $default stage (default_route_settings)."
  type = object({
    rate_limit  = number
    burst_limit = number
  })

  validation {
    # Both must be set and positive: default_route_settings without them sends 0/0 and every
    # request gets 429 (docs/aws-behaviour.md §4, terraform-aws-apigateway-v2#59).
    condition     = var.throttle.rate_limit > 0 && var.throttle.burst_limit > 0 && floor(var.throttle.burst_limit) == var.throttle.burst_limit
    error_message = "The throttle.rate_limit must be > 0 and throttle.burst_limit a whole number > 0: 0/0 rejects every request with 429."
  }
}

variable "route_throttle" {
  description = "Per-route throttling overriding the stage defaults, by route key."
  type = map(object({
    rate_limit  = number
    burst_limit = number
  }))
  default = {}

  validation {
    condition     = alltrue([for t in values(var.route_throttle) : t.rate_limit > 0 && t.burst_limit > 0 && floor(t.burst_limit) == t.burst_limit])
    error_message = "Every route_throttle.<route>.rate_limit must be > 0 and burst_limit a whole number > 0: 0/0 rejects every request with 429."
  }
}

variable "payload_limit_bytes" {
  description = "Request payload limit. On AWS it is the fixed 10 MB HTTP API quota and configures nothing; the local gateway enforces this value."
  type        = number

  validation {
    condition     = var.payload_limit_bytes > 0 && var.payload_limit_bytes <= 10485760
    error_message = "The payload_limit_bytes must be from 1 to 10485760: HTTP APIs accept at most 10 MB and the quota cannot be raised."
  }
}

variable "integration_timeout_s" {
  description = "Lambda integration timeout of the HTTP API, in seconds."
  type        = number

  validation {
    condition     = var.integration_timeout_s >= 1 && var.integration_timeout_s <= 30
    error_message = "The integration_timeout_s must be from 1 to 30: HTTP API integrations time out after at most 30 seconds."
  }
}

variable "cors" {
  description = "CORS configuration of the HTTP API (API Gateway answers preflights itself, docs/aws-behaviour.md §5)."
  type = object({
    allow_origins     = list(string)
    allow_methods     = list(string)
    allow_headers     = list(string)
    expose_headers    = list(string)
    max_age           = number
    allow_credentials = bool
  })

  validation {
    condition     = var.cors.max_age >= -1 && var.cors.max_age <= 86400
    error_message = "The cors.max_age must be from -1 to 86400 seconds."
  }
}

variable "access_log" {
  description = "JSON access logs of the $default stage: log group, retention, field name to $context variable."
  type = object({
    log_group      = string
    retention_days = number
    format         = map(string)
  })

  validation {
    # Outside /aws/vendedlogs/, API Gateway adds the group to the account's CloudWatch Logs resource
    # policy, whose size limit fails stage creation in accounts with many APIs (docs/aws-behaviour.md §2.5).
    condition     = startswith(var.access_log.log_group, "/aws/vendedlogs/")
    error_message = "The access_log.log_group must start with /aws/vendedlogs/ (e.g. /aws/vendedlogs/apigateway/loadcheck-http-api): other names grow the account's log resource policy past its size limit."
  }

  validation {
    condition     = anytrue([for v in values(var.access_log.format) : contains(["$context.requestId", "$context.extendedRequestId"], v)])
    error_message = "The access_log.format must include \"requestId\": \"$context.requestId\" (docs/aws-behaviour.md §2.3)."
  }

  validation {
    condition     = alltrue([for v in values(var.access_log.format) : strcontains(v, "$context.")])
    error_message = "Every access_log.format value must be a $context variable, e.g. \"$context.status\"."
  }

  validation {
    condition     = length(jsonencode(var.access_log.format)) <= 3072
    error_message = "The access_log.format is longer than the 3 KB access-log template quota of HTTP APIs."
  }

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.access_log.retention_days)
    error_message = "The access_log.retention_days must be a CloudWatch Logs retention such as 7, 14, 30, 90 or 365."
  }
}

variable "search" {
  description = "The OpenSearch domain behind the search function."
  type = object({
    domain_name    = string
    index          = string
    engine_version = string
    instance_type  = string
    instance_count = number
    volume_size_gb = number
    # Application logs need an account-level CloudWatch Logs resource policy (at most 10 per
    # region, docs/aws-behaviour.md §9.7): off unless asked for.
    application_logs = optional(bool, false)
    function         = optional(string, "search") # the function that queries the index
  })

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,27}$", var.search.domain_name))
    error_message = "The search.domain_name must be 3-28 characters of [a-z0-9-], starting with a letter."
  }

  validation {
    condition     = can(regex("^OpenSearch_[0-9]+\\.[0-9]+$", var.search.engine_version))
    error_message = "The search.engine_version must be an OpenSearch version like OpenSearch_2.19."
  }

  validation {
    # T2 instances cannot encrypt data at rest, which this stack turns on.
    condition     = can(regex("^[a-z0-9]+\\.[a-z0-9]+\\.search$", var.search.instance_type)) && !startswith(var.search.instance_type, "t2.")
    error_message = "The search.instance_type must be an OpenSearch instance type like t3.small.search; T2 types cannot encrypt data at rest."
  }

  validation {
    condition     = var.search.instance_count >= 1 && floor(var.search.instance_count) == var.search.instance_count && var.search.volume_size_gb >= 10
    error_message = "The search.instance_count must be a whole number >= 1 and search.volume_size_gb at least 10."
  }

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9_.-]*$", var.search.index))
    error_message = "The search.index must be a lower-case OpenSearch index name like terms."
  }
}

variable "requester" {
  description = "Who may assume the requester role (execute-api:Invoke on the routes). Empty: this account's root, i.e. any principal of the account whose own policy allows sts:AssumeRole on it."
  type = object({
    trusted_principal_arns = optional(list(string), [])
  })
  default = {}

  validation {
    condition     = alltrue([for a in var.requester.trusted_principal_arns : can(regex("^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:.+$", a))])
    error_message = "Every requester.trusted_principal_arns entry must be an IAM principal ARN like arn:aws:iam::123456789012:role/ci."
  }
}

variable "handlers_dir" {
  description = "The directory of the handler modules every function's zip holds, relative to this directory."
  type        = string
  default     = "../handlers"
}
