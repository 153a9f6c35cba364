"""Reading the table's ``AWS/DynamoDB`` metrics for a run window (docs/aws-behaviour.md §7.6).

ConsumedRead/WriteCapacityUnits and Read/WriteThrottleEvents have the dimension TableName and
are summed (statistic Sum, 1-minute period); ThrottledRequests has TableName + Operation, so
its operations are discovered with ListMetrics and summed. Datapoints are keyed by minute
(epoch seconds) so a check can ask "were there throttle events in the minute of this 500?".
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

NAMESPACE = "AWS/DynamoDB"
TABLE_METRICS = ("ConsumedWriteCapacityUnits", "ConsumedReadCapacityUnits", "WriteThrottleEvents", "ReadThrottleEvents")


@dataclass
class TableMetrics:
    sums: dict[str, float | None] = field(default_factory=dict)  # None = no datapoint at all
    per_minute: dict[str, dict[int, float]] = field(default_factory=dict)
    throttled_requests: dict[str, float] = field(default_factory=dict)  # Operation -> Sum
    start_s: int = 0
    end_s: int = 0

    def total(self, name: str) -> float:
        return float(self.sums.get(name) or 0.0)

    def in_minute(self, name: str, epoch_s: float) -> float:
        return self.per_minute.get(name, {}).get(int(epoch_s // 60 * 60), 0.0)


def window_minutes(start_ms: float, end_ms: float) -> tuple[int, int]:
    """[first minute, minute after the last] in epoch seconds."""
    start = int(start_ms / 1000.0 // 60 * 60)
    end = int(math.floor(end_ms / 1000.0 / 60) * 60) + 60
    return start, end


def _stats(client: Any, name: str, dims: list[dict[str, str]], start: int, end: int) -> dict[int, float]:
    resp = client.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=dims,
        StartTime=_dt.datetime.fromtimestamp(start, _dt.UTC),
        EndTime=_dt.datetime.fromtimestamp(end, _dt.UTC),
        Period=60,
        Statistics=["Sum"],
    )
    out: dict[int, float] = {}
    for dp in resp.get("Datapoints", []):
        minute = int(dp["Timestamp"].timestamp() // 60 * 60)
        out[minute] = out.get(minute, 0.0) + float(dp.get("Sum") or 0.0)
    return out


def read_table_metrics(client: Any, table: str, start_ms: float, end_ms: float) -> TableMetrics:
    start, end = window_minutes(start_ms, end_ms)
    out = TableMetrics(start_s=start, end_s=end)
    dims = [{"Name": "TableName", "Value": table}]
    for name in TABLE_METRICS:
        minutes = _stats(client, name, dims, start, end)
        out.per_minute[name] = minutes
        out.sums[name] = sum(minutes.values()) if minutes else None
    listed = client.list_metrics(Namespace=NAMESPACE, MetricName="ThrottledRequests", Dimensions=dims)
    for metric in listed.get("Metrics", []):
        op = next((d["Value"] for d in metric.get("Dimensions", []) if d["Name"] == "Operation"), None)
        if op is None:
            continue
        minutes = _stats(client, "ThrottledRequests", metric["Dimensions"], start, end)
        out.throttled_requests[op] = out.throttled_requests.get(op, 0.0) + sum(minutes.values())
    return out
