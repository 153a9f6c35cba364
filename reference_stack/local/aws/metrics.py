"""``AWS/DynamoDB`` CloudWatch metrics, accumulated per minute and published into moto.

What is published (docs/aws-behaviour.md §7.6, DDB:metrics-dimensions):

| metric | dimensions | one sample per |
|---|---|---|
| ConsumedReadCapacityUnits / ConsumedWriteCapacityUnits | TableName | request (value = units) |
| ReadThrottleEvents / WriteThrottleEvents | TableName | throttled request (value = events: 1 per item) |
| ThrottledRequests | TableName, Operation | throttled request (Batch*: only when every item was throttled) |
| ProvisionedReadCapacityUnits / ProvisionedWriteCapacityUnits | TableName | minute with activity |

Each datum is a ``StatisticValues`` set (Sum, SampleCount, Minimum, Maximum) stamped with the
start of its minute (timestamps from the governor's clock), so ``Sum`` is the minute's total,
``SampleCount`` the number of requests and Min/Max per-request extremes, as on AWS.

Publication is by delta: every publication sends only what accumulated since the previous one
and then forgets it. A minute published partially (by ``POST /_loadcheck/flush``, or by a
``metrics_interval_s`` below 60) and again later is stored in CloudWatch as two data points
whose Sum / SampleCount add up to the minute's true figures, and whose Min / Max combine
correctly. Nothing is ever counted twice. The Provisioned* gauges are sent once per table and
minute.

Departures (docs/fidelity.md, section aws): AWS publishes ProvisionedRead/WriteCapacityUnits at
5-minute intervals and consumption even for idle minutes (as 0); we publish the Provisioned*
gauges and consumption only for minutes in which the table saw requests. Data points become
visible at publication (each ``metrics_interval_s``, on flush, on shutdown), not with AWS's
delivery delay. GSI dimensions are not published (index consumption is counted on the table).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends

from reference_stack.local.aws.buckets import Clock

NAMESPACE = "AWS/DynamoDB"


@dataclass
class _Stat:
    total: float = 0.0
    count: float = 0.0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


_Key = tuple[int, str, tuple[tuple[str, str], ...]]  # (minute epoch, metric, dimensions)


class MetricsRecorder:
    """Thread-safe per-minute accumulator; ``drain()`` hands out and forgets what it holds."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._stats: dict[_Key, _Stat] = {}
        self._gauges: dict[tuple[int, str, str], float] = {}  # (minute, metric, table) -> value
        self._gauges_sent: set[tuple[int, str, str]] = set()

    def _minute(self) -> int:
        return int(self._clock.now() // 60) * 60

    def add(self, metric: str, value: float, *, table: str, operation: str | None = None) -> None:
        dims: tuple[tuple[str, str], ...] = (("TableName", table),)
        if operation is not None:
            dims += (("Operation", operation),)
        with self._lock:
            key = (self._minute(), metric, dims)
            stat = self._stats.get(key)
            if stat is None:
                stat = self._stats[key] = _Stat()
            stat.add(value)

    def provisioned(self, *, table: str, read: float, write: float) -> None:
        """Note the table's provisioned capacity for the current minute (sent once per minute)."""
        minute = self._minute()
        with self._lock:
            for metric, value in (("ProvisionedReadCapacityUnits", read), ("ProvisionedWriteCapacityUnits", write)):
                key = (minute, metric, table)
                if key not in self._gauges_sent:
                    self._gauges[key] = value

    def drain(self) -> list[dict[str, Any]]:
        """The accumulated deltas as CloudWatch ``MetricData`` entries (naive UTC timestamps, as moto keeps)."""
        with self._lock:
            stats, self._stats = self._stats, {}
            gauges, self._gauges = self._gauges, {}
            self._gauges_sent.update(gauges)
            if len(self._gauges_sent) > 10000:
                horizon = self._minute() - 3600
                self._gauges_sent = {k for k in self._gauges_sent if k[0] >= horizon}
        data = []
        for (minute, metric, dims), stat in stats.items():
            data.append(
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in dims],
                    "Timestamp": _stamp(minute),
                    "StatisticValues": {
                        "Sum": stat.total,
                        "SampleCount": stat.count,
                        "Minimum": stat.minimum,
                        "Maximum": stat.maximum,
                    },
                    "Unit": "Count",
                }
            )
        for (minute, metric, table), value in gauges.items():
            data.append(
                {
                    "MetricName": metric,
                    "Dimensions": [{"Name": "TableName", "Value": table}],
                    "Timestamp": _stamp(minute),
                    "StatisticValues": {"Sum": value, "SampleCount": 1.0, "Minimum": value, "Maximum": value},
                    "Unit": "Count",
                }
            )
        return data


def _stamp(minute: int) -> datetime:
    return datetime.fromtimestamp(minute, UTC).replace(tzinfo=None)


class MotoCloudWatchSink:
    """Writes metric data straight into moto's in-process CloudWatch backend.

    In-process, so publication needs no credentials and never passes through the governor;
    ``lock`` is the lock that also guards CloudWatch requests served over HTTP (moto is not
    thread-safe, docs/emulator-notes.md §6).
    """

    def __init__(self, *, account_id: str, region: str, lock: threading.Lock) -> None:
        self.account_id = account_id
        self.region = region
        self.lock = lock

    def __call__(self, metric_data: list[dict[str, Any]]) -> None:
        backend = cloudwatch_backends[self.account_id][self.region]
        with self.lock:
            for start in range(0, len(metric_data), 1000):
                backend.put_metric_data(NAMESPACE, metric_data[start : start + 1000])


class MetricsPublisher:
    """Drains the recorder into the sink every ``interval_s`` (real time) and on ``flush()``."""

    def __init__(
        self, *, recorder: MetricsRecorder, sink: Callable[[list[dict[str, Any]]], None], interval_s: float
    ) -> None:
        self.recorder = recorder
        self.sink = sink
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()

    def flush(self) -> int:
        """Publish everything accumulated so far; returns the number of data points sent."""
        with self._flush_lock:
            data = self.recorder.drain()
            if data:
                self.sink(data)
            return len(data)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="metrics-publisher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.flush()
            except Exception:  # keep publishing later minutes; this batch is lost and logged
                logging.getLogger("loadcheck.aws.metrics").exception("publishing metrics failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
