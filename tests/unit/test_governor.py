"""The governor as WSGI middleware over moto's real app, in-process (moto's ``mock_aws`` resets state).

These drive the DynamoDB JSON wire protocol directly; tests/integration/test_aws_service.py does
the same through boto3 against the real process.
"""

from __future__ import annotations

import binascii
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from moto import mock_aws
from werkzeug.test import Client

from reference_stack.local.aws.accounting import Accounting
from reference_stack.local.aws.backend import MotoTables
from reference_stack.local.aws.buckets import ManualClock
from reference_stack.local.aws.faults import Faults
from reference_stack.local.aws.governor import Governor
from reference_stack.local.aws.metrics import MetricsRecorder

ACCOUNT = "123456789012"
AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"
)


@dataclass
class Rig:
    client: Client
    clock: ManualClock
    accounting: Accounting
    recorder: MetricsRecorder
    faults: Faults

    def call(self, op: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
        response = self.client.post(
            "/",
            data=json.dumps(body),
            headers={
                "X-Amz-Target": f"DynamoDB_20120810.{op}",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": AUTH,
            },
        )
        raw = response.get_data()
        if "x-amz-crc32" in response.headers:
            assert int(response.headers["x-amz-crc32"]) == binascii.crc32(raw), "stale CRC32 after rewrite"
        return response.status_code, json.loads(raw or b"{}"), response.headers

    def create(self, name: str = "T", rcu: int = 1, wcu: int = 1, on_demand: bool = False) -> None:
        body: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [{"AttributeName": "date", "KeyType": "HASH"}, {"AttributeName": "time", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "date", "AttributeType": "S"},
                {"AttributeName": "time", "AttributeType": "S"},
            ],
        }
        if on_demand:
            body["BillingMode"] = "PAY_PER_REQUEST"
        else:
            body["ProvisionedThroughput"] = {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu}
        status, out, _ = self.call("CreateTable", body)
        assert status == 200, out


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    from moto.server import DomainDispatcherApplication, create_backend_app

    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    with mock_aws():
        clock = ManualClock(start=1_800_000_000.0)
        accounting = Accounting(clock=clock, burst_start="empty")
        recorder = MetricsRecorder(clock=clock)
        faults = Faults(rng=random.Random(7))
        governor = Governor(
            app=DomainDispatcherApplication(create_backend_app),
            accounting=accounting,
            recorder=recorder,
            faults=faults,
            tables=MotoTables(account_id=ACCOUNT),
            default_region="us-east-1",
            sleep=lambda _s: None,
        )
        yield Rig(Client(governor), clock, accounting, recorder, faults)


def item(time: str, pad: int = 0, date: str = "2026-11-21") -> dict[str, Any]:
    out: dict[str, Any] = {"date": {"S": date}, "time": {"S": time}}
    if pad:
        out["xpad"] = {"S": "x" * pad}
    return out


def key(time: str, date: str = "2026-11-21") -> dict[str, Any]:
    return {"date": {"S": date}, "time": {"S": time}}


def test_throttled_write_gets_dynamodbs_exact_answer_and_is_not_stored(rig: Rig) -> None:
    rig.create()
    status, body, headers = rig.call("PutItem", {"TableName": "T", "Item": item("a")})
    assert status == 400
    assert body == {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
        "ThrottlingReasons": [
            {
                "reason": "TableWriteProvisionedThroughputExceeded",
                "resource": "arn:aws:dynamodb:us-east-1:123456789012:table/T",
            }
        ],
    }
    assert len(headers["x-amzn-RequestId"]) == 52
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    rig.clock.advance(10)
    status, body, _ = rig.call("GetItem", {"TableName": "T", "Key": key("a")})
    assert status == 200 and "Item" not in body


def test_consumed_capacity_is_the_governors_not_motos(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(100)
    status, out, _ = rig.call(
        "PutItem", {"TableName": "T", "Item": item("a", pad=30 * 1024), "ReturnConsumedCapacity": "TOTAL"}
    )
    assert status == 200, out
    assert out["ConsumedCapacity"] == {"TableName": "T", "CapacityUnits": 31.0}  # 30 KB + keys -> 31 WCU
    _, out, _ = rig.call(
        "GetItem", {"TableName": "T", "Key": key("a"), "ConsistentRead": True, "ReturnConsumedCapacity": "TOTAL"}
    )
    assert out["ConsumedCapacity"]["CapacityUnits"] == 8.0  # docs/emulator-notes.md §3: AWS 8, moto 0.5
    _, out, _ = rig.call(
        "GetItem",
        {
            "TableName": "T",
            "Key": key("a"),
            "ReturnConsumedCapacity": "INDEXES",
            "ProjectionExpression": "#t",
            "ExpressionAttributeNames": {"#t": "time"},
        },
    )
    assert out["ConsumedCapacity"] == {"TableName": "T", "CapacityUnits": 4.0, "Table": {"CapacityUnits": 4.0}}
    _, out, _ = rig.call("GetItem", {"TableName": "T", "Key": key("missing"), "ReturnConsumedCapacity": "TOTAL"})
    assert out["ConsumedCapacity"]["CapacityUnits"] == 0.5


def test_update_item_is_charged_on_the_larger_image_and_moto_constant_is_removed(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(100)
    rig.call("PutItem", {"TableName": "T", "Item": item("a", pad=3000)})
    status, out, _ = rig.call("UpdateItem", {"TableName": "T", "Key": key("a"), "UpdateExpression": "REMOVE xpad"})
    assert status == 200, out
    assert "ConsumedCapacity" not in out  # moto adds one even when not asked (docs/emulator-notes.md §3)
    rig.call("PutItem", {"TableName": "T", "Item": item("b", pad=3000)})
    status, out, _ = rig.call(
        "UpdateItem",
        {"TableName": "T", "Key": key("b"), "UpdateExpression": "REMOVE xpad", "ReturnConsumedCapacity": "TOTAL"},
    )
    assert status == 200, out
    assert out["ConsumedCapacity"]["CapacityUnits"] == 3.0  # before-image 3 KB, after-image tiny


def test_failed_conditional_write_is_still_charged(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(10)
    rig.call("PutItem", {"TableName": "T", "Item": item("a")})
    before = rig.accounting.snapshot()["T"]["write_level"]
    status, out, _ = rig.call(
        "PutItem",
        {
            "TableName": "T",
            "Item": item("a"),
            "ConditionExpression": "attribute_not_exists(#t)",
            "ExpressionAttributeNames": {"#t": "time"},
        },
    )
    assert status == 400 and out["__type"].endswith("ConditionalCheckFailedException")
    assert rig.accounting.snapshot()["T"]["write_level"] == before - 1
    status, _, _ = rig.call("PutItem", {"TableName": "T", "Item": {"date": {"S": "x"}}})  # validation error
    assert status == 400
    assert rig.accounting.snapshot()["T"]["write_level"] == before - 1  # not charged


def test_query_charges_items_read_before_filter_and_projection(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(300)
    for i in range(10):
        rig.call("PutItem", {"TableName": "T", "Item": item(f"{i:02d}", pad=4000)})
    base = {
        "TableName": "T",
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "date"},
        "ExpressionAttributeValues": {":d": {"S": "2026-11-21"}},
        "ReturnConsumedCapacity": "TOTAL",
    }
    _, plain, _ = rig.call("Query", base)
    assert plain["Count"] == 10
    expected = plain["ConsumedCapacity"]["CapacityUnits"]
    assert expected == 5.0  # 10 x ~4 KB = ~40 KB -> 10 x 4 KB pages rounded once -> 10 RCU strong, 5 eventual
    filtered = {
        **base,
        "FilterExpression": "#t = :t",
        "ExpressionAttributeNames": {"#d": "date", "#t": "time"},
        "ExpressionAttributeValues": {":d": {"S": "2026-11-21"}, ":t": {"S": "03"}},
    }
    _, out, _ = rig.call("Query", filtered)
    assert out["Count"] == 1
    assert out["ConsumedCapacity"]["CapacityUnits"] == expected
    _, out, _ = rig.call("Query", {**base, "Select": "COUNT"})
    assert out["ConsumedCapacity"]["CapacityUnits"] == expected
    _, out, _ = rig.call("Scan", {"TableName": "T", "ReturnConsumedCapacity": "TOTAL", "ConsistentRead": True})
    assert out["ConsumedCapacity"]["CapacityUnits"] == 10.0


def test_batch_write_returns_what_does_not_fit_as_unprocessed(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(3)  # 3 WCU available
    writes = [{"PutRequest": {"Item": item(f"{i}")}} for i in range(5)]
    status, out, _ = rig.call("BatchWriteItem", {"RequestItems": {"T": writes}, "ReturnConsumedCapacity": "TOTAL"})
    assert status == 200
    assert out["UnprocessedItems"]["T"] == writes[3:]
    assert out["ConsumedCapacity"] == [{"TableName": "T", "CapacityUnits": 3.0}]
    status, out, _ = rig.call("BatchWriteItem", {"RequestItems": {"T": writes[3:]}})
    assert status == 400 and out["__type"].endswith("ProvisionedThroughputExceededException")
    rig.clock.advance(2)
    status, out, _ = rig.call("BatchWriteItem", {"RequestItems": {"T": writes[3:]}})
    assert status == 200 and not out.get("UnprocessedItems")
    status, out, _ = rig.call(
        "BatchGetItem",
        {"RequestItems": {"T": {"Keys": [key(f"{i}") for i in range(5)]}}, "ReturnConsumedCapacity": "TOTAL"},
    )
    assert status == 200  # read bucket was full of 5 s of refill
    assert len(out["Responses"]["T"]) == 5
    assert out["ConsumedCapacity"] == [{"TableName": "T", "CapacityUnits": 2.5}]  # 5 x 0.5, each item alone


def test_metrics_count_consumption_and_throttles(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(2)
    for i in range(4):
        rig.call("PutItem", {"TableName": "T", "Item": item(f"{i}")})
    data = {
        (d["MetricName"], tuple(x["Value"] for x in d["Dimensions"])): d["StatisticValues"]
        for d in rig.recorder.drain()
    }
    assert data[("ConsumedWriteCapacityUnits", ("T",))]["Sum"] == 2
    assert data[("WriteThrottleEvents", ("T",))]["Sum"] == 2
    assert data[("ThrottledRequests", ("T", "PutItem"))]["SampleCount"] == 2
    assert data[("ProvisionedWriteCapacityUnits", ("T",))]["Maximum"] == 1
    assert rig.recorder.drain() == []  # drained deltas are never sent twice


def test_drop_writes_acknowledges_but_does_not_store(rig: Rig) -> None:
    rig.create(on_demand=True)
    rig.faults.update({"drop-writes": 1})
    status, out, _ = rig.call("PutItem", {"TableName": "T", "Item": item("a"), "ReturnConsumedCapacity": "TOTAL"})
    assert status == 200 and out["ConsumedCapacity"]["CapacityUnits"] == 1
    _, out, _ = rig.call("GetItem", {"TableName": "T", "Key": key("a")})
    assert "Item" not in out


def test_phantom_writes_store_an_extra_item_in_the_same_partition(rig: Rig) -> None:
    rig.create(on_demand=True)
    rig.faults.update({"phantom-writes": 1})
    rig.call("PutItem", {"TableName": "T", "Item": item("a")})
    rig.call("PutItem", {"TableName": "T", "Item": item("b")})
    _, out, _ = rig.call(
        "Query",
        {
            "TableName": "T",
            "KeyConditionExpression": "#d = :d",
            "ExpressionAttributeNames": {"#d": "date"},
            "ExpressionAttributeValues": {":d": {"S": "2026-11-21"}},
        },
    )
    assert sorted(i["time"]["S"] for i in out["Items"]) == ["a", "a#phantom-1", "b"]
    assert rig.faults.active() == {}


def test_update_table_applies_live(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(1)
    status, _, _ = rig.call(
        "UpdateTable", {"TableName": "T", "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 50}}
    )
    assert status == 200
    rig.clock.advance(1)
    ok = sum(rig.call("PutItem", {"TableName": "T", "Item": item(f"{i}")})[0] == 200 for i in range(60))
    assert ok == 51


def test_partiql_passes_through(rig: Rig) -> None:
    rig.create(on_demand=True)
    rig.call("PutItem", {"TableName": "T", "Item": item("a")})
    status, out, _ = rig.call("ExecuteStatement", {"Statement": 'SELECT * FROM "T" WHERE "date" = \'2026-11-21\''})
    assert status == 200 and [i["time"]["S"] for i in out["Items"]] == ["a"]


def test_transactions_cost_twice_the_units(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(100)
    rig.call("PutItem", {"TableName": "T", "Item": item("old", pad=1500)})  # 2 WCU
    status, out, _ = rig.call(
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "T", "Item": item("new", pad=100)}},  # 1 KB -> 2 x 1
                {"Update": {"TableName": "T", "Key": key("old"), "UpdateExpression": "REMOVE xpad"}},  # 2 x 2
            ],
            "ReturnConsumedCapacity": "TOTAL",
        },
    )
    assert status == 200, out
    assert out["ConsumedCapacity"] == [{"TableName": "T", "CapacityUnits": 6.0}]
    assert rig.accounting.snapshot()["T"]["write_level"] == 100 - 2 - 6
    status, out, _ = rig.call(
        "TransactGetItems",
        {"TransactItems": [{"Get": {"TableName": "T", "Key": key("new")}}], "ReturnConsumedCapacity": "TOTAL"},
    )
    assert status == 200 and out["Responses"][0]["Item"]["time"] == {"S": "new"}
    assert out["ConsumedCapacity"] == [{"TableName": "T", "CapacityUnits": 2.0}]  # strongly consistent, x2


def test_a_malformed_batch_goes_to_moto_and_charges_nothing(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(10)
    before = rig.accounting.snapshot()["T"]["write_level"]
    writes = [{"PutRequest": {"Item": item("a")}}, {"PutRequest": {"Item": {"date": {"S": "no sort key"}}}}]
    status, out, _ = rig.call("BatchWriteItem", {"RequestItems": {"T": writes}})
    assert status == 400 and out["__type"].endswith("ValidationException")
    assert rig.accounting.snapshot()["T"]["write_level"] == before


def test_index_queries_are_charged_to_the_table(rig: Rig) -> None:
    status, out, _ = rig.call(
        "CreateTable",
        {
            "TableName": "G",
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": "date", "KeyType": "HASH"}, {"AttributeName": "time", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "date", "AttributeType": "S"},
                {"AttributeName": "time", "AttributeType": "S"},
                {"AttributeName": "user", "AttributeType": "S"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "by-user",
                    "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        },
    )
    assert status == 200, out
    for i in range(3):
        rig.call("PutItem", {"TableName": "G", "Item": {**item(f"{i}", pad=3000), "user": {"S": "u1"}}})
    status, out, _ = rig.call(
        "Query",
        {
            "TableName": "G",
            "IndexName": "by-user",
            "KeyConditionExpression": "#u = :u",
            "ExpressionAttributeNames": {"#u": "user"},
            "ExpressionAttributeValues": {":u": {"S": "u1"}},
            "ReturnConsumedCapacity": "TOTAL",
        },
    )
    assert status == 200 and out["Count"] == 3
    assert out["ConsumedCapacity"] == {"TableName": "G", "CapacityUnits": 1.5}  # ~9 KB -> 3 x 4 KB, eventual


def test_a_recreated_table_starts_with_fresh_buckets(rig: Rig) -> None:
    rig.create()
    rig.clock.advance(10)
    assert rig.accounting.snapshot()["T"]["write_level"] == 10
    assert rig.call("DeleteTable", {"TableName": "T"})[0] == 200
    assert "T" not in rig.accounting.snapshot()
    rig.create()
    assert rig.accounting.snapshot()["T"]["write_level"] == 0  # burst_start "empty", from creation
