"""pytest fixtures for handler tests: the described table inside moto, a Lambda context, the API's
routes; and the ini options that point them at your stack.

In ``pytest.ini``/``pyproject.toml`` (``[tool.pytest.ini_options]``), paths relative to that file:

- ``loadcheck_description``: your stack description (default: the reference stack's);
- ``loadcheck_openapi``: your openapi.yaml (default: ``openapi.yaml`` in the directory above the
  description's, the layout of ``reference_stack/``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from loadcheck.core.description import StackDescription, load_description
from loadcheck.core.state import ACCOUNT_ID
from reference_stack.testing.schema import Api, load_api


@dataclass
class EventLogTable:
    """The mocked EventLog table: low-level ``client``, resource ``table``, and its ``name``."""

    name: str
    client: Any
    table: Any
    description: StackDescription = field(repr=False)

    def items(self) -> list[dict[str, Any]]:
        """Every item (a full, strongly consistent scan), sorted by key."""
        out: list[dict[str, Any]] = []
        deserialize = TypeDeserializer().deserialize
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            out.extend({k: deserialize(v) for k, v in item.items()} for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        spec = self.description.table
        return sorted(out, key=lambda i: (str(i.get(spec.hash_key)), str(i.get(spec.range_key))))

    def reset(self) -> None:
        """Delete and re-create the table: an empty table for the next Hypothesis example.

        About 10 ms under moto, where a fresh ``mocked_eventlog_table()`` costs ~300 ms; so
        share one table per module and reset it per example.
        """
        self.client.delete_table(TableName=self.name)
        create_eventlog_table(self.client, self.description)


def create_eventlog_table(client: Any, description: StackDescription | None = None) -> str:
    """Create the table the stack description defines (keys, billing, capacity); return its name."""
    spec = (description or load_description()).table
    kwargs: dict[str, Any] = {
        "TableName": spec.name,
        "KeySchema": [
            {"AttributeName": spec.hash_key, "KeyType": "HASH"},
            {"AttributeName": spec.range_key, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": spec.hash_key, "AttributeType": spec.hash_key_type},
            {"AttributeName": spec.range_key, "AttributeType": spec.range_key_type},
        ],
        "BillingMode": spec.billing_mode,
    }
    if spec.billing_mode == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = {
            "ReadCapacityUnits": spec.read_capacity,
            "WriteCapacityUnits": spec.write_capacity,
        }
    client.create_table(**kwargs)
    client.get_waiter("table_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 0.01, "MaxAttempts": 50})
    return spec.name


@contextmanager
def mocked_eventlog_table(description: StackDescription | None = None) -> Iterator[EventLogTable]:
    """The EventLog table inside moto's ``mock_aws()``, with the environment a handler expects.

    Sets ``TABLE_NAME``, ``AWS_REGION`` and ``AWS_DEFAULT_REGION`` and removes
    ``AWS_ENDPOINT_URL``/``AWS_PROFILE`` (so clients made inside reach moto, not a real
    endpoint) for the duration; moto supplies fake credentials.
    """
    from moto import mock_aws  # deferred: moto takes ~0.3 s to import and only this fixture needs it

    desc = description or load_description()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    }
    env.update({"TABLE_NAME": desc.table.name, "AWS_REGION": desc.region, "AWS_DEFAULT_REGION": desc.region})
    with mock.patch.dict(os.environ, env, clear=True), mock_aws():
        client = boto3.client("dynamodb", region_name=desc.region)
        name = create_eventlog_table(client, desc)
        table = boto3.resource("dynamodb", region_name=desc.region).Table(name)
        yield EventLogTable(name=name, client=client, table=table, description=desc)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("loadcheck_description", "the stack description handler tests use (default: the reference stack's)")
    parser.addini("loadcheck_openapi", "the openapi.yaml route strategies come from (default: beside the description)")


def _configured(config: pytest.Config, name: str) -> Path | None:
    value = str(config.getini(name) or "")
    if not value:
        return None
    base = config.inipath.parent if config.inipath else config.rootpath
    return (base / value).resolve()


@pytest.fixture(scope="session")
def stack_description(pytestconfig: pytest.Config) -> StackDescription:
    """The stack description named by the ``loadcheck_description`` ini option (else the reference one)."""
    return load_description(_configured(pytestconfig, "loadcheck_description"))


@pytest.fixture(scope="session")
def api_schema(pytestconfig: pytest.Config, stack_description: StackDescription) -> Api:
    """The API's routes from ``loadcheck_openapi`` (else the openapi.yaml beside the description),
    checked against the description's routes; draw requests with ``route_requests(api_schema)``."""
    path = (
        _configured(pytestconfig, "loadcheck_openapi")
        or Path(stack_description.path).resolve().parents[1] / "openapi.yaml"
    )
    return load_api(path, stack_description)


@pytest.fixture
def eventlog_table(stack_description: StackDescription) -> Iterator[EventLogTable]:
    """The described table (``loadcheck_description``, else EventLog), inside ``moto.mock_aws()``."""
    with mocked_eventlog_table(stack_description) as t:
        yield t


@pytest.fixture(scope="module")
def module_table(stack_description: StackDescription) -> Iterator[EventLogTable]:
    """The described table inside ``moto.mock_aws()``, one per test module: what ``@given`` tests
    use (Hypothesis refuses function-scoped fixtures); call ``.reset()`` per example."""
    with mocked_eventlog_table(stack_description) as t:
        yield t


@dataclass
class LambdaContext:
    """The attributes and method of the Lambda context object handlers use."""

    function_name: str = "loadcheck-events"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    timeout_s: float = 10.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        # A fixed budget: tests never depend on wall-clock time.
        return int(self.timeout_s * 1000)


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context with a fresh ``aws_request_id``."""
    return LambdaContext()
