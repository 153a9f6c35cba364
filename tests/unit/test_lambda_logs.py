"""Log lines and shipping: REPORT format, batches to CloudWatch Logs (moto), output pumping."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from reference_stack.local.lambda_ import logs as logs_module
from reference_stack.local.lambda_.logs import LogShipper, OutputPump, _batches, billed_ms, report_line


def test_report_line_matches_the_documented_form() -> None:
    # docs/aws-behaviour.md §8.3, the documented example (Init Duration on a cold start).
    line = report_line(
        "3c0b9f54-0000-4000-8000-000000000000",
        duration_ms=15.74,
        memory_mb=128,
        max_memory_mb=56,
        init_duration_ms=130.49,
    )
    assert line == (
        "REPORT RequestId: 3c0b9f54-0000-4000-8000-000000000000\tDuration: 15.74 ms\t"
        "Billed Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 56 MB\tInit Duration: 130.49 ms\t\n"
    )


def test_report_line_of_a_timeout() -> None:
    line = report_line("r", duration_ms=3000.0, memory_mb=256, max_memory_mb=40, status="timeout")
    assert line.endswith("Max Memory Used: 40 MB\tStatus: timeout\t\n")
    assert "Init Duration" not in line


@pytest.mark.parametrize(("duration", "billed"), [(15.74, 16), (79.67, 80), (0.2, 1), (3000.0, 3000), (12.0000001, 12)])
def test_billing_rounds_up_to_the_millisecond(duration: float, billed: int) -> None:
    assert billed_ms(duration) == billed


def test_batches_respect_putlogevents_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs_module, "MAX_BATCH_EVENTS", 3)
    events = [(i, "x" * 10) for i in range(7)]
    assert [len(b) for b in _batches(events)] == [3, 3, 1]
    big = [(1, "y" * 600_000), (2, "z" * 600_000)]
    assert [len(b) for b in _batches(big)] == [1, 1]


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def logs_client() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("logs", region_name="us-east-1")


def _messages(client: Any, group: str, stream: str) -> list[tuple[int, str]]:
    got = client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [(e["timestamp"], e["message"]) for e in got["events"]]


NOW = float(int(time.time()))  # CloudWatch Logs rejects events older than 14 days


def test_shipper_creates_group_and_stream_and_keeps_order(logs_client: Any) -> None:
    clock = FakeClock(NOW)
    shipper = LogShipper(client_factory=lambda: logs_client, clock=clock)
    shipper.emit("/aws/lambda/f", "s1", "START\n")
    clock.t -= 5  # a clock step backwards must not reorder the stream
    shipper.emit("/aws/lambda/f", "s1", "line\n")
    shipper.emit("/aws/lambda/f", "s1", "\n")  # empty: PutLogEvents rejects empty messages
    shipper.emit("/aws/lambda/f", "s2", "other\n")
    assert shipper.flush() == 3
    ms = int(NOW * 1000)
    assert _messages(logs_client, "/aws/lambda/f", "s1") == [(ms, "START\n"), (ms, "line\n")]
    assert _messages(logs_client, "/aws/lambda/f", "s2") == [(ms - 5000, "other\n")]
    assert shipper.flush() == 0


def test_shipper_keeps_events_while_the_endpoint_fails(logs_client: Any) -> None:
    stubbed = boto3.client("logs", region_name="us-east-1")
    stubber = Stubber(stubbed)
    stubber.add_client_error("create_log_group", service_error_code="ServiceUnavailableException", http_status_code=503)
    clients = iter([stubbed])
    shipper = LogShipper(client_factory=lambda: next(clients), clock=FakeClock(NOW))
    shipper.emit("/aws/lambda/f", "s", "kept\n")
    with stubber:
        assert shipper.flush() == 0
    assert shipper.buffered() == 1
    shipper._client = logs_client  # the endpoint is back (same seam: the client)
    assert shipper.flush() == 1
    assert _messages(logs_client, "/aws/lambda/f", "s") == [(int(NOW * 1000), "kept\n")]


def test_shipper_drops_oldest_beyond_its_bound() -> None:
    shipper = LogShipper(client_factory=lambda: None, max_buffered=3)
    for i in range(5):
        shipper.emit("g", "s", f"{i}\n")
    assert shipper.buffered() == 3 and shipper.dropped == 2


def test_output_pump_splits_lines_and_turns_error_frames_into_one_event() -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    lines: list[str] = []
    pump = OutputPump(pipes=[os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb")], on_line=lines.append, name="t")
    os.write(out_w, b"one\ntw")
    os.write(err_w, b"[ERROR] E: m\rTraceback (most recent call last):\r\xc2\xa0x\n")
    pump.drain(partial=False)
    assert lines == ["one\n", "[ERROR] E: m\nTraceback (most recent call last):\n\u00a0x\n"] or lines == [
        "[ERROR] E: m\nTraceback (most recent call last):\n\u00a0x\n",
        "one\n",
    ]
    os.write(out_w, b"o")
    pump.drain()  # partial=True: an unterminated last line is emitted (the invocation ended)
    assert lines[-1] == "two\n"
    os.close(out_w)
    os.close(err_w)
    pump.close()
    assert len(lines) == 3
