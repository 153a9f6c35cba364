"""CloudWatch ``GetMetricData`` answered by the aws service instead of moto (WSGI middleware).

moto evaluates only an expression that is one query's ``Id`` (any other returns an empty series)
and, for a ``MetricStat`` with ``Dimensions``, ignores the namespace; without ``Dimensions`` it
adds up every dimension set of the name. This layer sits between the governor and the Logs
layer, and answers ``X-Amz-Target: GraniteServiceVersion20100801.GetMetricData`` (the AWS JSON
1.0 protocol botocore and the aws CLI speak to CloudWatch, docs/aws-behaviour.md §11.3) over
moto's stored data points:

- a ``MetricStat`` selects the data points whose namespace, metric name and **whole** dimension
  set equal the query's (and ``Unit``, when given), as CloudWatch identifies a metric
  (docs/aws-behaviour.md §11.6); statistics ``Sum``, ``SampleCount``, ``Average``, ``Minimum``,
  ``Maximum`` per period;
- an ``Expression`` is metric math (:mod:`.metric_math`) over the other queries; an array result
  is one ``MetricDataResults`` entry per series, all with the expression's ``Id``;
- an expression that cannot be evaluated, an ``Id`` that is not a lower-case-led word or
  repeats, a query with both or neither of ``MetricStat``/``Expression``: HTTP 400
  ``ValidationError``, as CloudWatch refuses them.

Metrics Insights (``SELECT ...``) queries, requests moto should refuse (bad body) and every other
CloudWatch operation go to moto. The governor calls this layer under its "other services" lock.

Departures (docs/fidelity.md "CloudWatch metrics"): periods start at ``StartTime`` rounded down
to the minute (AWS also rounds by the data's age); extended statistics (``p99``, ``TM90``...) are
refused with ``ValidationError``; ``MaxDatapoints``, ``NextToken`` and ``LabelOptions`` are
ignored (every point comes in one page); an expression's default label is its ``Id`` and a member
of an array result is labelled "<expression label> <metric label>" (UNCONFIRMED); the error
messages are ours (UNCONFIRMED: AWS's wording); the query protocol (``Action=GetMetricData``
form posts) goes to moto.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends

from reference_stack.local.aws.cloudwatch.metric_math import (
    TS,
    Context,
    MetricMathError,
    TSArray,
    Value,
    evaluate,
    parse,
)
from reference_stack.local.aws.protocol import Reply, WsgiApp, call_app, read_body, region_of

TARGET = "GraniteServiceVersion20100801.GetMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"
STATS = ("Sum", "SampleCount", "Average", "Minimum", "Maximum")
MAX_QUERIES = 500
_ID = re.compile(r"[a-z][A-Za-z0-9_]*")


class ValidationError(Exception):
    """CloudWatch's ``ValidationError`` (HTTP 400, ``Sender``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MetricDataExtensions:
    """WSGI app: ``GetMetricData`` as above, everything else to ``app``."""

    def __init__(self, *, app: WsgiApp, account_id: str, default_region: str) -> None:
        self.app = app
        self.account_id = account_id
        self.default_region = default_region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "") != TARGET:
            return self.app(environ, start_response)
        body = read_body(environ)
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = None
        try:
            payload = self.get_metric_data(region_of(environ, self.default_region), request)
        except ValidationError as exc:
            return _error(exc.message).send(start_response)
        if payload is None:
            return call_app(self.app, environ, body).send(start_response)
        return _reply(200, payload).send(start_response)

    def get_metric_data(self, region: str, req: Any) -> dict[str, Any] | None:
        """The response payload, or None when moto should answer the request as it stands."""
        if not isinstance(req, dict) or not isinstance(req.get("MetricDataQueries"), list):
            return None
        queries = req["MetricDataQueries"]
        if not all(isinstance(q, dict) for q in queries):
            return None
        if any(str(q.get("Expression", "")).lstrip().upper().startswith("SELECT") for q in queries):
            return None  # Metrics Insights: moto's
        start, end = _time(req, "StartTime"), _time(req, "EndTime")
        if start > end:
            raise ValidationError("The parameter EndTime must be greater than StartTime.")
        if start == end:
            raise ValidationError("The parameter StartTime must not equal parameter EndTime.")
        _validate(queries)
        data = cloudwatch_backends[self.account_id][region].get_all_metrics()
        evaluator = _Evaluator(queries, data, start, end)
        results: list[dict[str, Any]] = []
        for q in queries:
            if q.get("ReturnData", True) is not False:
                results += evaluator.results(q)
        descending = req.get("ScanBy", "TimestampDescending") != "TimestampAscending"
        for r in results:
            pairs = sorted(zip(r["Timestamps"], r["Values"], strict=True), reverse=descending)
            r["Timestamps"], r["Values"] = [t for t, _ in pairs], [v for _, v in pairs]
        return {"MetricDataResults": results, "Messages": []}


def _validate(queries: list[dict[str, Any]]) -> None:
    if not 1 <= len(queries) <= MAX_QUERIES:
        raise ValidationError(f"MetricDataQueries holds {len(queries)} queries; send 1 to {MAX_QUERIES}.")
    seen: set[str] = set()
    for n, q in enumerate(queries, 1):
        ident = q.get("Id")
        if not isinstance(ident, str) or not _ID.fullmatch(ident):
            raise ValidationError(
                f"The value {ident!r} for parameter MetricDataQueries.member.{n}.Id is invalid: "
                "an Id starts with a lower-case letter and holds letters, digits and underscores."
            )
        if ident in seen:
            raise ValidationError(f"The value {ident} for parameter MetricDataQueries.member.{n}.Id is a duplicate.")
        seen.add(ident)
        if ("MetricStat" in q) == ("Expression" in q):
            raise ValidationError(
                f"Exactly one of MetricStat and Expression must be given in MetricDataQueries.member.{n} ({ident})."
            )
        stat = q.get("MetricStat")
        if stat is not None:
            if not isinstance(stat, dict) or not isinstance(stat.get("Metric"), dict):
                raise ValidationError(f"The parameter MetricDataQueries.member.{n}.MetricStat.Metric is required.")
            period = stat.get("Period")
            if isinstance(period, bool) or not isinstance(period, int) or period < 1:
                raise ValidationError(f"The parameter MetricDataQueries.member.{n}.MetricStat.Period is invalid.")
            if stat.get("Stat") not in STATS:
                raise ValidationError(
                    f"The statistic {stat.get('Stat')!r} of {ident} is not one the local stack computes; "
                    f"use one of {', '.join(STATS)}."
                )


class _Evaluator:
    def __init__(self, queries: list[dict[str, Any]], data: list[Any], start: int, end: int) -> None:
        self.queries = {q["Id"]: q for q in queries}
        self.data = data
        self.start, self.end = start, end
        self.cache: dict[str, Value] = {}
        self.busy: set[str] = set()
        periods = {i: int(q["MetricStat"]["Period"]) for i, q in self.queries.items() if "MetricStat" in q}
        step = min(periods.values(), default=60)
        self.ctx = Context(
            resolve=self.resolve,
            metric_ids=list(periods),
            periods=periods,
            grid=list(range(_origin(start, step), end, step)),
        )

    def resolve(self, ident: str) -> Value:
        if ident in self.cache:
            return self.cache[ident]
        query = self.queries.get(ident)
        if query is None:
            raise MetricMathError(f"{ident} is not the Id of a query in this request")
        if ident in self.busy:
            raise MetricMathError(f"{ident} refers to itself (through {', '.join(sorted(self.busy))})")
        self.busy.add(ident)
        try:
            if "MetricStat" in query:
                value: Value = self._series(query)
            else:
                value = evaluate(parse(str(query["Expression"])), self.ctx)
        finally:
            self.busy.discard(ident)
        self.cache[ident] = value
        return value

    def results(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        ident = query["Id"]
        try:
            value = self.resolve(ident)
        except MetricMathError as exc:
            raise ValidationError(f"Error in expression {ident} ({query.get('Expression')!r}): {exc.message}") from None
        label = query.get("Label")
        if isinstance(value, float):
            raise ValidationError(
                f"Error in expression {ident} ({query.get('Expression')!r}): the result is a number; "
                "an expression must end in a time series or an array of them (e.g. m1 - AVG(m1))."
            )
        if isinstance(value, TS):
            return [_result(ident, label or (value.label if "MetricStat" in query else ident), value)]
        assert isinstance(value, TSArray)
        return [_result(ident, f"{label} {m.label}" if label else m.label, m) for m in value.members]

    def _series(self, query: dict[str, Any]) -> TS:
        stat = query["MetricStat"]
        metric = stat["Metric"]
        namespace, name = metric.get("Namespace"), metric.get("MetricName")
        dims = sorted((str(d.get("Name")), str(d.get("Value"))) for d in metric.get("Dimensions") or [])
        unit, period = stat.get("Unit"), int(stat["Period"])
        origin = _origin(self.start, period)
        buckets: dict[int, list[Any]] = {}
        for d in self.data:
            if d.namespace != namespace or d.name != name or (unit and d.unit != unit):
                continue
            if sorted((x.name, x.value) for x in d.dimensions) != dims:
                continue
            t = _epoch(d.timestamp)
            if origin <= t < self.end:
                buckets.setdefault(origin + (t - origin) // period * period, []).append(d)
        points = {t: _statistic(stat["Stat"], ds) for t, ds in sorted(buckets.items())}
        return TS(points, query.get("Label") or str(name), query["Id"])


def _statistic(stat: str, data: list[Any]) -> float:
    sums = [s for d in data for s in _parts(d)]
    total, count = math.fsum(s[0] for s in sums), math.fsum(s[1] for s in sums)
    if stat == "Sum":
        return total
    if stat == "SampleCount":
        return count
    if stat == "Average":
        return total / count if count else 0.0
    if stat == "Minimum":
        return min(s[2] for s in sums)
    return max(s[3] for s in sums)


def _parts(d: Any) -> list[tuple[float, float, float, float]]:
    if hasattr(d, "sample_count"):
        return [(float(d.sum), float(d.sample_count), float(d.min), float(d.max))]
    v = float(d.value)
    return [(v, 1.0, v, v)]


def _result(ident: str, label: str, ts: TS) -> dict[str, Any]:
    pts = [(t, v) for t, v in ts.sorted() if math.isfinite(v)]
    return {
        "Id": ident,
        "Label": label,
        "Timestamps": [t for t, _ in pts],
        "Values": [v for _, v in pts],
        "StatusCode": "Complete",
    }


def _origin(start: int, period: int) -> int:
    """The first period's start: ``StartTime`` rounded down to the minute for periods of a minute or more."""
    return start - start % 60 if period >= 60 else start


def _epoch(stamp: datetime) -> int:
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp())


def _time(req: dict[str, Any], key: str) -> int:
    value = req.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"The parameter {key} is required (epoch seconds), got {value!r}.")
    return int(value)


def _reply(code: int, payload: dict[str, Any]) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [
        ("Content-Type", CONTENT_TYPE),
        ("x-amzn-RequestId", str(uuid.uuid4())),
        ("Content-Length", str(len(body))),
    ]
    return Reply(f"{code} {'OK' if code == 200 else 'Bad Request'}", headers, body)


def _error(message: str) -> Reply:
    """CloudWatch's error over JSON 1.0 for a query-compatible service: the query code in ``x-amzn-query-error``."""
    reply = _reply(400, {"__type": "com.amazonaws.cloudwatch#ValidationError", "message": message})
    reply.headers.append(("x-amzn-query-error", "ValidationError;Sender"))
    return reply
