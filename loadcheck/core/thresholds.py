"""Thresholds: the one syntax, its parser, the judgement of a run and the early "doomed" rule.

Syntax (``loadcheck run --threshold``, ``loadcheck capacity --slo``)::

    [ROUTE:]METRIC<LIMIT        e.g.  'GET /events/{id}:p99<300ms'   'error_rate<1%'
    [ROUTE:]METRIC<=LIMIT       the limit itself still passes

ROUTE is a route key of the stack description (``METHOD /path``) or ``all`` (the default: every
request together). METRIC is a latency percentile ``pNN[.N]`` (``p50``, ``p95``, ``p99.9``; any
``0 < NN < 100``) or ``max`` with a duration LIMIT (``300ms``, ``1.5s``, ``1m``; the duration rule of
:func:`loadcheck.core.runconfig.parse_duration`, a unit required), or ``error_rate``,
``server_error_rate``, ``throttle_rate`` with a fraction LIMIT (``1%`` or ``0.01``).

What the metrics count (the ledger's one classification, :mod:`loadcheck.core.ledger`):

- latency: the run's HDR histograms (``histograms.json``, microseconds, 3 significant digits); a
  percentile is HDR's value at that percentile (the highest value equivalent to the sample at
  rank ``max(1, int(p * n + 0.5))``), ``max`` the largest;
- ``error_rate``: requests that did not get a 2xx (3xx, 4xx, 429, 5xx, or no answer), except the
  409s of forced collisions (``--collisions``: the expected answer), over all requests;
- ``server_error_rate``: 5xx and requests with no answer at all, except those inside an outage
  (``--chaos``: the outage's own), over all requests;
- ``throttle_rate``: 429s over all requests.

A threshold with no request to judge (no request at all, or none on its route) does not hold.

**Doomed** (``--abort-on-fail``, :class:`AbortWatcher`): a threshold is doomed when it can no
longer pass whatever the rest of the run does. Counts only grow, so the best the rest of a run
can do is send its remaining requests, all fast and all answered 2xx. With ``N`` the most
requests the run can send in all (:func:`request_bound`) and ``v`` the requests so far that
already break the limit, a percentile threshold is doomed when ``n - v < rank(n)`` holds even at
``n = N`` (about: ``v > (1 - p) * N``), a rate threshold when ``v / N`` already breaks the limit,
and ``max`` as soon as one request breaks it (no bound needed). The open model has a bound: its
planned arrivals (one request each, as the reference workload sends; a workload that sends more
is noticed and the bound dropped). The closed model (``--shape ramp``) has none: there only
``max`` thresholds can abort a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core import histograms
from loadcheck.core.description import ROUTE_KEY
from loadcheck.core.errors import ConfigError
from loadcheck.core.ledger import forced_collision, outcome, server_error, status_of
from loadcheck.core.runconfig import ALL_ROUTES, RunOptions, check_routes, parse_duration

RATE_METRICS = ("error_rate", "server_error_rate", "throttle_rate")
LATENCY_METRICS = ("max",)  # and any pNN[.N]
_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")
_OPERATOR = re.compile(r"\s*(<=|<)\s*")
EXAMPLES = "e.g. --threshold 'POST /events:p99<300ms' or --threshold 'error_rate<1%'"
# What the live status classes (progress.json, loadcheck.core.ledger.status_class) count for
# each rate metric: a lower bound of the final count (see AbortWatcher).
_LIVE_CLASSES = {
    "error_rate": ("3xx", "4xx", "429", "5xx", "none"),
    "server_error_rate": ("5xx", "none"),
    "throttle_rate": ("429",),
}


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold. ``limit`` is milliseconds for latency metrics, a fraction for rates."""

    metric: str
    limit: float
    route: str = ALL_ROUTES
    inclusive: bool = False  # "<=": the limit itself passes

    @property
    def percentile(self) -> float | None:
        """The percentile (0..100) of a ``pNN`` metric, else None."""
        m = _PERCENTILE.fullmatch(self.metric)
        return float(m.group(1)) if m else None

    @property
    def is_rate(self) -> bool:
        return self.metric in RATE_METRICS

    @property
    def unit(self) -> str:
        return "fraction" if self.is_rate else "ms"

    def holds(self, actual: float) -> bool:
        """``actual`` (in the threshold's unit) is within the limit."""
        return actual <= self.limit if self.inclusive else actual < self.limit

    def __str__(self) -> str:
        return format_threshold(self)


# ---------------------------------------------------------------------------------------------
# parsing and formatting
def parse_threshold(value: str, *, option: str = "--threshold") -> Threshold:
    """``'[ROUTE:]METRIC<LIMIT'`` -> :class:`Threshold`; a :class:`ConfigError` naming the value and the fix."""
    example = f"e.g. {option} 'POST /events:p99<300ms'" + (
        f" or {option} 'error_rate<1%'" if option == "--threshold" else ""
    )
    route, metric, inclusive, limit_text = split_expression(value, option=option, example=example)
    limit = _parse_limit(metric, limit_text, value, option)
    if limit == 0 and not inclusive:
        raise ConfigError(
            f"{option}: {value!r} can never hold (nothing is below 0)",
            value=value,
            hint=f"write {metric}<=0% to allow none at all",
        )
    return Threshold(metric=metric, limit=limit, route=route, inclusive=inclusive)


def split_expression(value: str, *, option: str, example: str = EXAMPLES) -> tuple[str, str, bool, str]:
    """``'[ROUTE:]METRIC<LIMIT'`` -> (route or ``all``, canonical metric, ``<=`` given, limit text).

    The one reading of the syntax: ``loadcheck compare --max-regression`` reads its budgets with
    it too (the same routes and metrics, with a change as the limit)."""
    text = str(value).strip()
    parts = _OPERATOR.split(text, maxsplit=1)
    if len(parts) != 3:
        hint = (
            f"thresholds are upper limits: write METRIC<LIMIT, {example}"
            if ">" in text
            else f"write [ROUTE:]METRIC<LIMIT, {example}"
        )
        raise ConfigError(f"{option}: {value!r} is not [ROUTE:]METRIC<LIMIT", value=value, hint=hint)
    left, op, limit_text = parts
    route_text, sep, metric = left.rpartition(":")
    metric = metric.strip().lower()
    route = " ".join(route_text.split()) if sep else ALL_ROUTES
    if not route:
        raise ConfigError(
            f"{option}: {value!r} has an empty route before ':'",
            value=value,
            hint=f"name a route of the stack description, e.g. 'POST /events:{metric}<...', or drop the ':'",
        )
    if route.lower() == ALL_ROUTES:
        route = ALL_ROUTES
    elif not ROUTE_KEY.fullmatch(route):
        raise ConfigError(
            f"{option}: {route!r} in {value!r} is not a route key",
            value=value,
            hint=f"write METHOD /path as the stack description does, or {ALL_ROUTES!r}; quote it: "
            "'POST /events:p95<300ms'",
        )
    return route, _check_metric(metric, value, option), op == "<=", limit_text.strip()


def _check_metric(metric: str, value: str, option: str) -> str:
    """The metric's canonical name (``p99.90`` -> ``p99.9``, ``p05`` -> ``p5``), or a ConfigError."""
    if metric in RATE_METRICS or metric in LATENCY_METRICS:
        return metric
    m = _PERCENTILE.fullmatch(metric)
    if m and 0.0 < float(m.group(1)) < 100.0:
        whole, _, frac = m.group(1).partition(".")
        frac = frac.rstrip("0")
        return "p" + (whole.lstrip("0") or "0") + (f".{frac}" if frac else "")
    if metric in ("p100", "p100.0"):
        hint = "the 100th percentile is the largest value: write max<LIMIT"
    elif metric.startswith("p"):
        hint = "a percentile is p followed by a number above 0 and below 100: p50, p95, p99, p99.9"
    else:
        hint = f"metrics are pNN[.N] (p50, p95, p99.9), max, {', '.join(RATE_METRICS)}"
    raise ConfigError(f"{option}: {metric!r} in {value!r} is not a metric", value=value, hint=hint)


def _parse_limit(metric: str, text: str, value: str, option: str) -> float:
    if metric in RATE_METRICS:
        return parse_rate_limit(text, value=value, option=option)
    if not text or not re.search(r"[a-z]\s*$", text.lower()):
        raise ConfigError(
            f"{option}: the limit {text!r} in {value!r} has no unit",
            value=value,
            hint=f"latency limits are durations with a unit: {metric}<300ms, {metric}<1.5s",
        )
    try:
        seconds = parse_duration(text, option=option)
    except ConfigError as exc:
        raise ConfigError(
            f"{option}: the limit {text!r} in {value!r} is not a duration",
            value=value,
            hint=f"write a duration with a unit: {metric}<300ms, {metric}<1.5s, {metric}<1m30s",
        ) from exc
    ms = round(seconds * 1000.0, 3)  # whole microseconds: the histograms' unit
    if ms <= 0:
        raise ConfigError(
            f"{option}: the limit {text!r} in {value!r} is below a microsecond",
            value=value,
            hint=f"latencies are recorded in whole microseconds: write at least {metric}<1ms (or 0.001ms)",
        )
    return ms


def parse_rate_limit(text: str, *, value: str, option: str) -> float:
    """``1%`` or ``0.01`` -> 0.01 (a bare number above 1 is ambiguous and refused)."""
    t = text.strip()
    try:
        x = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise ConfigError(
            f"{option}: the limit {text!r} in {value!r} is not a fraction",
            value=value,
            hint="rates are fractions: 1% or 0.01, e.g. --threshold 'error_rate<1%'",
        ) from None
    if not t.endswith("%") and x > 1:
        raise ConfigError(
            f"{option}: the limit {text!r} in {value!r} is ambiguous",
            value=value,
            hint=f"write a percentage ({t}%) or a fraction ({x / 100:g})",
        )
    if not math.isfinite(x) or not 0.0 <= x <= 1.0:
        raise ConfigError(
            f"{option}: the limit {text!r} in {value!r} is outside 0..100%",
            value=value,
            hint="rates are fractions from 0% to 100%, e.g. error_rate<1%",
        )
    return x


def format_limit(t: Threshold) -> str:
    """The limit as the syntax writes it (``300ms``, ``2s``, ``1%``): the shortest text that
    reads back to exactly this limit."""
    if t.is_rate:
        candidates = [f"{t.limit * 100.0:.10g}%", repr(t.limit)]
    else:
        candidates = [f"{t.limit:.10g}ms", f"{t.limit!r}ms"]
        if t.limit >= 1000.0 and t.limit % 1000.0 == 0:
            candidates.insert(0, f"{t.limit / 1000.0:.10g}s")
    for text in candidates:
        try:
            if _parse_limit(t.metric, text, text, "--threshold") == t.limit:
                return text
        except ConfigError:
            continue
    return candidates[-1]


def format_threshold(t: Threshold) -> str:
    """The canonical text of a threshold; :func:`parse_threshold` reads it back to an equal one."""
    route = "" if t.route == ALL_ROUTES else f"{t.route}:"
    return f"{route}{t.metric}{'<=' if t.inclusive else '<'}{format_limit(t)}"


def parse_all(values: Iterable[str], *, option: str = "--threshold") -> list[Threshold]:
    return [parse_threshold(v, option=option) for v in values]


def check_threshold_routes(
    thresholds: Iterable[Threshold], routes: Iterable[str], *, option: str = "--threshold"
) -> None:
    """Every route a threshold names is a route of the stack description (or ``all``)."""
    check_routes([t.route for t in thresholds], tuple(routes), option=option)


# ---------------------------------------------------------------------------------------------
# legacy spellings
DEFAULT_SERVER_ERROR = Threshold(metric="server_error_rate", limit=0.01, inclusive=True)


def from_max_p95_ms(route: str, ms: float) -> Threshold:
    """``--max-p95-ms ROUTE=MS`` (deprecated): fails above MS, as it always did."""
    return Threshold(metric="p95", limit=float(ms), route=route, inclusive=True)


def from_max_rate(metric: str, fraction: float) -> Threshold:
    """``--max-error-rate F`` / ``--max-server-error-rate F`` (deprecated): fail above F."""
    return Threshold(metric=metric, limit=float(fraction), inclusive=True)


# ---------------------------------------------------------------------------------------------
# what a threshold is judged on
@dataclass
class Counts:
    """Requests of a route (or all) and how many of them count for each rate metric."""

    requests: int = 0
    error_rate: int = 0  # the numerators, named after the metric they count for
    server_error_rate: int = 0
    throttle_rate: int = 0

    def add(self, other: Counts) -> None:
        self.requests += other.requests
        self.error_rate += other.error_rate
        self.server_error_rate += other.server_error_rate
        self.throttle_rate += other.throttle_rate

    def count(self, metric: str) -> int:
        return int(getattr(self, metric))


def count_record(counts: dict[str, Counts], rec: Mapping[str, Any], *, in_outage: bool = False) -> None:
    """Add one ledger record to its route's :class:`Counts` (the module docstring says what counts)."""
    c = counts.get(rec["route"])
    if c is None:
        c = counts[rec["route"]] = Counts()
    r = dict(rec)
    c.requests += 1
    c.error_rate += int(outcome(r) != "ok" and not forced_collision(r))
    c.server_error_rate += int(server_error(r) and not in_outage)
    c.throttle_rate += int(status_of(r) == 429)


@dataclass
class Observed:
    """Per-route counts and latency histograms (whole run so far); ``all`` is derived."""

    counts: dict[str, Counts] = field(default_factory=dict)
    hdr: dict[str, HdrHistogram] | None = None  # None: latency unknown (see ``hdr_problem``)
    hdr_problem: str | None = None

    def counts_of(self, route: str) -> Counts | None:
        if route != ALL_ROUTES:
            return self.counts.get(route)
        total = Counts()
        for c in self.counts.values():
            total.add(c)
        return total

    def hdr_of(self, route: str) -> HdrHistogram | None:
        if self.hdr is None:
            return None
        if route != ALL_ROUTES:
            return self.hdr.get(route)
        total = histograms.new_histogram()
        for h in self.hdr.values():
            total.add(h)
        return total


def rank(n: int, percentile: float) -> int:
    """The rank HDR reports at ``percentile`` among ``n`` values: ``max(1, int(p * n + 0.5))``."""
    return max(1, int(min(percentile, 100.0) * n / 100.0 + 0.5))


def latency_ms(t: Threshold, h: HdrHistogram) -> float:
    """The threshold's latency figure (ms) of a histogram with values."""
    if t.metric == "max":
        return h.get_max_value() / 1000.0
    return h.get_value_at_percentile(t.percentile or 0.0) / 1000.0


def breaking(t: Threshold, h: HdrHistogram) -> int:
    """How many recorded values break a latency threshold's limit (judged as HDR reports them:
    each bucket by its highest equivalent value)."""
    out = 0
    for item in h.get_recorded_iterator():
        if not t.holds(item.value_iterated_to / 1000.0):
            out += item.count_at_value_iterated_to
    return out


def percentile_holds(t: Threshold, *, requests: int, broken: int) -> bool:
    """Whether a percentile threshold holds among ``requests`` values of which ``broken`` break the limit."""
    return requests > 0 and requests - broken >= rank(requests, t.percentile or 0.0)


def evaluate(thresholds: Iterable[Threshold], observed: Observed) -> list[dict[str, Any]]:
    """Each threshold's entry for run.json ``thresholds`` (docs/results-schema.md):
    ``name`` (the canonical text), ``route``, ``metric``, ``limit`` and ``actual`` (ms or a
    fraction, per ``unit``), ``passed`` and, when there was nothing to judge, ``reason``."""
    return [_entry(t, observed) for t in thresholds]


def _entry(t: Threshold, observed: Observed) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": format_threshold(t),
        "route": t.route,
        "metric": t.metric,
        "unit": t.unit,
        "limit": t.limit,
        "actual": None,
        "passed": False,
    }
    where = "any request" if t.route == ALL_ROUTES else f"any request on {t.route}"
    if t.is_rate:
        c = observed.counts_of(t.route)
        if c is None or c.requests == 0:
            return {**entry, "reason": f"no requests: the run did not send {where}"}
        rate = c.count(t.metric) / c.requests
        return {**entry, "actual": round(rate, 4), "passed": t.holds(rate)}
    if observed.hdr is None:
        return {**entry, "reason": observed.hdr_problem or "no latency histograms"}
    h = observed.hdr_of(t.route)
    if h is None or h.get_total_count() == 0:
        return {**entry, "reason": f"no latencies: the run did not complete {where}"}
    actual = latency_ms(t, h)
    return {**entry, "actual": actual, "passed": t.holds(actual)}


def describe_entry(entry: Mapping[str, Any]) -> str:
    """``actual 426.0 ms (limit 200 ms)`` for a run.json ``thresholds`` entry (older entries,
    without ``unit``, as their bare figures)."""
    actual, limit, unit = entry.get("actual"), entry.get("limit"), entry.get("unit")

    def show(x: Any) -> str:
        if not isinstance(x, int | float):
            return "-"
        if unit == "fraction":
            return f"{100 * x:.4g}%"
        return f"{x:.1f} ms" if unit == "ms" else f"{x:g}"

    text = f"{show(actual)} (limit {show(limit)})"
    return f"{text}: {entry['reason']}" if entry.get("reason") else text


# ---------------------------------------------------------------------------------------------
# doomed: a threshold that can no longer pass
def request_bound(opts: RunOptions) -> int | None:
    """The most requests the run can send in all: its planned arrivals (open model), one request
    each; None for the closed model (``ramp``: users loop for as long as the run lasts)."""
    if not opts.open_model:
        return None
    procs = max(1, opts.workers)  # each process emits rate / workers, rounding its count up
    return sum(procs * math.ceil((end - start) * rate / procs - 1e-9) for start, end, rate in opts.segments())


def planned_until(opts: RunOptions, elapsed_s: float) -> int:
    """Arrivals the schedule can have emitted in its first ``elapsed_s`` seconds (rounded up per process)."""
    procs = max(1, opts.workers)
    total = 0
    for start, end, rate in opts.segments():
        span = max(0.0, min(end, elapsed_s) - start)
        total += procs * math.ceil(span * rate / procs)
    return total


def doomed(t: Threshold, *, counts: Counts | None, hdr: HdrHistogram | None, bound: int | None) -> str | None:
    """Why ``t`` can no longer pass, whatever the rest of the run does (None: it still can).

    ``counts`` and ``hdr`` are what was seen so far (lower bounds of the run's final figures);
    ``bound`` the most requests the run can send in all (None: unknown, only ``max`` is judged).
    """
    if t.metric == "max":
        if hdr is None or not hdr.get_total_count():
            return None
        worst = hdr.get_max_value() / 1000.0
        return None if t.holds(worst) else f"a request took {worst:g} ms"
    if bound is None:
        return None
    seen = max(counts.requests if counts is not None else 0, hdr.get_total_count() if hdr is not None else 0)
    bound = max(bound, seen)  # never below what was already sent
    if t.is_rate:
        if counts is None:
            return None
        k = counts.count(t.metric)
        if bound <= 0 or t.holds(k / bound):
            return None
        return (
            f"{k} of at most {bound} requests already count ({100 * k / max(bound, 1):.2f}% even if every "
            "other planned request passes)"
        )
    if hdr is None:
        return None
    broken = breaking(t, hdr)
    if percentile_holds(t, requests=bound, broken=broken):
        return None
    allowed = bound - rank(bound, t.percentile or 0.0)
    where = "above" if t.inclusive else "at or above"
    return f"{broken} requests already {where} {format_limit(t)}, more than the {allowed} of at most {bound} it allows"


@dataclass(frozen=True)
class Abort:
    """A threshold found doomed while the load ran (run.json ``aborted``)."""

    threshold: str
    reason: str
    elapsed_s: float
    t: float  # epoch seconds (progress.json ``t``)

    def to_run(self, iso: str | None) -> dict[str, Any]:
        return {"threshold": self.threshold, "reason": self.reason, "elapsed_s": self.elapsed_s, "at": iso}


class AbortWatcher:
    """Judges the run's thresholds on each ``progress.json`` (``--abort-on-fail``).

    Live figures are lower bounds of the final ones: requests and counts only grow, and the
    latency histograms hold closed seconds only. Two live counts are not: the error count
    includes the 409s of forced collisions (``--collisions``), and the server-error count
    includes failures inside ``--chaos`` outages, which the final judgement leaves out; those
    metrics are not judged early in such runs (:attr:`skipped` says why).
    """

    def __init__(self, thresholds: Iterable[Threshold], options: RunOptions, *, chaos: bool = False) -> None:
        self.thresholds = list(thresholds)
        self.options = options
        self.bound = request_bound(options)
        self.skipped: dict[str, str] = {}
        self.notes: list[str] = []
        for t in self.thresholds:
            if t.metric == "error_rate" and options.collisions > 0:
                self.skipped[str(t)] = "the live error count cannot leave out forced collisions (--collisions)"
            elif t.metric == "server_error_rate" and chaos:
                self.skipped[str(t)] = "the live server-error count cannot leave out --chaos outages"
            elif t.metric != "max" and self.bound is None:
                self.skipped[str(t)] = "--shape ramp has no bound on the requests still to come (only max is judged)"

    def check(self, progress: Mapping[str, Any]) -> Abort | None:
        """The first doomed threshold in ``progress`` (a progress.json document), else None."""
        routes = progress.get("routes") or {}
        if not isinstance(routes, Mapping) or not routes:
            return None
        elapsed = float(progress.get("elapsed_s") or 0.0)
        bound = self.bound
        requests = int(progress.get("requests") or 0)
        if bound is not None and requests > planned_until(self.options, elapsed + 2.0):
            # More requests than arrivals: the workload sends several requests per arrival.
            self.notes.append(
                f"--abort-on-fail: {requests} requests after {elapsed:g} s exceed the planned arrivals: the "
                "workload sends more than one request per arrival, so only max thresholds are judged early"
            )
            self.bound = bound = None
            for t in self.thresholds:
                if t.metric != "max":
                    self.skipped.setdefault(str(t), "the workload sends more than one request per arrival")
        judged = [t for t in self.thresholds if str(t) not in self.skipped]
        observed = live_observed(routes, latency=any(not t.is_rate for t in judged))
        for t in judged:
            why = doomed(t, counts=observed.counts_of(t.route), hdr=observed.hdr_of(t.route), bound=bound)
            if why is not None:
                return Abort(threshold=str(t), reason=why, elapsed_s=elapsed, t=float(progress.get("t") or 0.0))
        return None


def live_observed(routes: Mapping[str, Any], *, latency: bool = True) -> Observed:
    """Counts and (with ``latency``) histograms from progress.json ``routes`` (per route:
    requests, status classes, hdr)."""
    counts: dict[str, Counts] = {}
    hdr: dict[str, HdrHistogram] = {}
    for route, r in routes.items():
        status = r.get("status") or {}
        counts[route] = Counts(
            requests=int(r.get("requests") or 0),
            **{m: sum(int(status.get(c, 0)) for c in classes) for m, classes in _LIVE_CLASSES.items()},
        )
        if latency and r.get("hdr"):
            hdr[route] = histograms.decode(r["hdr"])
    return Observed(counts=counts, hdr=hdr)
