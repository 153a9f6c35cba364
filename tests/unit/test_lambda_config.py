"""The lambda service config: valid configs load, bad ones name the value and the fix."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from loadcheck.core.errors import ConfigError
from loadcheck.core.state import Identity, write_identities
from reference_stack.local.common.contract import read_config
from reference_stack.local.lambda_.config import ACCOUNT_CONCURRENCY, parse_config

SECRET, TOKEN = uuid.uuid4().hex, uuid.uuid4().hex


@pytest.fixture
def identities_file(tmp_path: Path) -> Path:
    path = tmp_path / "identities.json"
    write_identities(
        path,
        {
            "events-role": Identity(
                name="events-role",
                arn="arn:aws:sts::123456789012:assumed-role/r/f",
                principal_arn="arn:aws:iam::123456789012:role/r",
                user_id="AROA",
                access_key_id="ASIA",
                secret_access_key=SECRET,
                session_token=TOKEN,
            )
        },
    )
    return path


def _config(tmp_path: Path, identities_file: Path, **fn: Any) -> dict[str, Any]:
    spec = {
        "key": "events",
        "handler": "events.handler",
        "task_root": str(tmp_path),
        "memory_mb": 256,
        "timeout_s": 10,
        "reserved_concurrency": 20,
        "environment": {"TABLE_NAME": "EventLog"},
        "role_identity": "events-role",
        "log_group": "/aws/lambda/loadcheck-events",
        **fn,
    }
    return {
        "service": "lambda",
        "host": "127.0.0.1",
        "port": 0,
        "aws_endpoint_url": "http://127.0.0.1:4566",
        "identities_file": str(identities_file),
        "functions": {"loadcheck-events": spec},
    }


def test_a_valid_config_loads(tmp_path: Path, identities_file: Path) -> None:
    path = tmp_path / "lambda.json"
    path.write_text(json.dumps(_config(tmp_path, identities_file)))
    config = parse_config(read_config(path, service="lambda"), str(path))  # as run_service reads it
    fn = config.functions["loadcheck-events"]
    assert (fn.handler, fn.memory_mb, fn.timeout_s, fn.reserved_concurrency) == ("events.handler", 256, 10.0, 20)
    assert fn.task_root == tmp_path.resolve()
    assert config.function_arn("loadcheck-events") == "arn:aws:lambda:us-east-1:123456789012:function:loadcheck-events"
    assert config.identities.current().by_name["events-role"].session_token == TOKEN
    assert fn.runtime == "python3.12"


def test_no_reserved_concurrency_means_the_account_quota(tmp_path: Path, identities_file: Path) -> None:
    config = parse_config(_config(tmp_path, identities_file, reserved_concurrency=None))
    assert config.functions["loadcheck-events"].concurrency_cap == ACCOUNT_CONCURRENCY


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("timeout_s", 0, "timeout_s"),
        ("timeout_s", 901, "901"),
        ("memory_mb", 64, "64"),
        ("reserved_concurrency", -1, "-1"),
        ("reserved_concurrency", True, "boolean"),
        ("handler", "events", "'events'"),
        ("task_root", "/no/such/dir", "/no/such/dir"),
        ("role_identity", "search-role", "search-role"),
        ("environment", {"N": 3}, "environment.N"),
        ("runtime", "nodejs20.x", "nodejs20.x"),
    ],
)
def test_bad_function_values_name_the_value_and_the_fix(
    tmp_path: Path, identities_file: Path, field: str, value: Any, named: str
) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_config(tmp_path, identities_file, **{field: value}))
    assert named in str(err.value)
    assert err.value.hint


def test_missing_keys_and_files_are_named(tmp_path: Path, identities_file: Path) -> None:
    doc = _config(tmp_path, identities_file)
    del doc["aws_endpoint_url"]
    with pytest.raises(ConfigError, match="aws_endpoint_url"):
        parse_config(doc)
    doc = _config(
        tmp_path,
        identities_file,
    )
    doc["identities_file"] = str(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match="absent.json"):
        parse_config(doc)
    with pytest.raises(ConfigError, match="does not exist") as err:
        read_config(tmp_path / "nope.json", service="lambda")
    assert "--config" in (err.value.hint or "")


def test_only_loopback(tmp_path: Path, identities_file: Path) -> None:
    doc = _config(tmp_path, identities_file)
    doc["host"] = "0.0.0.0"  # noqa: S104 (the value under test)
    with pytest.raises(ConfigError, match="loopback"):
        parse_config(doc)
