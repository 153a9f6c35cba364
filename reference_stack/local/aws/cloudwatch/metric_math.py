"""CloudWatch metric math: expressions of ``GetMetricData`` parsed and evaluated over time series.

Pure (no HTTP, no moto). The syntax and functions follow AWS's "Using metric math" page
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/using-metric-math.html,
docs/aws-behaviour.md §11.6):

- values: a scalar ``S`` (``2``, ``-5``, ``50.25``), a time series ``TS`` (a query's ``Id``), an
  array ``TS[]`` (``[m1, m2]``, ``METRICS()``, ``METRICS("errors")``: the metric queries, not the
  expressions, whose ``Id`` contains the string);
- operators ``+ - * / ^``, unary ``-``, comparisons ``== != < <= > >=`` (1 or 0), ``AND``/``&&``,
  ``OR``/``||``; between two series the timestamps of both are used and a missing value is 0;
  a data point that divides by zero is dropped; an operator on a ``TS[]`` applies to each member;
- functions (upper case): ``ABS CEIL FLOOR LOG LOG10`` (per point), ``SUM AVG MIN MAX STDDEV
  DATAPOINT_COUNT`` (``TS`` → ``S``, ``TS[]`` → ``TS`` point by point, missing values 0),
  ``FILL(x, S | TS | REPEAT | LINEAR)``, ``RATE DIFF DIFF_TIME RUNNING_SUM``, ``PERIOD(m)``,
  ``METRIC_COUNT``, ``REMOVE_EMPTY``, ``TIME_SERIES(S)``, ``IF(cond, a[, b])``, ``FIRST LAST``,
  ``SORT(x, AVG|MIN|MAX|SUM, ASC|DESC[, n])``, ``SLICE(x, a[, b])``.

A final result must be a ``TS`` or ``TS[]``. Anything else (a syntax error, an unknown function
or ``Id``, a reference cycle, a wrong argument type, a scalar result) raises
:class:`MetricMathError` naming the culprit; the API answers it as CloudWatch's
``ValidationError``.

Departures (docs/fidelity.md "CloudWatch metrics"): ``SEARCH``, ``ANOMALY_DETECTION_BAND``,
``INSIGHT_RULE_METRIC``, ``SERVICE_QUOTA`` and the time functions ``MINUTE``...``EPOCH`` are
refused as unknown functions; ``FILL(x, REPEAT)`` leaves the points before the first value
missing and ``FILL(x, LINEAR)`` the points before the first and after the last (UNCONFIRMED);
``IF(TS, TS, TS)`` follows the documented table (a missing true value is 0, a missing false
value drops the point).
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

Series = dict[int, float]  # epoch seconds -> value


class MetricMathError(Exception):
    """An expression CloudWatch cannot evaluate; ``message`` says what and where."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class TS:
    """One time series: its points (sparse) and the label and ``Id`` it came from."""

    points: Series
    label: str = ""
    ident: str = ""

    def sorted(self) -> list[tuple[int, float]]:
        return sorted(self.points.items())


@dataclass
class TSArray:
    members: list[TS] = field(default_factory=list)


Value = Union[float, TS, TSArray]  # noqa: UP007 (a runtime alias, read by isinstance below)


# -- parsing -------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|(?P<str>\"[^\"]*\"|“[^”]*”)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/^<>(),\[\]]))"
)
_BINARY: list[set[str]] = [{"OR", "||"}, {"AND", "&&"}, {"==", "!=", "<", "<=", ">", ">="}, {"+", "-"}, {"*", "/"}]

Node = tuple[Any, ...]  # ("num", v) | ("str", s) | ("id", name) | ("word", NAME) | ("call", NAME, args)
# | ("array", items) | ("neg", x) | ("bin", op, a, b)


def tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            raise MetricMathError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos + 1}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "name" and value.upper() in ("AND", "OR"):
            kind, value = "op", value.upper()
        tokens.append((kind, value, m.start(kind) + 1))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise MetricMathError(f"unexpected end of expression{f', expected {value!r}' if value else ''}")
        if value is not None and tok[1] != value:
            raise MetricMathError(f"expected {value!r} at position {tok[2]}, found {tok[1]!r}")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.tokens:
            raise MetricMathError("the expression is empty")
        node = self.binary(0)
        tok = self.peek()
        if tok is not None:
            raise MetricMathError(f"unexpected {tok[1]!r} at position {tok[2]}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.power()
        node = self.binary(level + 1)
        while (tok := self.peek()) is not None and tok[0] == "op" and tok[1] in _BINARY[level]:
            self.i += 1
            node = ("bin", tok[1], node, self.binary(level + 1))
        return node

    def power(self) -> Node:
        node = self.unary()
        tok = self.peek()
        if tok is not None and tok[1] == "^":
            self.i += 1
            return ("bin", "^", node, self.power())
        return node

    def unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok[0] == "op" and tok[1] == "-":
            self.i += 1
            return ("neg", self.unary())
        return self.atom()

    def atom(self) -> Node:
        kind, value, pos = self.take()
        if kind == "num":
            return ("num", float(value))
        if kind == "str":
            return ("str", value[1:-1])
        if kind == "name":
            nxt = self.peek()
            if nxt is not None and nxt[1] == "(":
                self.i += 1
                args = self.items(")")
                return ("call", value, args)
            return ("word", value) if value.isupper() else ("id", value)
        if value == "(":
            node = self.binary(0)
            self.take(")")
            return node
        if value == "[":
            return ("array", self.items("]"))
        raise MetricMathError(f"unexpected {value!r} at position {pos}")

    def items(self, close: str) -> list[Node]:
        out: list[Node] = []
        tok = self.peek()
        if tok is not None and tok[1] == close:
            self.i += 1
            return out
        while True:
            out.append(self.binary(0))
            if self.take()[1] == close:
                return out
            self.i -= 1
            self.take(",")


def parse(text: str) -> Node:
    """The expression's syntax tree; :class:`MetricMathError` when it does not parse."""
    return _Parser(text).parse()


def references(node: Node) -> set[str]:
    """The query ids an expression names (``METRICS()`` not included)."""
    if node[0] == "id":
        return {node[1]}
    children: list[Node] = []
    if node[0] == "call":
        children = node[2]
    elif node[0] == "array":
        children = node[1]
    elif node[0] == "neg":
        children = [node[1]]
    elif node[0] == "bin":
        children = [node[2], node[3]]
    return set().union(*(references(c) for c in children)) if children else set()


# -- evaluation ----------------------------------------------------------------------------------


@dataclass
class Context:
    """What an expression sees: the queries' series, their periods and the request's time grid.

    ``resolve(id)`` returns a query's value (evaluating another expression on demand);
    ``metric_ids`` are the ``MetricStat`` queries in request order (for ``METRICS()``);
    ``grid`` is every period start of the request (for ``FILL`` and ``TIME_SERIES``).
    """

    resolve: Callable[[str], Value]
    metric_ids: list[str]
    periods: dict[str, int]
    grid: list[int]


def evaluate(node: Node, ctx: Context) -> Value:
    kind = node[0]
    if kind == "num":
        return float(node[1])
    if kind == "id":
        return ctx.resolve(node[1])
    if kind == "array":
        members: list[TS] = []
        for item in node[1]:
            value = evaluate(item, ctx)
            if isinstance(value, TSArray):
                members += value.members
            elif isinstance(value, TS):
                members.append(value)
            else:
                raise MetricMathError("an array [...] holds time series only, not scalars")
        return TSArray(members)
    if kind == "neg":
        return _apply(evaluate(node[1], ctx), lambda v: -v)
    if kind == "bin":
        return _binary(node[1], evaluate(node[2], ctx), evaluate(node[3], ctx))
    if kind == "call":
        return _call(node[1], node[2], ctx)
    if kind == "word":
        raise MetricMathError(f"{node[1]} is not a function call or a query id (ids start with a lower-case letter)")
    raise MetricMathError(f"a string ({node[1]!r}) is allowed only as the argument of METRICS()")


def _apply(value: Value, fn: Callable[[float], float | None]) -> Value:
    if isinstance(value, float):
        out = fn(value)
        if out is None:
            raise MetricMathError("the expression divides a scalar by zero")
        return out
    if isinstance(value, TSArray):
        return TSArray([_apply_ts(m, fn) for m in value.members])
    return _apply_ts(value, fn)


def _apply_ts(ts: TS, fn: Callable[[float], float | None]) -> TS:
    points = {t: r for t, v in ts.points.items() if (r := fn(v)) is not None}
    return TS(points, ts.label, ts.ident)


def _op(op: str) -> Callable[[float, float], float | None]:
    def divide(a: float, b: float) -> float | None:
        return None if b == 0 else a / b

    def power(a: float, b: float) -> float | None:
        try:
            r = a**b
        except (OverflowError, ZeroDivisionError):
            return None
        return r if isinstance(r, float | int) and math.isfinite(r) else None

    table: dict[str, Callable[[float, float], float | None]] = {
        "+": lambda a, b: a + b,
        "-": lambda a, b: a - b,
        "*": lambda a, b: a * b,
        "/": divide,
        "^": power,
        "==": lambda a, b: float(a == b),
        "!=": lambda a, b: float(a != b),
        "<": lambda a, b: float(a < b),
        "<=": lambda a, b: float(a <= b),
        ">": lambda a, b: float(a > b),
        ">=": lambda a, b: float(a >= b),
        "AND": lambda a, b: float(bool(a) and bool(b)),
        "&&": lambda a, b: float(bool(a) and bool(b)),
        "OR": lambda a, b: float(bool(a) or bool(b)),
        "||": lambda a, b: float(bool(a) or bool(b)),
    }
    return table[op]


def _binary(op: str, left: Value, right: Value) -> Value:
    fn = _op(op)
    if isinstance(left, float) and isinstance(right, float):
        return _apply(left, lambda a: fn(a, right))
    if isinstance(right, float):
        return _apply(left, lambda a: fn(a, right))
    if isinstance(left, float):
        return _apply(right, lambda b: fn(left, b))
    if isinstance(left, TSArray) and isinstance(right, TSArray):
        raise MetricMathError(f"the operator {op} cannot join two arrays of time series")
    if isinstance(left, TSArray):
        assert isinstance(right, TS)
        return TSArray([_pair(fn, m, right, m) for m in left.members])
    if isinstance(right, TSArray):
        return TSArray([_pair(fn, left, m, m) for m in right.members])
    return _pair(fn, left, right, left)


def _pair(fn: Callable[[float, float], float | None], a: TS, b: TS, named: TS) -> TS:
    points: Series = {}
    for t in sorted(set(a.points) | set(b.points)):
        r = fn(a.points.get(t, 0.0), b.points.get(t, 0.0))
        if r is not None:
            points[t] = r
    return TS(points, named.label, named.ident)


# -- functions -----------------------------------------------------------------------------------

_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "SUM": math.fsum,
    "AVG": lambda vs: math.fsum(vs) / len(vs),
    "MIN": min,
    "MAX": max,
    "STDDEV": lambda vs: statistics.pstdev(vs) if len(vs) > 1 else 0.0,
    "DATAPOINT_COUNT": lambda vs: float(len(vs)),
}
_PER_POINT: dict[str, Callable[[float], float | None]] = {
    "ABS": abs,
    "CEIL": lambda v: float(math.ceil(v)),
    "FLOOR": lambda v: float(math.floor(v)),
    "LOG": lambda v: math.log(v) if v > 0 else None,
    "LOG10": lambda v: math.log10(v) if v > 0 else None,
}


def _reduce(name: str, value: Value) -> Value:
    fn = _REDUCERS[name]
    if isinstance(value, TS):
        values = list(value.points.values())
        if not values:
            return 0.0 if name in ("SUM", "DATAPOINT_COUNT") else math.nan
        return fn(values)
    if isinstance(value, TSArray):
        stamps = sorted(set().union(*(m.points for m in value.members))) if value.members else []
        if name == "DATAPOINT_COUNT":
            return TS({t: float(sum(t in m.points for m in value.members)) for t in stamps})
        return TS({t: fn([m.points.get(t, 0.0) for m in value.members]) for t in stamps})
    raise MetricMathError(f"{name}() takes a time series or an array of time series, not a scalar")


def _each(value: Value, name: str, fn: Callable[[TS], TS]) -> Value:
    if isinstance(value, TS):
        return fn(value)
    if isinstance(value, TSArray):
        return TSArray([fn(m) for m in value.members])
    raise MetricMathError(f"{name}() takes a time series or an array of time series, not a scalar")


def _steps(ts: TS, fn: Callable[[int, float, int, float], float | None]) -> TS:
    pts = ts.sorted()
    out: Series = {}
    for (t0, v0), (t1, v1) in zip(pts, pts[1:], strict=False):
        r = fn(t0, v0, t1, v1)
        if r is not None:
            out[t1] = r
    return TS(out, ts.label, ts.ident)


def _running_sum(ts: TS) -> TS:
    total, out = 0.0, {}
    for t, v in ts.sorted():
        total += v
        out[t] = total
    return TS(out, ts.label, ts.ident)


def _fill(ts: TS, how: Value | str, grid: list[int]) -> TS:
    pts = dict(ts.points)
    known = ts.sorted()
    for t in grid:
        if t in pts:
            continue
        if isinstance(how, float):
            pts[t] = how
        elif isinstance(how, TS):
            if t in how.points:
                pts[t] = how.points[t]
        elif how == "REPEAT":
            earlier = [v for s, v in known if s < t]
            if earlier:
                pts[t] = earlier[-1]
        elif how == "LINEAR":
            before = [(s, v) for s, v in known if s < t]
            after = [(s, v) for s, v in known if s > t]
            if before and after:
                (s0, v0), (s1, v1) = before[-1], after[0]
                pts[t] = v0 + (v1 - v0) * (t - s0) / (s1 - s0)
    return TS(dict(sorted(pts.items())), ts.label, ts.ident)


def _call(name: str, args: list[Node], ctx: Context) -> Value:
    def arity(low: int, high: int | None = None) -> None:
        high = low if high is None else high
        if not low <= len(args) <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise MetricMathError(f"{name}() takes {want} argument(s), got {len(args)}")

    if not name.isupper():
        raise MetricMathError(f"functions are written in upper case: {name.upper()}(), not {name}()")
    if name == "METRICS":
        arity(0, 1)
        needle = ""
        if args:
            if args[0][0] != "str":
                raise MetricMathError('METRICS() takes an optional string, e.g. METRICS("errors")')
            needle = args[0][1]
        return TSArray([_as_ts(ctx.resolve(i), i) for i in ctx.metric_ids if needle in i])
    if name == "PERIOD":
        arity(1)
        if args[0][0] != "id" or args[0][1] not in ctx.periods:
            raise MetricMathError("PERIOD() takes the id of a metric query (not an expression)")
        return float(ctx.periods[args[0][1]])
    if name == "FILL":
        arity(2)
        target = evaluate(args[0], ctx)
        how: Value | str = args[1][1] if args[1][0] == "word" else evaluate(args[1], ctx)
        if isinstance(how, str) and how not in ("REPEAT", "LINEAR"):
            raise MetricMathError(f"FILL() fills with a number, a time series, REPEAT or LINEAR, not {how}")
        if isinstance(how, TSArray):
            raise MetricMathError("FILL() fills with a number, a time series, REPEAT or LINEAR, not an array")
        return _each(target, name, lambda ts: _fill(ts, how, ctx.grid))
    if name == "IF":
        arity(2, 3)
        return _if([evaluate(a, ctx) for a in args])
    if name == "SORT":
        arity(3, 4)
        return _sort(args, ctx)
    values = [evaluate(a, ctx) for a in args]
    if name == "SLICE":
        arity(2, 3)
        array, bounds = values[0], values[1:]
        if not isinstance(array, TSArray) or not all(isinstance(b, float) for b in bounds):
            raise MetricMathError("SLICE() takes an array of time series and one or two numbers")
        start, end = int(bounds[0]), (int(bounds[1]) if len(bounds) > 1 else None)  # type: ignore[arg-type]
        return TSArray(array.members[start:end])
    arity(1)
    (value,) = values
    if name in _REDUCERS:
        return _reduce(name, value)
    if name in _PER_POINT:
        fn = _PER_POINT[name]
        return _each(value, name, lambda ts: _apply_ts(ts, fn))
    if name == "RATE":
        return _each(value, name, lambda ts: _steps(ts, lambda t0, v0, t1, v1: (v1 - v0) / (t1 - t0)))
    if name == "DIFF":
        return _each(value, name, lambda ts: _steps(ts, lambda t0, v0, t1, v1: v1 - v0))
    if name == "DIFF_TIME":
        return _each(value, name, lambda ts: _steps(ts, lambda t0, v0, t1, v1: float(t1 - t0)))
    if name == "RUNNING_SUM":
        return _each(value, name, _running_sum)
    if name == "TIME_SERIES":
        if not isinstance(value, float):
            raise MetricMathError("TIME_SERIES() takes a number")
        return TS(dict.fromkeys(ctx.grid, value))
    if name in ("METRIC_COUNT", "REMOVE_EMPTY", "FIRST", "LAST"):
        if not isinstance(value, TSArray):
            raise MetricMathError(f"{name}() takes an array of time series")
        if name == "METRIC_COUNT":
            return float(len(value.members))
        if name == "REMOVE_EMPTY":
            return TSArray([m for m in value.members if m.points])
        if not value.members:
            return TS({})
        return value.members[0] if name == "FIRST" else value.members[-1]
    raise MetricMathError(f"unknown or unsupported function {name}()")


def _as_ts(value: Value, ident: str) -> TS:
    if not isinstance(value, TS):
        raise MetricMathError(f"{ident} is not a single time series")
    return value


def _if(values: list[Value]) -> Value:
    cond, yes = values[0], values[1]
    no = values[2] if len(values) > 2 else None
    if isinstance(cond, TSArray) or isinstance(yes, TSArray) or isinstance(no, TSArray):
        raise MetricMathError("IF() takes time series and numbers, not arrays")
    if isinstance(cond, float):
        chosen = yes if cond else no
        if chosen is None:
            return TS({})
        if isinstance(chosen, float):
            raise MetricMathError("IF() with a scalar condition needs time series to choose from")
        return chosen
    points: Series = {}
    for t, c in cond.points.items():
        if c:
            points[t] = yes if isinstance(yes, float) else yes.points.get(t, 0.0)
        elif isinstance(no, float):
            points[t] = no
        elif no is not None and t in no.points:
            points[t] = no.points[t]
    return TS(dict(sorted(points.items())), cond.label, cond.ident)


def _sort(args: list[Node], ctx: Context) -> Value:
    array = evaluate(args[0], ctx)
    by, order = args[1], args[2]
    if not isinstance(array, TSArray):
        raise MetricMathError("SORT() takes an array of time series first")
    if by[0] != "word" or by[1] not in ("AVG", "MIN", "MAX", "SUM"):
        raise MetricMathError("SORT() sorts by AVG, MIN, MAX or SUM")
    if order[0] != "word" or order[1] not in ("ASC", "DESC"):
        raise MetricMathError("SORT() sorts ASC or DESC")
    keyed = [(_reduce(by[1], m), i, m) for i, m in enumerate(array.members)]
    nan_last = [(k if isinstance(k, float) and not math.isnan(k) else None, i, m) for k, i, m in keyed]
    present = sorted((x for x in nan_last if x[0] is not None), key=lambda x: (x[0], x[1]))
    if order[1] == "DESC":
        present = sorted(present, key=lambda x: (-float(x[0] or 0.0), x[1]))
    members = [m for _, _, m in present] + [m for k, _, m in nan_last if k is None]
    if len(args) > 3:
        limit = evaluate(args[3], ctx)
        if not isinstance(limit, float):
            raise MetricMathError("SORT()'s limit is a number")
        members = members[: int(limit)]
    return TSArray(members)
