"""Reading access-log records from CloudWatch Logs, completely, filtering on our side.

``filter_log_events`` is paginated until no ``nextToken`` is left (AWS may return empty pages
with a token). We never send a filter pattern: moto returns every event for JSON patterns and
ignores Logs Insights filters (docs/emulator-notes.md §5), and on AWS a pattern would only hide
records the checks must see (duplicates, malformed lines). Delivery is eventually consistent
and its latency undocumented (docs/aws-behaviour.md §2.4): callers poll with a budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

CONTEXT_REQUEST_IDS = ("$context.requestId", "$context.extendedRequestId")
PAD_BEFORE_MS = 60_000  # event timestamps may precede the client's send time by clock skew
PAD_AFTER_MS = 3_600_000  # delivery may be late; ours are stamped with the request time anyway


@dataclass
class LogRecord:
    timestamp: int
    stream: str
    event_id: str
    message: str
    fields: dict[str, Any] | None  # the parsed JSON object, or None when the line is not one

    def get(self, name: str) -> Any:
        return None if self.fields is None else self.fields.get(name)


class LogGroupMissing(Exception):
    pass


def request_id_field(fmt: dict[str, str]) -> str:
    """The JSON field of the access-log format that holds the request id (required by AWS, §2.3)."""
    for var in CONTEXT_REQUEST_IDS:
        for name, value in fmt.items():
            if value.strip() == var:
                return name
    raise ValueError("access-log format has no $context.requestId field")


def parse(event: dict[str, Any]) -> LogRecord:
    message = event.get("message", "")
    try:
        fields = json.loads(message)
    except (json.JSONDecodeError, TypeError):
        fields = None
    if not isinstance(fields, dict):
        fields = None
    return LogRecord(
        int(event.get("timestamp") or 0), event.get("logStreamName", ""), str(event.get("eventId", "")), message, fields
    )


def fetch(client: Any, group: str, start_ms: float, end_ms: float) -> list[LogRecord]:
    """Every event of ``group`` stamped within [start - pad, end + pad]."""
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "startTime": max(0, int(start_ms - PAD_BEFORE_MS)),
        "endTime": int(end_ms + PAD_AFTER_MS),
        "limit": 10000,
    }
    out: list[LogRecord] = []
    seen_tokens: set[str] = set()
    while True:
        try:
            page = client.filter_log_events(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise LogGroupMissing(group) from exc
            raise
        out.extend(parse(e) for e in page.get("events", []))
        token = page.get("nextToken")
        if not token or token in seen_tokens:
            return out
        seen_tokens.add(token)
        kwargs["nextToken"] = token


def records_by_request_id(ctx: Any) -> dict[str, LogRecord] | None:
    """The run window's access-log records by request id, read once per check session and
    shared (``ctx.cache``); None when the log group cannot be read. No waiting: callers that
    need complete delivery poll themselves (access_logs does, and stores what it read here)."""
    if "access_log_records" not in ctx.cache:
        try:
            if ctx.flush is not None:
                ctx.flush()
            window = ctx.run_window()
            ctx.cache["access_log_records"] = fetch(
                ctx.client("logs"), ctx.target.access_log_group, window.start_ms, window.end_ms
            )
        except Exception:  # noqa: BLE001 - optional evidence: the caller says it was unavailable
            ctx.cache["access_log_records"] = None
    records = ctx.cache["access_log_records"]
    if records is None:
        return None
    field = request_id_field(ctx.description.access_log.format)
    return {str(r.get(field)): r for r in records if r.fields is not None}
