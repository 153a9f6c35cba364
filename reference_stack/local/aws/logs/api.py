"""CloudWatch Logs operations the aws service answers itself instead of moto (WSGI middleware).

moto returns every event for a JSON or space-delimited ``filterPattern`` and does not evaluate
Logs Insights queries (docs/emulator-notes.md §5). This layer sits between the governor and
moto's app and answers, over the Logs JSON 1.1 protocol (``X-Amz-Target: Logs_20140328.<Op>``):

- ``FilterLogEvents``: the events of moto's log group that match the pattern
  (:mod:`.patterns`), with ``startTime``/``endTime`` (inclusive), ``logStreamNames`` or
  ``logStreamNamePrefix``, ``limit`` (1-10,000) and an opaque ``nextToken``; a pattern that does
  not parse is ``InvalidParameterException``;
- ``StartQuery`` / ``GetQueryResults`` / ``StopQuery`` / ``DescribeQueries``: Logs Insights
  (:mod:`.insights_parse`, :mod:`.insights_run`); a query that does not compile is
  ``MalformedQueryException`` with ``queryCompileError``.

Everything else, and any request naming a log group moto does not have, goes to moto, which
answers (``ResourceNotFoundException``...). The governor calls this layer under its
"other services" lock, so reading moto's state here is safe.

Departures (docs/fidelity.md "CloudWatch Logs"): a query is evaluated when it starts, over the
events stored then; the first ``GetQueryResults`` says ``Running`` (no rows) and the next ones
``Complete``, so clients exercise their polling loop; ``StopQuery`` on a query that is no longer
running is ``InvalidParameterException`` (UNCONFIRMED); queries are kept for the life of the
process (at most 1,000); ``searchedLogStreams`` lists the streams searched, all completely;
``unmask``, field indexes and ``queryLanguage`` other than ``CWLI`` are not modelled.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.logs.models import logs_backends

from reference_stack.local.aws.logs import patterns
from reference_stack.local.aws.logs.errors import InvalidParameter, LogsApiError
from reference_stack.local.aws.logs.insights_parse import parse_query
from reference_stack.local.aws.logs.insights_run import Event, Outcome, run
from reference_stack.local.aws.protocol import Reply, WsgiApp, call_app, read_body, region_of

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_QUERIES = 1000
MAX_LIMIT = 10000


@dataclass
class _Query:
    query_id: str
    query_string: str
    groups: list[str]
    created_ms: int
    outcome: Outcome
    status: str = "Running"
    polls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class LogsExtensions:
    """WSGI app: the Logs operations above, everything else to ``app`` (moto)."""

    def __init__(
        self, *, app: WsgiApp, account_id: str, default_region: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self.account_id = account_id
        self.default_region = default_region
        self.clock = clock
        self.queries: OrderedDict[str, _Query] = OrderedDict()
        self._lock = threading.Lock()
        self._ops: dict[str, Callable[[str, dict[str, Any]], dict[str, Any] | None]] = {
            "FilterLogEvents": self.filter_log_events,
            "StartQuery": self.start_query,
            "GetQueryResults": self.get_query_results,
            "StopQuery": self.stop_query,
            "DescribeQueries": self.describe_queries,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        handler = self._ops.get(target[len(TARGET_PREFIX) :]) if target.startswith(TARGET_PREFIX) else None
        if handler is None:
            return self.app(environ, start_response)
        body = read_body(environ)
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return call_app(self.app, environ, body).send(start_response)  # moto answers the bad body
        try:
            payload = handler(region_of(environ, self.default_region), request)
        except LogsApiError as exc:
            return _reply(400, exc.body()).send(start_response)
        if payload is None:
            return call_app(self.app, environ, body).send(start_response)
        return _reply(200, payload).send(start_response)

    # -- moto's state ----------------------------------------------------------------------------

    def _group(self, region: str, ident: Any) -> Any | None:
        """moto's LogGroup for a name or ARN, or None (then moto answers ResourceNotFound)."""
        if not isinstance(ident, str) or not ident:
            return None
        name = ident.split(":log-group:", 1)[1].removesuffix(":*") if ":log-group:" in ident else ident
        return logs_backends[self.account_id][region].groups.get(name)

    # -- FilterLogEvents ---------------------------------------------------------------------------

    def filter_log_events(self, region: str, req: dict[str, Any]) -> dict[str, Any] | None:
        ident = req.get("logGroupName") or req.get("logGroupIdentifier")
        if req.get("logGroupName") and req.get("logGroupIdentifier"):
            raise InvalidParameter("LogGroupName and LogGroupIdentifier are mutually exclusive parameters.")
        names, prefix = req.get("logStreamNames"), req.get("logStreamNamePrefix")
        if names and prefix:
            raise InvalidParameter("Cannot specify both logStreamNames and logStreamNamePrefix.")
        limit = _int(req, "limit", MAX_LIMIT, low=1, high=MAX_LIMIT)
        match = patterns.parse(str(req.get("filterPattern") or ""))
        group = self._group(region, ident)
        if group is None:
            return None
        start, end = _int(req, "startTime", None, low=0), _int(req, "endTime", None, low=0)
        streams = [
            s
            for name, s in sorted(group.streams.items())
            if (not names or name in names) and (not prefix or name.startswith(str(prefix)))
        ]
        found = [
            (e.timestamp, s.log_stream_name, e)
            for s in streams
            for e in s.events
            if (start is None or e.timestamp >= start) and (end is None or e.timestamp <= end) and match(e.message)
        ]
        found.sort(key=lambda t: (t[0], t[1], t[2].event_id))
        offset = _offset(req.get("nextToken"), group.name)
        page = found[offset : offset + limit]
        out: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                    "eventId": _event_id(e.timestamp, e.event_id),
                }
                for _, stream, e in page
            ],
            "searchedLogStreams": [{"logStreamName": s.log_stream_name, "searchedCompletely": True} for s in streams],
        }
        if offset + limit < len(found):
            out["nextToken"] = _token(group.name, offset + limit)
        return out

    # -- Logs Insights -----------------------------------------------------------------------------

    def start_query(self, region: str, req: dict[str, Any]) -> dict[str, Any] | None:
        idents = [req["logGroupName"]] if req.get("logGroupName") else []
        idents += list(req.get("logGroupNames") or []) + list(req.get("logGroupIdentifiers") or [])
        if not idents:
            raise InvalidParameter(
                "Specify at least one log group: logGroupName, logGroupNames or logGroupIdentifiers."
            )
        language = req.get("queryLanguage", "CWLI")
        if language != "CWLI":
            raise InvalidParameter(f"queryLanguage {language!r} is not supported by the local stack; use CWLI.")
        start, end = _int(req, "startTime", None, low=0), _int(req, "endTime", None, low=0)
        if start is None or end is None:
            raise InvalidParameter("startTime and endTime are required (epoch seconds).")
        if end < start:
            raise InvalidParameter("endTime must be greater than or equal to startTime.")
        limit = _int(req, "limit", MAX_LIMIT, low=1, high=MAX_LIMIT)
        text = str(req.get("queryString") or "")
        commands = parse_query(text)
        found = [self._group(region, i) for i in idents]
        if any(g is None for g in found):
            return None  # moto answers ResourceNotFoundException for the missing group
        groups: list[Any] = found
        events = [
            Event(
                group=g.name,
                stream=s.log_stream_name,
                timestamp=e.timestamp,
                ingestion_time=e.ingestion_time,
                message=e.message,
                ptr=base64.b64encode(f"{g.name}|{s.log_stream_name}|{e.event_id}".encode()).decode(),
            )
            for g in groups
            for s in g.streams.values()
            for e in s.events
            if start * 1000 <= e.timestamp < (end + 1) * 1000
        ]
        outcome = run(commands, events, account_id=self.account_id, limit=limit)
        query = _Query(str(uuid.uuid4()), text, [g.name for g in groups], int(self.clock() * 1000), outcome)
        with self._lock:
            self.queries[query.query_id] = query
            while len(self.queries) > MAX_QUERIES:
                self.queries.popitem(last=False)
        return {"queryId": query.query_id}

    def _query(self, req: dict[str, Any]) -> _Query:
        query = self.queries.get(str(req.get("queryId") or ""))
        if query is None:
            raise LogsApiError("ResourceNotFoundException", f"Query {req.get('queryId')!r} does not exist.")
        return query

    def get_query_results(self, region: str, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            query = self._query(req)
            query.polls += 1
            if query.status == "Running" and query.polls > 1:
                query.status = "Complete"
            status = query.status
        done = status == "Complete"
        o = query.outcome
        return {
            "queryLanguage": "CWLI",
            "results": o.rows if done else [],
            "statistics": {
                "recordsMatched": o.records_matched if done else 0.0,
                "recordsScanned": o.records_scanned if done else 0.0,
                "bytesScanned": o.bytes_scanned if done else 0.0,
            },
            "status": status,
        }

    def stop_query(self, region: str, req: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            query = self._query(req)
            if query.status != "Running":
                raise InvalidParameter(f"Query {query.query_id} is not running (status {query.status}).")
            query.status = "Cancelled"
        return {"success": True}

    def describe_queries(self, region: str, req: dict[str, Any]) -> dict[str, Any]:
        group, status = req.get("logGroupName"), req.get("status")
        with self._lock:
            chosen = [
                q
                for q in reversed(self.queries.values())
                if (not group or group in q.groups) and (not status or q.status == status)
            ]
        limit = _int(req, "maxResults", 1000, low=1, high=1000)
        return {
            "queries": [
                {
                    "queryLanguage": "CWLI",
                    "queryId": q.query_id,
                    "queryString": q.query_string,
                    "status": q.status,
                    "createTime": q.created_ms,
                    "logGroupName": q.groups[0],
                }
                for q in chosen[:limit]
            ]
        }


def _reply(code: int, payload: dict[str, Any]) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    reason = "OK" if code == 200 else "Bad Request"
    headers = [
        ("Content-Type", CONTENT_TYPE),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return Reply(f"{code} {reason}", headers, body)


def _int(req: dict[str, Any], key: str, default: int | None, *, low: int, high: int | None = None) -> Any:
    value = req.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise InvalidParameter(
            f"1 validation error detected: Value '{value}' at '{key}' failed to satisfy constraint: Member must be {bound}"
        )
    return value


def _event_id(timestamp: int, serial: int) -> str:
    """A numeric string like AWS's event ids (56 digits), unique per event."""
    return f"{timestamp:020d}{serial:036d}"


def _token(group: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([group, offset]).encode()).decode()


def _offset(token: Any, group: str) -> int:
    if not token:
        return 0
    try:
        name, offset = json.loads(base64.urlsafe_b64decode(str(token)))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidParameter("The specified nextToken is invalid.") from None
    if name != group or not isinstance(offset, int) or offset < 0:
        raise InvalidParameter("The specified nextToken is invalid.")
    return offset
