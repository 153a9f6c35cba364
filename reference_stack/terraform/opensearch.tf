# The OpenSearch domain behind GET/POST /search, reached only over HTTPS (TLS >= 1.2) and signed
# with SigV4 service `es` (docs/aws-behaviour.md §9.1). Its access policy admits the search
# function's role on `<domain arn>/<index>/_search` (POST only) and the search-admin role on
# `<domain arn>/<index>` and `<domain arn>/<index>/*` (index and corpus), the same scopes as the
# roles' own policies (iam.tf): in one account either policy alone allows a request, so a domain
# policy on `<domain arn>/*` would let the search function `_bulk`, `_doc` and `_delete_by_query`
# (docs/aws-behaviour.md §9.3).

resource "aws_opensearch_domain" "search" {
  domain_name = var.search.domain_name
  # The description's search.engine_version, OpenSearch_2.19 (chosen 2026-12-02): the last 2.x
  # minor, the line the OpenSearch project maintains until 4.0 (https://opensearch.org/releases.html).
  # AWS's support calendar (November 2024) ended standard support for OpenSearch 1.0-1.2 and 2.3-2.9
  # on 7 November 2025 and named no end date for 2.11 and later when this was chosen: re-check it at
  # https://docs.aws.amazon.com/opensearch-service/latest/developerguide/what-is.html#choosing-version
  # and `aws opensearch list-versions` for what your region offers (docs/aws-behaviour.md §9.8).
  engine_version = var.search.engine_version

  # A `_bulk` body naming other indices would step outside the search-admin role's index scope;
  # with this option a body may name none (the corpus loader posts to <index>/_bulk), docs/aws-behaviour.md §9.3.
  advanced_options = {
    "rest.action.multi.allow_explicit_index" = "false"
  }

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

  # Only with search.application_logs: publishing needs an account-level CloudWatch Logs resource
  # policy, and a region holds at most 10 (docs/aws-behaviour.md §9.7).
  dynamic "log_publishing_options" {
    for_each = var.search.application_logs ? ["ES_APPLICATION_LOGS"] : []

    content {
      log_type                 = log_publishing_options.value
      cloudwatch_log_group_arn = aws_cloudwatch_log_group.search_domain[0].arn
    }
  }

  depends_on = [aws_cloudwatch_log_resource_policy.search_domain]
}

data "aws_iam_policy_document" "search_domain_access" {
  statement {
    sid       = "SearchFunctionSearches"
    actions   = local.search_function_actions
    resources = local.search_function_resources

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["search"].arn]
    }
  }

  statement {
    sid       = "AdminLoadsCorpus"
    actions   = local.search_admin_actions
    resources = local.search_admin_resources

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

# Application (error) logs of the domain, so a failing cluster can be diagnosed: optional
# (search.application_logs, off by default) because the resource policy below is account-level
# and limited to 10 per region; a full account answers LimitExceededException.
resource "aws_cloudwatch_log_group" "search_domain" {
  count = var.search.application_logs ? 1 : 0

  name              = "/aws/opensearch/${var.search.domain_name}/application"
  retention_in_days = var.access_log.retention_days
}

data "aws_iam_policy_document" "search_domain_logs" {
  count = var.search.application_logs ? 1 : 0

  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.search_domain[0].arn}:*"]

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
  count = var.search.application_logs ? 1 : 0

  policy_name     = "${var.name_prefix}-opensearch-logs"
  policy_document = data.aws_iam_policy_document.search_domain_logs[0].json
}
