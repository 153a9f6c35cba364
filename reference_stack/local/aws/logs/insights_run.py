"""CloudWatch Logs Insights: running a parsed query over log events (pure; parser: :mod:`.insights_parse`).

Each event becomes a record: ``@timestamp``, ``@message``, ``@logStream``, ``@log``
(``<account>:<group>``), ``@ingestionTime``, ``@ptr``, every field of a JSON message (nested
objects flattened as ``a.b``, arrays as ``a.0``), and for Lambda ``REPORT`` lines ``@type``,
``@requestId``, ``@duration``, ``@billedDuration``, ``@memorySize``, ``@maxMemoryUsed``
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html).
Results are rows of ``{"field", "value"}`` with every value a string, as ``GetQueryResults``
returns them; timestamps render as ``2026-01-02 03:04:05.678``.

Departures (docs/fidelity.md "CloudWatch Logs"): comparisons are numeric when both sides read
as numbers (a JSON string ``"503"`` compares as 503), otherwise textual; a query without
``fields``/``display``/``stats`` returns ``@timestamp`` and ``@message``; events enter the query
newest first, so rows without ``sort`` come newest first and ``stats`` groups in order of their
newest event (AWS documents no order);
``pct`` is nearest-rank (AWS: approximate); field discovery knows JSON and Lambda REPORT lines,
not the other AWS-vended formats; ``recordsScanned``/``bytesScanned`` count the events of the
time range and their UTF-8 message bytes.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from reference_stack.local.aws.logs.insights_parse import (
    AGGREGATES,
    BinOp,
    Call,
    Command,
    Field,
    InList,
    Lit,
    Named,
    Not,
    Regex,
)

DEFAULT_FIELDS = ("@timestamp", "@message")
TIME_FIELDS = frozenset({"@timestamp", "@ingestionTime"})
_REPORT = re.compile(
    r"REPORT RequestId: (?P<rid>\S+)\s+Duration: (?P<d>[\d.]+) ms\s+Billed Duration: (?P<b>[\d.]+) ms\s+"
    r"Memory Size: (?P<m>\d+) MB\s+Max Memory Used: (?P<u>\d+) MB"
)


@dataclass(frozen=True)
class Event:
    group: str
    stream: str
    timestamp: int  # ms
    ingestion_time: int
    message: str
    ptr: str


@dataclass
class Outcome:
    rows: list[list[dict[str, str]]]
    records_matched: float
    records_scanned: float
    bytes_scanned: float


def record_of(event: Event, account_id: str) -> dict[str, Any]:
    rec: dict[str, Any] = {}
    text = event.message.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            _flatten(doc, "", rec)
    m = _REPORT.search(event.message)
    if m:
        rec.update(
            {
                "@type": "REPORT",
                "@requestId": m.group("rid"),
                "@duration": float(m.group("d")),
                "@billedDuration": float(m.group("b")),
                "@memorySize": int(m.group("m")) * 1_000_000,
                "@maxMemoryUsed": int(m.group("u")) * 1_000_000,
            }
        )
    rec.update(
        {
            "@timestamp": event.timestamp,
            "@message": event.message,
            "@logStream": event.stream,
            "@log": f"{account_id}:{event.group}",
            "@ingestionTime": event.ingestion_time,
            "@ptr": event.ptr,
        }
    )
    return rec


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), out)
    else:
        out[prefix] = value


def run(commands: list[Command], events: Iterable[Event], *, account_id: str, limit: int = 10000) -> Outcome:
    events = list(events)
    records = [record_of(e, account_id) for e in sorted(events, key=lambda e: -e.timestamp)]  # newest first
    selected: list[str] = []
    display: list[str] | None = None
    aggregated = False
    matched: int | None = None
    for cmd in commands:
        if cmd.kind == "filter":
            records = [r for r in records if _truthy(evaluate(cmd.condition, r))]
        elif cmd.kind in ("fields", "display"):
            for item in cmd.items:
                if not (isinstance(item.expr, Field) and item.expr.name == item.name):
                    for r in records:
                        value = evaluate(item.expr, r)
                        if value is not None:
                            r[item.name] = value
            names = [i.name for i in cmd.items]
            if cmd.kind == "display":
                display = names
            else:
                selected += [n for n in names if n not in selected]
        elif cmd.kind == "parse":
            records = [_parse_into(cmd, r) for r in records]
        elif cmd.kind == "stats":
            matched = len(records) if matched is None else matched
            records = _stats(cmd, records)
            selected = [n.name for n in cmd.by] + [n.name for n in cmd.items]
            aggregated = True
        elif cmd.kind == "sort":
            for item, desc in reversed(list(zip(cmd.items, cmd.descending, strict=True))):
                records.sort(key=_sorter(item.expr), reverse=desc)
        elif cmd.kind == "limit":
            matched = len(records) if matched is None else matched
            records = records[: cmd.limit]
    if matched is None:
        matched = len(records)
    columns = display or selected or list(DEFAULT_FIELDS)
    if not aggregated and "@ptr" not in columns:
        columns = [*columns, "@ptr"]
    rows = []
    for r in records[:limit]:
        rows.append([{"field": c, "value": render(c, r[c])} for c in columns if r.get(c) is not None])
    return Outcome(
        rows=rows,
        records_matched=float(matched),
        records_scanned=float(len(events)),
        bytes_scanned=float(sum(len(e.message.encode()) for e in events)),
    )


def _sorter(expr: Any) -> Callable[[dict[str, Any]], tuple[int, float, str]]:
    return lambda r: _sort_key(evaluate(expr, r))


def _parse_into(cmd: Command, rec: dict[str, Any]) -> dict[str, Any]:
    assert cmd.regex is not None
    source = evaluate(cmd.source, rec)
    if source is None:
        return rec
    m = cmd.regex.search(str(source))
    if m:
        groups = m.groupdict() if cmd.regex.groupindex else dict(zip(cmd.names, m.groups(), strict=True))
        rec.update({k: v for k, v in groups.items() if v is not None})
    return rec


def _stats(cmd: Command, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        key = tuple(_group_value(n, r) for n in cmd.by)
        if any(v is None for v in key):
            continue  # an event without a grouping field is left out, as Insights does
        groups.setdefault(key, []).append(r)
    if not cmd.by and not groups:
        groups[()] = []
    out = []
    for key, members in groups.items():
        row: dict[str, Any] = {n.name: v for n, v in zip(cmd.by, key, strict=True)}
        for item in cmd.items:
            row[item.name] = _aggregate(item.expr, members)
        out.append(row)
    return out


def _group_value(named: Named, rec: dict[str, Any]) -> Any:
    expr = named.expr
    if isinstance(expr, Call) and expr.name == "bin":
        period_ms = float(expr.args[0].value) * 1000
        return _Time(int(math.floor(rec["@timestamp"] / period_ms) * period_ms))
    value = evaluate(expr, rec)
    return _Time(value) if isinstance(expr, Field) and expr.name in TIME_FIELDS and value is not None else value


class _Time(int):
    """An epoch-milliseconds value that renders as a timestamp."""


def _aggregate(node: Any, members: list[dict[str, Any]]) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, BinOp):
        return _arith(node.op, _aggregate(node.left, members), _aggregate(node.right, members))
    if not isinstance(node, Call) or node.name not in AGGREGATES:
        return None
    if node.name == "count":
        if not node.args:
            return len(members)
        return sum(1 for r in members if evaluate(node.args[0], r) is not None)
    values = [v for r in members if (v := evaluate(node.args[0], r)) is not None]
    if node.name == "count_distinct":
        return len({json.dumps(v, sort_keys=True) for v in values})
    if node.name in ("earliest", "latest"):
        pairs = [(r["@timestamp"], v) for r in members if (v := evaluate(node.args[0], r)) is not None]
        if not pairs:
            return None
        return (min if node.name == "earliest" else max)(pairs, key=lambda p: p[0])[1]
    numbers = [n for v in values if (n := _number(v)) is not None]
    if not numbers:
        return None
    if node.name == "sum":
        return sum(numbers)
    if node.name == "avg":
        return sum(numbers) / len(numbers)
    if node.name == "min":
        return min(numbers)
    if node.name == "max":
        return max(numbers)
    if node.name == "stddev":
        return statistics.stdev(numbers) if len(numbers) > 1 else 0.0
    # pct: nearest rank
    p = float(node.args[1].value)
    ordered = sorted(numbers)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


# -- scalar expressions ------------------------------------------------------------------------------


def evaluate(node: Any, rec: dict[str, Any]) -> Any:
    """The value of ``node`` for one record; None when a field it needs is missing."""
    if isinstance(node, Field):
        return rec.get(node.name)
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, Regex):
        return node
    if isinstance(node, Not):
        return not _truthy(evaluate(node.operand, rec))
    if isinstance(node, InList):
        value = evaluate(node.operand, rec)
        found = value is not None and any(_equal(value, evaluate(i, rec)) for i in node.items)
        return value is not None and found != node.negate  # a missing field is in no list, nor out of one
    if isinstance(node, BinOp):
        if node.op == "and":
            return _truthy(evaluate(node.left, rec)) and _truthy(evaluate(node.right, rec))
        if node.op == "or":
            return _truthy(evaluate(node.left, rec)) or _truthy(evaluate(node.right, rec))
        left, right = evaluate(node.left, rec), evaluate(node.right, rec)
        if node.op in ("like", "=~"):
            if left is None:
                return False
            if isinstance(right, Regex):
                return right.pattern.search(str(left)) is not None
            return right is not None and str(right) in str(left)
        if node.op in ("=", "!=", "<", "<=", ">", ">="):
            return _compare(node.op, left, right)
        return _arith(node.op, left, right)
    if isinstance(node, Call):
        return _call(node, rec)
    raise TypeError(f"unknown expression node {node!r}")  # the parser builds no other node


def _call(node: Call, rec: dict[str, Any]) -> Any:
    args = [evaluate(a, rec) for a in node.args]
    name = node.name
    if name == "ispresent":
        return args[0] is not None
    if name == "isempty":
        return args[0] is None or args[0] == ""
    if name == "isblank":
        return args[0] is None or str(args[0]).strip() == ""
    if any(a is None for a in args):
        return None
    if name == "concat":
        return "".join(str(a) for a in args)
    if name == "strcontains":
        return 1 if str(args[1]) in str(args[0]) else 0
    if name == "strlen":
        return len(str(args[0]))
    if name in ("tolower", "toupper"):
        return str(args[0]).lower() if name == "tolower" else str(args[0]).upper()
    number = _number(args[0])
    if number is None:
        return None
    if name == "abs":
        return abs(number)
    return math.floor(number) if name == "floor" else math.ceil(number)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _arith(op: str, left: Any, right: Any) -> Any:
    a, b = _number(left), _number(right)
    if a is None or b is None:
        return None
    if op in ("/", "%") and b == 0:
        return None
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0, "%": math.fmod(a, b) if b else 0.0}[op]


def _equal(left: Any, right: Any) -> bool:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return a == b
    return _text(left) == _text(right)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if op == "=":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    a, b = _number(left), _number(right)
    pair: tuple[Any, Any] = (a, b) if a is not None and b is not None else (_text(left), _text(right))
    x, y = pair
    return bool({"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])


def _truthy(value: Any) -> bool:
    return bool(value) and value != "false"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _sort_key(value: Any) -> tuple[int, float, str]:
    if value is None:
        return (2, 0.0, "")
    number = _number(value)
    return (0, number, "") if number is not None else (1, 0.0, _text(value))


def render(name: str, value: Any) -> str:
    """A result value as GetQueryResults shows it (always a string)."""
    if isinstance(value, _Time) or (name in TIME_FIELDS and isinstance(value, int)):
        when = _dt.datetime.fromtimestamp(int(value) / 1000, _dt.UTC)
        return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    return _text(value)
