"""Metric publication into moto's CloudWatch: per-minute sums stay right however often we publish."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from reference_stack.local.aws.buckets import ManualClock
from reference_stack.local.aws.metrics import MetricsPublisher, MetricsRecorder, MotoCloudWatchSink

MINUTE = 1_800_000_000 - (1_800_000_000 % 60)  # a whole minute, in the past relative to "now" checks


@pytest.fixture
def cloudwatch() -> Iterator[object]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


def publisher(clock: ManualClock) -> tuple[MetricsRecorder, MetricsPublisher]:
    recorder = MetricsRecorder(clock=clock)
    sink = MotoCloudWatchSink(account_id="123456789012", region="us-east-1", lock=threading.Lock())
    return recorder, MetricsPublisher(recorder=recorder, sink=sink, interval_s=60)


def stats(cw: object, metric: str, stat: str, **dims: str) -> list[tuple[datetime, float]]:
    out = cw.get_metric_statistics(  # type: ignore[attr-defined]
        Namespace="AWS/DynamoDB",
        MetricName=metric,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=datetime.fromtimestamp(MINUTE, UTC),
        EndTime=datetime.fromtimestamp(MINUTE, UTC) + timedelta(minutes=5),
        Period=60,
        Statistics=[stat],
    )
    return sorted((p["Timestamp"], p[stat]) for p in out["Datapoints"])


def test_a_minute_flushed_twice_still_sums_right(cloudwatch: object) -> None:
    clock = ManualClock(start=MINUTE + 5)
    recorder, pub = publisher(clock)
    for units in (1, 2, 3):
        recorder.add("ConsumedWriteCapacityUnits", units, table="T")
    assert pub.flush() == 1  # partial minute out (e.g. POST /_loadcheck/flush)
    clock.advance(30)  # same minute
    recorder.add("ConsumedWriteCapacityUnits", 10, table="T")
    clock.advance(60)  # next minute
    recorder.add("ConsumedWriteCapacityUnits", 4, table="T")
    assert pub.flush() == 2
    assert pub.flush() == 0  # nothing new: nothing sent
    sums = stats(cloudwatch, "ConsumedWriteCapacityUnits", "Sum", TableName="T")
    assert [v for _, v in sums] == [16.0, 4.0]
    assert sums[0][0] == datetime.fromtimestamp(MINUTE, UTC)
    counts = stats(cloudwatch, "ConsumedWriteCapacityUnits", "SampleCount", TableName="T")
    assert [v for _, v in counts] == [4.0, 1.0]
    maxima = stats(cloudwatch, "ConsumedWriteCapacityUnits", "Maximum", TableName="T")
    assert [v for _, v in maxima] == [10.0, 4.0]


def test_throttled_requests_carry_the_operation_dimension(cloudwatch: object) -> None:
    clock = ManualClock(start=MINUTE + 1)
    recorder, pub = publisher(clock)
    recorder.add("ThrottledRequests", 1, table="T", operation="PutItem")
    recorder.add("ThrottledRequests", 1, table="T", operation="Query")
    recorder.add("ThrottledRequests", 1, table="T", operation="PutItem")
    pub.flush()
    assert [v for _, v in stats(cloudwatch, "ThrottledRequests", "Sum", TableName="T", Operation="PutItem")] == [2.0]
    assert [v for _, v in stats(cloudwatch, "ThrottledRequests", "Sum", TableName="T", Operation="Query")] == [1.0]


def test_provisioned_gauges_are_sent_once_per_minute(cloudwatch: object) -> None:
    clock = ManualClock(start=MINUTE + 1)
    recorder, pub = publisher(clock)
    recorder.provisioned(table="T", read=5, write=7)
    pub.flush()
    recorder.provisioned(table="T", read=5, write=7)  # same minute, after a flush
    assert pub.flush() == 0
    counts = stats(cloudwatch, "ProvisionedWriteCapacityUnits", "SampleCount", TableName="T")
    assert counts == [(datetime.fromtimestamp(MINUTE, UTC), 1.0)]
    clock.advance(60)
    recorder.provisioned(table="T", read=5, write=9)
    pub.flush()
    assert [v for _, v in stats(cloudwatch, "ProvisionedWriteCapacityUnits", "Maximum", TableName="T")] == [7.0, 9.0]
