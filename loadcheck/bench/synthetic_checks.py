"""Synthetic runs: a ledger, the table contents and access logs a correct stack would leave.

Used by the checks' unit tests (to seed one fault at a time into otherwise clean data) and by
``loadcheck bench checks`` (100,000 requests). Everything is written through the real
interfaces: ``LedgerWriter`` for the ledger, boto3 ``put_item``/``put_log_events`` (moto in
tests) for the table and the log group.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core.ledger import LedgerWriter, item_digest
from loadcheck.core.plain_items import item_size, write_units
from loadcheck.core.rundir import RunRecord, iso_utc
from loadcheck.core.rundir import write_run as write_run_record
from loadcheck.core.state import write_json_atomic
from loadcheck.core.target import Target

REGION = "us-east-1"
ACCOUNT = "123456789012"
DOMAIN = "events.loadcheck.test"
REQUESTER_ARN = f"arn:aws:iam::{ACCOUNT}:user/loadcheck-requester"


def synthetic_target(*, table: str = "EventLog", log_group: str = "/aws/apigateway/loadcheck-http-api") -> Target:
    return Target(
        kind="local",
        region=REGION,
        account_id=ACCOUNT,
        api_id="a1b2c3d4e5",
        domain=DOMAIN,
        url=f"https://{DOMAIN}:8443",
        connect_address="127.0.0.1",
        connect_port=8443,
        table_name=table,
        access_log_group=log_group,
        lambda_log_groups={},
        function_names={},
        search_endpoint=None,
        search_index=None,
    )


def request_id(n: int, salt: str = "") -> str:
    """A short base64 id like API Gateway's (docs/aws-behaviour.md §1.4: ``Mc7UVioPPHcEKPA=``)."""
    return base64.b64encode(hashlib.sha256(f"{salt}{n}".encode()).digest()[:10]).decode()


def make_records(
    *,
    run_id: str = "r1",
    start_ms: float | None = None,
    writes: int = 20,
    reads: int = 5,
    per_second: float = 10.0,
    dates: Iterable[str] = ("2031-01-01",),
    throttle_after: int | None = None,
    collisions: int = 0,
) -> list[dict[str, Any]]:
    """Ledger records of a clean run: ``writes`` POSTs (2xx unless past ``throttle_after``, then
    429 with Retry-After), ``collisions`` extra POSTs reusing earlier keys (answered 409),
    ``reads`` GETs by date."""
    if start_ms is None:  # recent: CloudWatch Logs refuses events older than 14 days
        start_ms = float(int(time.time()) - 600) * 1000.0
    dates = list(dates)
    out: list[dict[str, Any]] = []
    seq = 0

    def base(route: str, path: str, status: int, t: float, body_len: int) -> dict[str, Any]:
        nonlocal seq
        rec = {
            "run_id": run_id,
            "worker": "local",
            "seq": seq,
            "t_start_ms": t,
            "t_intended_ms": t,
            "route": route,
            "method": route.split()[0],
            "path": path,
            "status": status,
            "error": None,
            "latency_ms": 12.5 + (seq % 7),
            "response_length": body_len,
            "request_id": request_id(seq, run_id),
        }
        seq += 1
        return rec

    items: list[dict[str, Any]] = []
    for i in range(writes):
        t = start_ms + i * 1000.0 / per_second
        date = dates[i % len(dates)]
        item = {
            "date": date,
            "time": f"{i // 3_600_000:02d}:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}",
            "userId": f"{run_id}-u{i % 5}",
            "eventType": "click",
        }
        items.append(item)
        throttled = throttle_after is not None and i >= throttle_after
        status = 429 if throttled else 201
        body = json.dumps({"message": "Too Many Requests"} if throttled else item)
        rec = base("POST /events", "/events", status, t, len(body))
        rec.update(item_key={"date": date, "time": item["time"]}, item=item, item_digest=item_digest(item))
        if throttled:
            rec["retry_after"] = "1"
        out.append(rec)
    for j in range(collisions):
        first = items[j]
        item = dict(first, userId=f"{run_id}-collider{j}")
        rec = base("POST /events", "/events", 409, out[j]["t_start_ms"] + 1.0, 40)
        rec.update(item_key={"date": first["date"], "time": first["time"]}, item=item, item_digest=item_digest(item))
        out.append(rec)
    for k in range(reads):
        t = start_ms + k * 1000.0 / per_second + 0.5
        date = dates[k % len(dates)]
        out.append(base("GET /events", f"/events?date={date}", 200, t, 300))
    out.sort(key=lambda r: r["t_start_ms"])
    return out


def write_run(
    run_dir: Path, records: list[dict[str, Any]], *, target: Target | None = None, histograms: bool = True
) -> Path:
    """run.json + ledger (+ histograms.json) for ``records``."""
    run_dir = Path(run_dir)
    target = target or synthetic_target()
    writer = LedgerWriter(run_dir / "ledger", "local", batch=500)
    for rec in records:
        writer.write(rec)
    writer.close()
    start = min((r["t_start_ms"] for r in records), default=0.0)
    end = max((r["t_start_ms"] + r["latency_ms"] for r in records), default=0.0)
    write_run_record(
        run_dir,
        RunRecord(
            run_id=records[0]["run_id"] if records else run_dir.name,
            status="complete",
            target=target.to_public(),
            options={"duration_s": (end - start) / 1000.0},
            started_at=iso_utc((start - 500) / 1000.0),
            ended_at=iso_utc((end + 500) / 1000.0),
            ledger_records=len(records),
        ),
    )
    if histograms:
        per_route: dict[str, Any] = {}
        for rec in records:
            h = per_route.setdefault(rec["route"], HdrHistogram(1, 3_600_000_000, 3))
            h.record_value(max(1, int(rec["latency_ms"] * 1000)))
        write_json_atomic(
            run_dir / "histograms.json",
            {
                "version": 1,
                "unit": "us",
                "routes": {k: h.encode().decode() for k, h in per_route.items()},
                "intervals": [],
            },
        )
    return run_dir


def create_table(client: Any, name: str = "EventLog", *, rcu: int = 1, wcu: int = 1) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "date", "KeyType": "HASH"}, {"AttributeName": "time", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "date", "AttributeType": "S"},
            {"AttributeName": "time", "AttributeType": "S"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu},
    )


def store_acknowledged(client: Any, records: list[dict[str, Any]], table: str = "EventLog") -> int:
    """Put the item of every 2xx write, as a correct stack would have; returns the count."""
    n = 0
    for rec in records:
        if rec.get("item") is not None and 200 <= int(rec["status"]) < 300:
            client.put_item(TableName=table, Item={k: {"S": v} for k, v in rec["item"].items()})
            n += 1
    return n


def clf(ms: float) -> str:
    return _dt.datetime.fromtimestamp(ms / 1000.0, _dt.UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def access_log_record(rec: dict[str, Any], fmt: dict[str, str], *, domain: str = DOMAIN) -> dict[str, str]:
    """The access-log record the gateway writes for ledger record ``rec`` (docs/aws-behaviour.md §2)."""
    status = int(rec["status"])
    t = int(rec["t_start_ms"])
    gateway_error = status in (403, 404, 413) or (status == 429 and "item" not in rec)
    values = {
        "$context.requestId": rec["request_id"],
        "$context.extendedRequestId": rec["request_id"],
        "$context.identity.sourceIp": "127.0.0.1",
        "$context.requestTime": clf(t),
        "$context.requestTimeEpoch": str(t),
        "$context.httpMethod": rec["method"],
        "$context.routeKey": rec["route"],
        "$context.path": rec["path"].split("?")[0],
        "$context.status": str(status),
        "$context.protocol": "HTTP/1.1",
        "$context.responseLength": str(rec.get("response_length") or 0),
        "$context.responseLatency": str(int(rec["latency_ms"])),
        "$context.integrationLatency": "-" if gateway_error else str(max(0, int(rec["latency_ms"]) - 2)),
        "$context.integration.latency": "-" if gateway_error else str(max(0, int(rec["latency_ms"]) - 2)),
        "$context.integrationStatus": "-" if gateway_error else "200",
        "$context.integrationErrorMessage": "-",
        "$context.error.message": "Forbidden" if status == 403 else "-",
        "$context.error.responseType": "ACCESS_DENIED" if status == 403 else "-",
        "$context.authorizer.error": "User is not authorized" if status == 403 else "-",
        "$context.domainName": domain,
        "$context.identity.userAgent": "locust/2.43 loadcheck",
        "$context.identity.userArn": "-" if status == 403 else REQUESTER_ARN,
    }
    return {field: values.get(var, "-") for field, var in fmt.items()}


def put_access_logs(
    client: Any,
    group: str,
    records: list[dict[str, Any]],
    fmt: dict[str, str],
    *,
    stream: str = "2031-01-01/$default",
    create: bool = True,
) -> int:
    """Ship one access-log record per request (in batches, chronologically)."""
    if create:
        client.create_log_group(logGroupName=group)
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    events: list[dict[str, Any]] = [
        {"timestamp": int(r["t_start_ms"]), "message": json.dumps(access_log_record(r, fmt))}
        for r in records
        if r.get("request_id")
    ]
    events.sort(key=lambda e: e["timestamp"])
    for i in range(0, len(events), 5000):
        client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i : i + 5000])
    return len(events)


def throttled_writes(
    *,
    run_id: str = "r1",
    seconds: float = 30.0,
    per_second: float = 20.0,
    rate: float = 1.0,
    start_level: float = 100.0,
    start_ms: float | None = None,
    date: str = "2031-01-02",
    latency_ms: float = 15.0,
) -> list[dict[str, Any]]:
    """POST /events records of a run offered above capacity, answered as a correct table +
    handler would: a bucket (refill ``rate``/s, at most 300 s of it, starting at
    ``start_level``) admits each write or the handler answers 429 with Retry-After."""
    if start_ms is None:
        start_ms = float(int(time.time()) - 600) * 1000.0
    burst = 300.0 * rate
    level, last = start_level, 0.0
    out = []
    n = int(seconds * per_second)
    for i in range(n):
        t = i / per_second
        level = min(burst, level + rate * (t - last))
        last = t
        item = {"date": date, "time": f"t{i:06d}", "userId": f"{run_id}-u", "eventType": "load"}
        ok = level >= 1.0
        if ok:
            level -= 1.0
        rec = {
            "run_id": run_id,
            "worker": "local",
            "seq": i,
            "t_start_ms": start_ms + t * 1000.0,
            "t_intended_ms": start_ms + t * 1000.0,
            "route": "POST /events",
            "method": "POST",
            "path": "/events",
            "status": 201 if ok else 429,
            "error": None,
            "latency_ms": latency_ms,
            "response_length": 90 if ok else 33,
            "request_id": request_id(i, run_id + "w"),
            "item_key": {"date": date, "time": item["time"]},
            "item": item,
            "item_digest": item_digest(item),
            "retry_after": None if ok else "1",
        }
        out.append(rec)
    return out


def publish_metrics(client: Any, table: str, records: list[dict[str, Any]], *, attempts_per_throttle: int = 3) -> None:
    """Put the AWS/DynamoDB metrics a correct table would publish for ``records`` (per minute)."""
    minutes: dict[int, dict[str, float]] = {}
    for r in records:
        m = minutes.setdefault(int(r["t_start_ms"] / 1000 // 60 * 60), {})
        status = int(r["status"])
        if r.get("item") is not None:
            if 200 <= status < 300 or status == 409:
                m["ConsumedWriteCapacityUnits"] = m.get("ConsumedWriteCapacityUnits", 0) + write_units(
                    item_size(r["item"])
                )
            elif status == 429:
                m["WriteThrottleEvents"] = m.get("WriteThrottleEvents", 0) + attempts_per_throttle
                m["ThrottledRequests"] = m.get("ThrottledRequests", 0) + attempts_per_throttle
        elif r["route"] == "GET /events" and 200 <= status < 300:
            m["ConsumedReadCapacityUnits"] = m.get("ConsumedReadCapacityUnits", 0) + 0.5
    for minute, values in minutes.items():
        stamp = _dt.datetime.fromtimestamp(minute, _dt.UTC)
        data = []
        for name in (
            "ConsumedWriteCapacityUnits",
            "ConsumedReadCapacityUnits",
            "WriteThrottleEvents",
            "ReadThrottleEvents",
        ):
            data.append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "TableName", "Value": table}],
                    "Timestamp": stamp,
                    "Value": values.get(name, 0.0),
                    "Unit": "Count",
                }
            )
        data.append(
            {
                "MetricName": "ThrottledRequests",
                "Timestamp": stamp,
                "Value": values.get("ThrottledRequests", 0.0),
                "Dimensions": [{"Name": "TableName", "Value": table}, {"Name": "Operation", "Value": "PutItem"}],
                "Unit": "Count",
            }
        )
        client.put_metric_data(Namespace="AWS/DynamoDB", MetricData=data)
