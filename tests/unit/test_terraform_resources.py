"""The reference stack's Terraform resources, parsed with python-hcl2: the structure the stack must
have (table, functions, least-privilege IAM, search domain, HTTP API, custom domain, outputs).
Terraform itself, the variables and checkov are in test_terraform.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from reference_stack.local.provision import EXPORT_EXPIRE_DAYS
from tests.unit.terraform_hcl import TF_DIR, Module, block, load_description, statements


@pytest.fixture(scope="module")
def tf() -> Module:
    return Module(TF_DIR)


@pytest.fixture(scope="module")
def description() -> dict[str, Any]:
    return load_description()


# ---------------------------------------------------------------------------------------------
# DynamoDB


def test_table(tf: Module, description: dict[str, Any]) -> None:
    table = tf.resource("aws_dynamodb_table.events")
    assert table["hash_key"] == "${var.table.hash_key}" and table["range_key"] == "${var.table.range_key}"
    assert table["billing_mode"] == "${var.table.billing_mode}"
    assert "var.table.read_capacity" in table["read_capacity"] and "var.table.write_capacity" in table["write_capacity"]
    assert {(a["name"], a["type"]) for a in table["attribute"]} == {
        ("${var.table.hash_key}", "S"),
        ("${var.table.range_key}", "S"),
    }
    assert block(table, "point_in_time_recovery")["enabled"] == "${var.table.point_in_time_recovery}"
    assert block(table, "server_side_encryption")["enabled"] is True
    t = description["table"]
    assert (t["hash_key"], t["range_key"], t["billing_mode"]) == ("date", "time", "PROVISIONED")
    assert (t["read_capacity"], t["write_capacity"], t["point_in_time_recovery"]) == (1, 1, True)


# ---------------------------------------------------------------------------------------------
# Lambda


def test_functions_are_built_from_the_handlers_with_a_hash(tf: Module) -> None:
    archive = tf.datasource("archive_file.handlers")
    assert archive["type"] == "zip"
    assert archive["for_each"] == "${var.functions}"
    assert tf.locals["handlers_dir"] == "${path.module}/../handlers"
    assert archive["source_dir"] == "${local.handlers_dir}"
    fn = tf.resource("aws_lambda_function.this")
    assert fn["for_each"] == "${var.functions}"
    assert fn["filename"] == "${data.archive_file.handlers[each.key].output_path}"
    assert fn["source_code_hash"] == "${data.archive_file.handlers[each.key].output_base64sha256}"
    assert fn["function_name"] == "${local.function_names[each.key]}"
    assert (TF_DIR / ".." / "handlers").is_dir()


def test_function_settings_come_from_the_description(tf: Module, description: dict[str, Any]) -> None:
    fn = tf.resource("aws_lambda_function.this")
    assert fn["runtime"] == "${each.value.runtime}"
    assert fn["handler"] == "${each.value.handler}"
    assert fn["memory_size"] == "${each.value.memory_mb}"
    assert fn["timeout"] == "${each.value.timeout_s}"
    assert fn["reserved_concurrent_executions"] == "${each.value.reserved_concurrency}"
    # Unreserved by default, so the stack applies on an account with a concurrency quota of 10 (§8.6).
    assert all(spec["reserved_concurrency"] is None for spec in description["functions"].values())
    assert "each.value.environment" in block(fn, "environment")["variables"]
    assert block(fn, "logging_config")["log_group"] == "${aws_cloudwatch_log_group.lambda[each.key].name}"
    for key, spec in description["functions"].items():
        major, minor = spec["runtime"].removeprefix("python").split(".")
        assert (int(major), int(minor)) >= (3, 12), f"functions.{key}.runtime {spec['runtime']} is older than 3.12"
    runtime_rules = [v["condition"] for v in tf.variables["functions"]["validation"] if "runtime" in v["condition"]]
    assert runtime_rules and ">= 12" in runtime_rules[0]


def test_function_backend_environment(tf: Module) -> None:
    env = tf.locals["function_backend_env"]
    assert env["events"] == {"TABLE_NAME": "${aws_dynamodb_table.events.name}"}
    assert env["search"]["SEARCH_ENDPOINT"] == "https://${aws_opensearch_domain.search.endpoint}"
    assert env["search"]["SEARCH_INDEX"] == "${var.search.index}"


def test_lambda_log_groups_have_retention(tf: Module) -> None:
    group = tf.resource("aws_cloudwatch_log_group.lambda")
    assert group["name"] == "${local.function_log_groups[each.key]}"
    assert group["retention_in_days"] == "${each.value.log_retention_days}"
    for address, body in tf.resources.items():
        if address.startswith("aws_cloudwatch_log_group."):
            assert body.get("retention_in_days"), f"{address} keeps logs forever"


# ---------------------------------------------------------------------------------------------
# IAM: least privilege


def test_events_role_may_only_touch_the_table(tf: Module) -> None:
    (stmt,) = statements(tf.datasource("aws_iam_policy_document.events_data"))
    assert sorted(stmt["actions"]) == ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan"]
    assert stmt["resources"] == ["${aws_dynamodb_table.events.arn}"]


def test_search_role_may_only_search_its_index(tf: Module) -> None:
    (stmt,) = statements(tf.datasource("aws_iam_policy_document.search_data"))
    assert stmt["actions"] == "${local.search_function_actions}"
    assert stmt["resources"] == "${local.search_function_resources}"
    assert tf.locals["search_function_actions"] == ["es:ESHttpPost"]
    assert tf.locals["search_function_resources"] == ["${aws_opensearch_domain.search.arn}/${var.search.index}/_search"]
    (admin,) = statements(tf.datasource("aws_iam_policy_document.search_admin"))
    assert admin["actions"] == "${local.search_admin_actions}"
    assert admin["resources"] == "${local.search_admin_resources}"
    # Combined with the domain policy, for every role and action: test_terraform_policies.py.


def test_functions_write_only_their_own_log_group(tf: Module) -> None:
    (stmt,) = statements(tf.datasource("aws_iam_policy_document.function_logs"))
    assert sorted(stmt["actions"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert stmt["resources"] == ["${aws_cloudwatch_log_group.lambda[each.key].arn}:*"]
    combined = tf.datasource("aws_iam_policy_document.function")
    assert "data.aws_iam_policy_document.function_logs[each.key].json" in combined["source_policy_documents"]
    assert tf.locals["function_data_policies"] == {
        "events": "${data.aws_iam_policy_document.events_data.json}",
        "search": "${data.aws_iam_policy_document.search_data.json}",
    }
    role_policy = tf.resource("aws_iam_role_policy.function")
    assert role_policy["policy"] == "${data.aws_iam_policy_document.function[each.key].json}"


def test_no_policy_grants_wildcards(tf: Module) -> None:
    for address, doc in tf.data.items():
        if not address.startswith("aws_iam_policy_document."):
            continue
        for stmt in statements(doc):
            if stmt.get("effect", "Allow") == "Deny":
                continue  # a Deny grants nothing (the export bucket's TLS-only statement denies s3:*)
            for action in stmt.get("actions", []):
                assert "*" not in action, f"{address} grants {action}"
            for resource in stmt.get("resources", []):
                assert resource not in ("*", "${*}"), f"{address} grants on every resource"


def test_requester_may_invoke_exactly_the_routes(tf: Module) -> None:
    role = tf.resource("aws_iam_role.requester")
    assert role["name"] == "${var.name_prefix}-requester"
    (stmt,) = statements(tf.datasource("aws_iam_policy_document.requester"))
    assert stmt["actions"] == ["execute-api:Invoke"]
    assert stmt["resources"] == "${local.route_arns}"
    # <execution_arn>/$default/GET/events, one per route (docs/aws-behaviour.md §1.3).
    assert (
        "aws_apigatewayv2_api.http.execution_arn}/${aws_apigatewayv2_stage.default.name}/${route.method}${route.path}"
        in tf.locals["route_arns"]
    )
    assert "for key, route in local.route_parts" in tf.locals["route_arns"]
    assert "for key, function in var.routes" in tf.locals["route_parts"]
    assert tf.resource("aws_apigatewayv2_stage.default")["name"] == "${local.stage_name}"
    assert tf.locals["stage_name"] == "$default"
    assume = tf.datasource("aws_iam_policy_document.trusted_assume")
    assert block(assume["statement"][0], "principals")["identifiers"] == "${local.trusted_principal_arns}"
    assert "var.requester.trusted_principal_arns" in tf.locals["trusted_principal_arns"]
    assert ":root" in tf.locals["trusted_principal_arns"]


def test_denied_role_has_no_permissions(tf: Module) -> None:
    assert tf.resource("aws_iam_role.denied")["name"] == "${var.name_prefix}-denied"
    for address, body in tf.resources.items():
        if address.startswith(("aws_iam_role_policy.", "aws_iam_role_policy_attachment.")):
            assert "aws_iam_role.denied" not in json.dumps(body), f"{address} grants the denied role something"


def test_lambda_is_assumed_only_by_lambda(tf: Module) -> None:
    (stmt,) = statements(tf.datasource("aws_iam_policy_document.lambda_assume"))
    assert block(stmt, "principals") == {"type": "Service", "identifiers": ["lambda.amazonaws.com"]}


# ---------------------------------------------------------------------------------------------
# OpenSearch


def test_search_domain_is_encrypted_and_https_only(tf: Module) -> None:
    domain = tf.resource("aws_opensearch_domain.search")
    assert block(domain, "encrypt_at_rest")["enabled"] is True
    assert block(domain, "node_to_node_encryption")["enabled"] is True
    endpoint = block(domain, "domain_endpoint_options")
    assert endpoint["enforce_https"] is True
    assert endpoint["tls_security_policy"] == "Policy-Min-TLS-1-2-2019-07"
    assert domain["engine_version"] == "${var.search.engine_version}"


def test_engine_version_names_its_source_and_date(tf: Module, description: dict[str, Any]) -> None:
    version = description["search"]["engine_version"]
    text = tf.files["opensearch.tf"]
    assert version.replace("OpenSearch_", "OpenSearch_") in text, f"opensearch.tf does not say why {version}"
    assert re.search(r"chosen \d{4}-\d{2}-\d{2}", text), "the choice of engine version carries no date"
    assert "https://docs.aws.amazon.com/opensearch-service/latest/developerguide/what-is.html" in text


def test_search_domain_policy_grants_each_role_what_its_own_policy_grants(tf: Module) -> None:
    policy = tf.resource("aws_opensearch_domain_policy.search")
    assert policy["access_policies"] == "${data.aws_iam_policy_document.search_domain_access.json}"
    doc = tf.datasource("aws_iam_policy_document.search_domain_access")
    scopes = {}
    for stmt in statements(doc):
        (principals,) = stmt["principals"]
        (who,) = principals["identifiers"]
        scopes[who] = (stmt["actions"], stmt["resources"])
    # The same locals as the role policies (iam.tf): in one account either policy alone allows,
    # so the domain policy may never be broader (docs/aws-behaviour.md §9.3).
    assert scopes == {
        '${aws_iam_role.function["search"].arn}': (
            "${local.search_function_actions}",
            "${local.search_function_resources}",
        ),
        "${aws_iam_role.search_admin.arn}": ("${local.search_admin_actions}", "${local.search_admin_resources}"),
    }
    assert not any(r.endswith("arn}/*") for r in tf.locals["search_admin_resources"])


def test_search_domain_log_publishing_is_optional_and_off_by_default(tf: Module, description: dict[str, Any]) -> None:
    """The account-level CloudWatch Logs resource policy (10 per region) only with application_logs."""
    domain = tf.resource("aws_opensearch_domain.search")
    publishing = block(domain, "dynamic")["log_publishing_options"]
    assert publishing["for_each"] == '${var.search.application_logs ? ["ES_APPLICATION_LOGS"] : []}'
    for address in (
        "aws_cloudwatch_log_resource_policy.search_domain",
        "aws_cloudwatch_log_group.search_domain",
    ):
        assert tf.resource(address)["count"] == "${var.search.application_logs ? 1 : 0}", address
    assert (
        tf.datasource("aws_iam_policy_document.search_domain_logs")["count"] == "${var.search.application_logs ? 1 : 0}"
    )
    assert description["search"]["application_logs"] is False


# ---------------------------------------------------------------------------------------------
# HTTP API


def test_api_settings(tf: Module) -> None:
    api = tf.resource("aws_apigatewayv2_api.http")
    assert api["protocol_type"] == "HTTP"
    assert api["disable_execute_api_endpoint"] == "${var.disable_execute_api_endpoint}"
    cors = block(api, "cors_configuration")
    for key in ("allow_origins", "allow_methods", "allow_headers", "expose_headers", "max_age", "allow_credentials"):
        assert cors[key] == f"${{var.cors.{key}}}"


def test_integrations_are_lambda_proxy_payload_2(tf: Module) -> None:
    integration = tf.resource("aws_apigatewayv2_integration.function")
    assert integration["integration_type"] == "AWS_PROXY"
    assert integration["payload_format_version"] == "2.0"
    assert integration["integration_uri"] == "${aws_lambda_function.this[each.key].invoke_arn}"
    assert "var.integration_timeout_s" in integration["timeout_milliseconds"]


def test_every_route_requires_iam(tf: Module) -> None:
    routes = [(a, b) for a, b in tf.resources.items() if a.startswith("aws_apigatewayv2_route.")]
    assert routes
    for address, route in routes:
        assert route["authorization_type"] == "AWS_IAM", f"{address} is not AWS_IAM"
    route = tf.resource("aws_apigatewayv2_route.this")
    assert route["for_each"] == "${var.routes}"
    assert route["route_key"] == "${each.key}"
    assert route["target"] == "integrations/${aws_apigatewayv2_integration.function[each.value].id}"


def test_stage_auto_deploys_and_throttles_from_vars(tf: Module, description: dict[str, Any]) -> None:
    stage = tf.resource("aws_apigatewayv2_stage.default")
    assert stage["name"] == "${local.stage_name}" and stage["auto_deploy"] is True
    defaults = block(stage, "default_route_settings")
    # Never the 0/0 default (docs/aws-behaviour.md §4): both limits set, from the description.
    assert defaults["throttling_rate_limit"] == "${var.throttle.rate_limit}"
    assert defaults["throttling_burst_limit"] == "${var.throttle.burst_limit}"
    assert description["throttle"]["rate_limit"] > 0 and description["throttle"]["burst_limit"] > 0
    dynamic = block(stage, "dynamic")["route_settings"]
    assert dynamic["for_each"] == "${var.route_throttle}"
    content = block(dynamic, "content")
    assert content["throttling_rate_limit"] == "${route_settings.value.rate_limit}"
    assert content["throttling_burst_limit"] == "${route_settings.value.burst_limit}"
    for route, limits in description["route_throttle"].items():
        assert limits["rate_limit"] > 0 and limits["burst_limit"] > 0, route


def test_stage_access_logs_use_the_description_format(tf: Module) -> None:
    stage = tf.resource("aws_apigatewayv2_stage.default")
    logs = block(stage, "access_log_settings")
    assert logs["format"] == "${jsonencode(var.access_log.format)}"
    assert logs["destination_arn"] == "${aws_cloudwatch_log_group.access.arn}"
    group = tf.resource("aws_cloudwatch_log_group.access")
    assert group["name"] == "${var.access_log.log_group}"
    assert group["retention_in_days"] == "${var.access_log.retention_days}"
    # Under /aws/vendedlogs/: never added to the account's size-limited log resource policy (§2.5).
    assert load_description()["access_log"]["log_group"].startswith("/aws/vendedlogs/")


def test_api_gateway_may_invoke_the_functions(tf: Module) -> None:
    permission = tf.resource("aws_lambda_permission.api")
    assert permission["principal"] == "apigateway.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"
    assert permission["for_each"] == "${local.route_parts}"
    assert permission["source_arn"].startswith("${aws_apigatewayv2_api.http.execution_arn}/")
    assert permission["function_name"] == "${aws_lambda_function.this[each.value.function].function_name}"
    assert permission["statement_id"] == "${each.value.statement_id}"


# ---------------------------------------------------------------------------------------------
# Custom domain


def test_custom_domain(tf: Module) -> None:
    zone = tf.datasource("aws_route53_zone.this")
    assert zone["name"] == "${var.hosted_zone_name}"
    cert = tf.resource("aws_acm_certificate.api")
    assert cert["domain_name"] == "${var.domain_name}" and cert["validation_method"] == "DNS"
    validation_records = tf.resource("aws_route53_record.certificate_validation")
    assert validation_records["zone_id"] == "${data.aws_route53_zone.this.zone_id}"
    validation = tf.resource("aws_acm_certificate_validation.api")
    assert validation["certificate_arn"] == "${aws_acm_certificate.api.arn}"
    assert "aws_route53_record.certificate_validation" in validation["validation_record_fqdns"]

    domain = tf.resource("aws_apigatewayv2_domain_name.api")
    config = block(domain, "domain_name_configuration")
    assert config["endpoint_type"] == "REGIONAL"
    assert config["security_policy"] == "TLS_1_2"
    assert config["certificate_arn"] == "${aws_acm_certificate_validation.api.certificate_arn}"
    assert domain["depends_on"] == ["${aws_acm_certificate_validation.api}"]

    mapping = tf.resource("aws_apigatewayv2_api_mapping.api")
    assert mapping["api_id"] == "${aws_apigatewayv2_api.http.id}"
    assert mapping["stage"] == "${aws_apigatewayv2_stage.default.id}"

    alias_record = tf.resource("aws_route53_record.api")
    assert alias_record["type"] == "A" and alias_record["name"] == "${var.domain_name}"
    alias = block(alias_record, "alias")
    assert alias["name"].endswith("domain_name_configuration[0].target_domain_name}")
    assert alias["zone_id"].endswith("domain_name_configuration[0].hosted_zone_id}")


# ---------------------------------------------------------------------------------------------
# Outputs


def test_outputs_for_loadcheck_run(tf: Module) -> None:
    needed = {
        "endpoint_url",
        "domain",
        "region",
        "api_id",
        "account_id",
        "table_name",
        "access_log_group",
        "lambda_log_groups",
        "function_names",
        "requester_role_arn",
        "search_endpoint",
        "search_index",
        "execute_api_arn",
    }
    assert needed <= set(tf.outputs), f"missing outputs: {sorted(needed - set(tf.outputs))}"
    assert tf.outputs["endpoint_url"]["value"].startswith("https://")
    assert tf.outputs["search_endpoint"]["value"].startswith("https://")
    assert tf.outputs["execute_api_arn"]["value"] == "${aws_apigatewayv2_api.http.execution_arn}"


def test_export_bucket_is_private_encrypted_and_expires(tf: Module) -> None:
    assert tf.locals["export_bucket_name"] == "${var.name_prefix}-exports-${local.account_id}"
    assert tf.locals["export_expire_days"] == EXPORT_EXPIRE_DAYS
    block = tf.resource("aws_s3_bucket_public_access_block.exports")
    assert all(
        block[k] is True
        for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    sse = tf.resource("aws_s3_bucket_server_side_encryption_configuration.exports")
    assert "AES256" in json.dumps(sse)
    rule = tf.resource("aws_s3_bucket_lifecycle_configuration.exports")["rule"]
    assert "${local.export_expire_days}" in json.dumps(rule) and '"Enabled"' in json.dumps(rule)
    assert tf.outputs["export_bucket"]["value"] == "${aws_s3_bucket.exports.bucket}"
