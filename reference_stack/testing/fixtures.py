"""pytest fixtures for handler tests: the EventLog table inside moto, and a Lambda context."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from loadcheck.core.description import StackDescription, load_description
from loadcheck.core.state import ACCOUNT_ID


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
            {"AttributeName": spec.hash_key, "AttributeType": "S"},
            {"AttributeName": spec.range_key, "AttributeType": "S"},
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


@pytest.fixture
def eventlog_table() -> Iterator[EventLogTable]:
    """The EventLog table from the stack description, inside ``moto.mock_aws()``."""
    with mocked_eventlog_table() as t:
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
