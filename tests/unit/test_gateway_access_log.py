"""Access-log rendering and delivery (gateway access_log.py), CloudWatch Logs via moto's mock_aws."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reference_stack.local.gateway.access_log import VARIABLES, AccessLogShipper, render
from reference_stack.local.gateway.config import AccessLogSettings
from reference_stack.local.gateway.faults import Faults

GROUP = "/aws/apigateway/test-api"
T0 = int(time.time() * 1000)  # CloudWatch Logs rejects events older than 14 days
FORMAT = {
    "requestId": "$context.requestId",
    "status": "$context.status",
    "authorizerError": "$context.authorizer.error",
    "clf": '$context.identity.sourceIp - - [$context.requestTime] "$context.httpMethod $context.routeKey"',
    "claims": "$context.authorizer.claims.sub",
}


def test_render_substitutes_and_marks_unset_as_dash() -> None:
    line = render(
        FORMAT,
        {
            "requestId": "abc=",
            "status": "200",
            "identity.sourceIp": "127.0.0.1",
            "requestTime": "07/Mar/2026:09:05:03 +0000",
            "httpMethod": "GET",
            "routeKey": "GET /events",
            "authorizer.error": "",
        },
    )
    record = json.loads(line)
    assert record == {
        "requestId": "abc=",
        "status": "200",
        "authorizerError": "-",
        "clf": '127.0.0.1 - - [07/Mar/2026:09:05:03 +0000] "GET GET /events"',
        "claims": "-",
    }
    assert all(isinstance(v, str) for v in record.values())


def test_render_blank_field_fault_and_quoted_message() -> None:
    fmt = {"requestId": "$context.requestId", "msg": "$context.error.messageString"}
    record = json.loads(render(fmt, {"requestId": "r", "error.messageString": '"Forbidden"'}, blank="requestId"))
    assert record == {"requestId": "-", "msg": '"Forbidden"'}


def test_every_variable_name_is_renderable() -> None:
    fmt = {v: f"$context.{v}" for v in VARIABLES}
    record = json.loads(render(fmt, {v: f"value-of-{v}" for v in VARIABLES}))
    assert record == {v: f"value-of-{v}" for v in VARIABLES}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("logs", region_name="us-east-1")
        client.create_log_group(logGroupName=GROUP)
        yield client


def _messages(client: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for stream in client.describe_log_streams(logGroupName=GROUP)["logStreams"]:
        events = client.get_log_events(logGroupName=GROUP, logStreamName=stream["logStreamName"], startFromHead=True)[
            "events"
        ]
        out.extend(
            {"stream": stream["logStreamName"], "timestamp": e["timestamp"], **json.loads(e["message"])} for e in events
        )
    return out


def _shipper(
    client: Any, clock: Clock, faults: Faults | None = None, delay: float = 5.0, rng: Any = None
) -> AccessLogShipper:
    settings = AccessLogSettings(
        log_group=GROUP,
        format={"requestId": "$context.requestId", "status": "$context.status"},
        batch_interval_s=1.0,
        delivery_delay_s=delay,
    )
    return AccessLogShipper(
        settings=settings,
        api_id="a1b2c3d4e5",
        faults=faults or Faults(log_fields=("requestId", "status")),
        client_factory=lambda: client,
        clock=clock,
        rng=rng or (lambda: 0.5),
    )


def test_records_wait_for_the_delivery_delay_then_ship_in_time_order(logs: Any) -> None:
    clock = Clock()
    shipper = _shipper(logs, clock)
    shipper.submit(context={"requestId": "b", "status": "200"}, timestamp_ms=T0 + 1)
    shipper.submit(context={"requestId": "a", "status": "403"}, timestamp_ms=T0)
    assert shipper.ship_due() == 0 and _messages(logs) == []
    clock.now += 5.0
    assert shipper.ship_due() == 2
    got = _messages(logs)
    assert [m["requestId"] for m in got] == ["a", "b"]
    assert [m["timestamp"] for m in got] == [T0, T0 + 1]
    assert got[0]["stream"] == shipper.stream_name and shipper.stream_name.startswith("a1b2c3d4e5_$default-")


def test_flush_ships_everything_now(logs: Any) -> None:
    shipper = _shipper(logs, Clock(), delay=3600)
    shipper.submit(context={"requestId": "x", "status": "200"}, timestamp_ms=T0)
    assert shipper.flush() == 1 and shipper.pending == 0
    assert [m["requestId"] for m in _messages(logs)] == ["x"]


def test_log_delay_fault_adds_to_the_delay(logs: Any) -> None:
    clock = Clock()
    faults = Faults(log_fields=("requestId", "status"), initial={"log-delay": 10})
    shipper = _shipper(logs, clock, faults, delay=1.0)
    shipper.submit(context={"requestId": "x"}, timestamp_ms=T0)
    clock.now += 5
    assert shipper.ship_due() == 0
    clock.now += 6
    assert shipper.ship_due() == 1


def test_drop_fault_loses_records(logs: Any) -> None:
    faults = Faults(log_fields=("requestId", "status"), initial={"drop-access-logs": 0.5})
    draws = iter([0.1, 0.9, 0.2, 0.7])  # below 0.5 -> dropped
    shipper = _shipper(logs, Clock(), faults, rng=lambda: next(draws))
    for rid in "abcd":
        shipper.submit(context={"requestId": rid}, timestamp_ms=T0)
    shipper.flush()
    assert sorted(m["requestId"] for m in _messages(logs)) == ["b", "d"]
    assert shipper.dropped == 2


def test_failed_delivery_is_kept_and_retried(logs: Any) -> None:
    logs.delete_log_group(logGroupName=GROUP)
    shipper = _shipper(logs, Clock(), delay=0)
    shipper.submit(context={"requestId": "x"}, timestamp_ms=T0)
    assert shipper.ship_due() == 0 and shipper.pending == 1
    logs.create_log_group(logGroupName=GROUP)
    assert shipper.ship_due() == 1 and shipper.pending == 0
    assert [m["requestId"] for m in _messages(logs)] == ["x"]


def test_bad_fault_values_are_refused_by_name() -> None:
    from loadcheck.core.errors import ConfigError

    faults = Faults(log_fields=("requestId",))
    for bad in (
        {"drop-access-logs": 2},
        {"blank-access-log-field": "nope"},
        {"throttle-status": 42},
        {"log-delay": -1},
        {"allow-denied": 3},
        {"no-such-fault": 1},
    ):
        with pytest.raises(ConfigError) as err:
            faults.update(bad)
        assert next(iter(bad)) in str(err.value) or repr(next(iter(bad.values()))) in str(err.value)
    assert faults.update({"throttle-status": 500, "allow-denied": 1}) == {"throttle-status": 500, "allow-denied": 1}
    assert faults.update({"throttle-status": None, "allow-denied": 0}) == {}
