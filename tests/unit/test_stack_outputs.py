"""``loadcheck stack outputs``: the local stack in exactly the shape ``terraform output -json``
prints for reference_stack/terraform/outputs.tf (same names, same types), read back by the AWS
code path (``target_from_tf_outputs``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loadcheck.core.aws_target import target_from_tf_outputs, tf_outputs_from_stack
from tests.unit.terraform_hcl import Module

TF_DIR = Path(__file__).resolve().parents[2] / "reference_stack" / "terraform"


def expected_output_kinds() -> dict[str, str]:
    """Each output of outputs.tf and the kind of value Terraform prints for it: a ``for``
    expression makes an object, ``sort(...)`` a list, anything else here a string."""
    kinds = {}
    for name, block in Module(TF_DIR).outputs.items():
        value = str(block["value"])
        kinds[name] = "object" if "{for " in value else "list" if value.startswith("${sort(") else "string"
    return kinds


def output_kinds(outputs: dict[str, Any]) -> dict[str, str]:
    """The kinds of a ``terraform output -json`` document, from each output's type and value."""
    kinds = {}
    for name, entry in outputs.items():
        assert set(entry) == {"sensitive", "type", "value"}, (name, entry)
        assert entry["sensitive"] is False
        t, v = entry["type"], entry["value"]
        if t == "string":
            assert isinstance(v, str) and v, (name, v)
            kinds[name] = "string"
        elif t == ["list", "string"]:
            assert isinstance(v, list) and all(isinstance(x, str) for x in v), (name, v)
            kinds[name] = "list"
        else:
            assert t[0] == "object" and set(t[1]) == set(v) and all(x == "string" for x in t[1].values()), (name, t)
            kinds[name] = "object"
    return kinds


def stack_json(tmp: Path) -> dict[str, Any]:
    """The keys the supervisor writes to stack.json (reference_stack/local/supervisor/stack.py)."""
    return {
        "region": "us-east-1",
        "account_id": "123456789012",
        "api_id": "abc123defg",
        "aws_endpoint_url": "http://127.0.0.1:4566",
        "search_endpoint": "http://127.0.0.1:9200",
        "search_index": "terms",
        "table_name": "EventLog",
        "access_log_group": "/aws/apigateway/loadcheck-http-api",
        "lambda_log_groups": {"events": "/aws/lambda/loadcheck-events", "search": "/aws/lambda/loadcheck-search"},
        "function_names": {"events": "loadcheck-events", "search": "loadcheck-search"},
        "credentials_file": str(tmp / "credentials"),
        "profiles": {"admin": "loadcheck-admin"},
        "requester_role_arn": "arn:aws:iam::123456789012:role/loadcheck-requester",
        "denied_role_arn": "arn:aws:iam::123456789012:role/loadcheck-denied",
        "search_admin_role_arn": "arn:aws:iam::123456789012:role/loadcheck-search-admin",
        "domain": "events.loadcheck.test",
        "gateway": {"host": "events.loadcheck.test", "port": 8443, "address": "127.0.0.1"}
        | {"url": "https://events.loadcheck.test:8443"},
        "routes": ["GET /events", "POST /events", "GET /search", "POST /search"],
        "export_bucket": "loadcheck-exports-123456789012",
    }


def test_outputs_have_the_names_and_types_of_outputs_tf(tmp_path: Path) -> None:
    outputs = tf_outputs_from_stack(stack_json(tmp_path))
    assert output_kinds(outputs) == expected_output_kinds()


def test_the_aws_code_path_reads_them_back(tmp_path: Path) -> None:
    stack = stack_json(tmp_path)
    target = target_from_tf_outputs(tf_outputs_from_stack(stack))
    assert target["gateway"]["url"] == "https://events.loadcheck.test:8443"
    assert target["requester_role_arn"] == stack["requester_role_arn"]
    assert sorted(target["routes"]) == sorted(stack["routes"])
    for key in ("table_name", "access_log_group", "search_endpoint", "search_index", "lambda_log_groups"):
        assert target[key] == stack[key]


def test_a_renamed_output_is_caught(tmp_path: Path) -> None:
    outputs = tf_outputs_from_stack(stack_json(tmp_path))
    outputs["endpoint"] = outputs.pop("endpoint_url")
    assert output_kinds(outputs) != expected_output_kinds()
