"""``ReportData``: everything a report shows, built once from a run directory; renderers only format it.

Sources (docs/internals.md "Run directory"):

- ``results.json``: verdict, per-route figures, checks (absent when the run was never checked:
  the report says so and computes the route figures from the ledger);
- ``run.json``: options, target (public fields only), times, thresholds, dropped arrivals;
- ``ledger/*.jsonl.gz``: per-second throughput and status mix (by completion second), and the
  table's consumed write capacity (by send second, as the throttling check's model places it);
- ``histograms.json``: latency percentiles over time (per-second HDR intervals, merged into
  buckets of ``bucket_s``) and the latency distribution (whole-run HDR);
- ``metrics.json`` (optional, ``{"per_minute": {metric: {epoch_minute: sum}}}`` as
  ``checks.metrics.TableMetrics`` holds it): CloudWatch's consumed capacity, drawn over the
  ledger's when a check saved it.

The capacity series is computed from the ledger's *landed* writes (2xx, and 409: a failed
conditional write still consumes, docs/aws-behaviour.md §7.2) and a simulated burst bucket: refill at
the provisioned rate, at most 300 s of it retained (§7.3). Its level when the run began is
anchored at the first throttled write when there is one (the bucket was empty then, so it began
with what the run consumed before minus the refill, as the throttling check's model reasons);
otherwise it is assumed full (an idle table; the local stack's default ``burst_start``). The
plot says which, and that it is a simulation.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core import rundir
from loadcheck.core.capacity import BURST_SECONDS  # docs/aws-behaviour.md §7.3
from loadcheck.core.description import load_description
from loadcheck.core.errors import LoadcheckError, RunDirError
from loadcheck.core.ledger import charged_write, failed, ledger_files, read_ledger, status_of
from loadcheck.core.plain_items import item_size, write_units
from loadcheck.core.results import CheckResult
from loadcheck.core.rundir import verdict, verdict_of_results

MAX_POINTS = 240  # buckets per time series: long runs are merged into wider buckets
STATUS_ORDER = {"fail": 0, "error": 1, "pass": 2, "skipped": 3}
DISTRIBUTION_PERCENTILES = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.99, 100.0)
_SECRET_HINTS = ("secret", "token", "password", "session", "access_key")


@dataclass(kw_only=True)
class RouteSummary:
    route: str
    requests: int
    failures: int
    rps: float
    status: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass(kw_only=True)
class RouteSeries:
    """One route over time; index i covers seconds [t[i], t[i] + bucket_s) from the run's start."""

    t: list[float]
    throughput: list[float]  # responses completed per second
    status: dict[str, list[float]]  # category ("2xx", "404", "429", "5xx", "errors") -> per second
    p50: list[float | None]
    p95: list[float | None]
    p99: list[float | None]
    distribution: list[tuple[float, float]]  # (percentile, ms) of the whole run


@dataclass(kw_only=True)
class CapacitySeries:
    t: list[float]
    consumed_wcu: list[float]  # per second, landed writes
    throttled_writes: list[float]  # 429s on writes per second
    burst_level: list[float]  # simulated bucket level after each second
    provisioned_wcu: float
    burst_max: float
    billing_mode: str
    source: str  # where consumption came from, shown on the plot
    metric_wcu: list[tuple[float, float]] = field(default_factory=list)  # (t, WCU/s) per minute from CloudWatch
    metric_total_wcu: float | None = None  # ConsumedWriteCapacityUnits summed over the run (throttling check)
    burst_start: str = "assumed full at start"  # how the simulated bucket's first level was chosen


@dataclass(kw_only=True)
class ReportData:
    run_id: str
    run_dir: Path
    verdict: (
        str  # pass | fail | error | unchecked (loadcheck.core.rundir.verdict; unchecked: load only, nothing failed)
    )
    run_status: str | None
    started_at: str | None
    ended_at: str | None
    target: dict[str, Any]
    options: dict[str, Any]
    routes: list[RouteSummary]
    checks: list[CheckResult]
    series: dict[str, RouteSeries]
    bucket_s: int
    duration_s: float
    capacity: CapacitySeries | None
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    aborted: dict[str, Any] | None = None  # run.json ``aborted`` when --abort-on-fail stopped the load
    dropped_arrivals: int = 0
    latency_source: str = "histograms.json"
    notes: list[str] = field(default_factory=list)
    capacity_plan: dict[str, Any] | None = None
    verdict_reasons: list[str] = field(default_factory=list)
    conditions: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_checks(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status in ("fail", "error")]


# ------------------------------------------------------------------------------------------------
def status_category(rec: dict[str, Any]) -> str:
    status = int(rec.get("status") or 0)
    if rec.get("error") or status == 0:
        return "errors"
    if 200 <= status < 300:
        return "2xx"
    if 300 <= status < 400:
        return "3xx"
    if 400 <= status < 500:
        return str(status)
    return "5xx"


def public_target(target: dict[str, Any] | None) -> dict[str, Any]:
    """The target without anything that looks like a secret (a Target holds none; defence in depth)."""
    out = {}
    for k, v in (target or {}).items():
        if any(h in k.lower() for h in _SECRET_HINTS):
            continue
        out[k] = v
    return out


def _percentile_exact(values: list[float], p: float) -> float:
    ordered = sorted(values)
    idx = max(0, math.ceil(p / 100.0 * len(ordered)) - 1)
    return ordered[min(idx, len(ordered) - 1)]


def _write_units(item: dict[str, Any] | None) -> int:
    return write_units(item_size(item)) if item else 1


class _Ledger:
    """One pass over the ledger, keeping per-second counters (bounded by the run's seconds)."""

    def __init__(self, run_dir: Path, *, present: bool = True) -> None:
        self.origin_ms = math.inf
        self.end_ms = -math.inf
        records: list[tuple[str, float, float, str, float, int | None, bool]] = []
        routes: dict[str, dict[str, Any]] = {}
        for rec in read_ledger(run_dir) if present else ():
            t_start = float(rec["t_start_ms"])
            lat = float(rec.get("latency_ms") or 0.0)
            done = float(rec.get("t_intended_ms") or t_start) + lat
            cat = status_category(rec)
            units = None
            if rec.get("item_key") is not None:
                units = _write_units(rec.get("item"))
            landed = units is not None and charged_write(status_of(rec))
            records.append((rec["route"], t_start, done, cat, lat, units, landed))
            r = routes.setdefault(rec["route"], {"requests": 0, "failures": 0, "status": Counter(), "lat": []})
            r["requests"] += 1
            r["failures"] += int(failed(rec))
            r["status"][str(rec["status"]) if rec.get("status") else (rec.get("error") or "no_status")] += 1
            r["lat"].append(lat)
            self.origin_ms = min(self.origin_ms, t_start)
            self.end_ms = max(self.end_ms, done)
        self.records = records
        self.routes = routes

    @property
    def duration_s(self) -> float:
        return max(0.001, (self.end_ms - self.origin_ms) / 1000.0) if self.records else 0.0


def _summaries_from_results(results: dict[str, Any]) -> list[RouteSummary]:
    out = []
    for route, r in sorted(results.get("routes", {}).items()):
        out.append(
            RouteSummary(
                route=route,
                requests=int(r.get("requests", 0)),
                failures=int(r.get("failures", 0)),
                rps=float(r.get("rps", 0.0)),
                status=dict(r.get("status", {})),
                latency_ms=dict(r.get("latency_ms", {})),
            )
        )
    return out


def _summaries_from_ledger(led: _Ledger, hist: dict[str, Any] | None) -> list[RouteSummary]:
    whole = (hist or {}).get("routes", {})
    out = []
    for route, r in sorted(led.routes.items()):
        if route in whole:
            h = HdrHistogram.decode(whole[route])
            lat = {
                k: h.get_value_at_percentile(p) / 1000.0
                for k, p in (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))
            }
            lat["max"] = h.get_max_value() / 1000.0
        else:
            lat = {
                k: _percentile_exact(r["lat"], p)
                for k, p in (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))
            }
            lat["max"] = max(r["lat"])
        out.append(
            RouteSummary(
                route=route,
                requests=r["requests"],
                failures=r["failures"],
                rps=round(r["requests"] / led.duration_s, 3),
                status=dict(r["status"]),
                latency_ms=lat,
            )
        )
    return out


def route_summaries(run_dir: str | Path) -> list[RouteSummary]:
    """Per-route figures: results.json's when present, else computed from the ledger + histograms."""
    results = rundir.read_results(run_dir)
    if results is not None:
        return _summaries_from_results(results)
    return _summaries_from_ledger(_Ledger(Path(run_dir)), rundir.read_histograms(run_dir))


def _series(led: _Ledger, hist: dict[str, Any] | None, bucket_s: int) -> tuple[dict[str, RouteSeries], str]:
    out: dict[str, RouteSeries] = {}
    if not led.records:
        return out, "no requests"
    n = max(1, math.ceil(led.duration_s / bucket_s))
    origin_s = led.origin_ms / 1000.0
    done_counts: dict[str, list[float]] = defaultdict(lambda: [0.0] * n)
    status: dict[str, dict[str, list[float]]] = defaultdict(dict)
    lat_buckets: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in range(n)])
    for route, _t, done, cat, lat, _u, _l in led.records:
        i = min(n - 1, max(0, int((done / 1000.0 - origin_s) // bucket_s)))
        done_counts[route][i] += 1.0 / bucket_s
        status[route].setdefault(cat, [0.0] * n)[i] += 1.0 / bucket_s
        lat_buckets[route][i].append(lat)
    intervals = (hist or {}).get("intervals") or []
    source = "histograms.json" if intervals else "ledger (exact, no histograms.json)"
    merged: dict[str, list[Any]] = defaultdict(lambda: [None] * n)
    for interval in intervals:
        i = int((float(interval["t"]) - math.floor(origin_s)) // bucket_s)
        if not 0 <= i < n:
            i = min(n - 1, max(0, i))
        for route, text in interval.get("routes", {}).items():
            h = HdrHistogram.decode(text)
            slot = merged[route]
            if slot[i] is None:
                slot[i] = h  # decoding allocates a histogram already: reuse it for the bucket
            else:
                slot[i].add(h)
    whole = (hist or {}).get("routes", {})
    for route in sorted(led.routes):
        pcts: dict[str, list[float | None]] = {"p50": [None] * n, "p95": [None] * n, "p99": [None] * n}
        for i in range(n):
            h = merged[route][i] if route in merged else None
            if h is not None and h.get_total_count():
                for k, p in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0)):
                    pcts[k][i] = h.get_value_at_percentile(p) / 1000.0
            elif not intervals and lat_buckets[route][i]:
                for k, p in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0)):
                    pcts[k][i] = _percentile_exact(lat_buckets[route][i], p)
        if route in whole:
            hw = HdrHistogram.decode(whole[route])
            dist = [(p, hw.get_value_at_percentile(p) / 1000.0) for p in DISTRIBUTION_PERCENTILES[1:-1]]
            dist = [(0.0, hw.get_min_value() / 1000.0), *dist, (100.0, hw.get_max_value() / 1000.0)]
        else:
            values = led.routes[route]["lat"]
            dist = [(p, _percentile_exact(values, p) if p > 0 else min(values)) for p in DISTRIBUTION_PERCENTILES]
        out[route] = RouteSeries(
            t=[i * bucket_s for i in range(n)],
            throughput=done_counts[route],
            status=dict(status[route]),
            p50=pcts["p50"],
            p95=pcts["p95"],
            p99=pcts["p99"],
            distribution=dist,
        )
    return out, source


def _throttling_figures(results: dict[str, Any] | None) -> dict[str, Any]:
    for c in (results or {}).get("checks", []):
        if c.get("name") == "throttling":
            return dict(c.get("figures") or {})
    return {}


def _table_capacity(results: dict[str, Any] | None) -> tuple[float, str]:
    """(provisioned WCU, billing mode): the throttling check's DescribeTable, else the description."""
    for c in (results or {}).get("checks", []):
        figs = c.get("figures") or {}
        if c.get("name") == "throttling" and figs.get("provisioned_wcu") is not None:
            return float(figs["provisioned_wcu"]), str(figs.get("billing_mode") or "PROVISIONED")
    try:
        table = load_description().table
    except LoadcheckError:
        return 0.0, "unknown"
    return float(table.write_capacity), table.billing_mode


def simulate_burst(consumed: list[float], *, rate: float, burst: float, start: float | None = None) -> list[float]:
    """Bucket level after each second: what it held (at most ``burst``) plus this second's
    refill, minus what landed; so ``n`` seconds from full admit ``burst + rate * n``, the bound
    the throttling check holds a run to (loadcheck/core/throttle_model.py rule 1).

    A refused write consumes nothing (§7.2), so only landed writes are subtracted; the level is
    clamped at 0 (a table never lends more than it holds)."""
    level = burst if start is None else start
    out = []
    for c in consumed:
        level = max(0.0, min(burst, level) + rate - c)
        out.append(min(burst, level))
    return out


def burst_start_level(consumed: list[float], throttled: list[float], *, rate: float, burst: float) -> float | None:
    """The bucket's level when the run began, if a throttled write anchors it (None otherwise).

    At the end of the first second with a throttled write the bucket was empty, so it began with
    ``consumed up to then - rate x seconds`` (clamped to ``[0, burst]``)."""
    first = next((i for i, n in enumerate(throttled) if n), None)
    if first is None:
        return None
    level = sum(consumed[: first + 1]) - rate * (first + 1)
    return max(0.0, min(burst, level))


def _metrics_overlay(run_dir: Path, origin_s: float) -> list[tuple[float, float]]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        minutes = data["per_minute"]["ConsumedWriteCapacityUnits"]
        return sorted((float(m) - origin_s, float(v) / 60.0) for m, v in minutes.items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def _capacity(led: _Ledger, results: dict[str, Any] | None, run_dir: Path) -> CapacitySeries | None:
    writes = [(t, u, landed, cat) for _r, t, _d, cat, _lat, u, landed in led.records if u is not None]
    if not writes:
        return None
    rate, mode = _table_capacity(results)
    n = max(1, math.ceil(led.duration_s))
    consumed = [0.0] * n
    throttled = [0.0] * n
    for t, units, landed, cat in writes:
        i = min(n - 1, int((t - led.origin_ms) // 1000))
        if landed:
            consumed[i] += units or 0
        if cat == "429":
            throttled[i] += 1
    burst = BURST_SECONDS * rate
    start = burst_start_level(consumed, throttled, rate=rate, burst=burst)
    how = (
        "assumed full at start"
        if start is None
        else f"anchored empty at the first throttled write ({start:.0f} WCU at start)"
    )
    metric = _metrics_overlay(run_dir, led.origin_ms / 1000.0)
    source = (
        "CloudWatch per minute (line) + ledger (bars)"
        if metric
        else "computed from the ledger's landed writes (no CloudWatch metrics saved)"
    )
    return CapacitySeries(
        t=[float(i) for i in range(n)],
        consumed_wcu=consumed,
        throttled_writes=throttled,
        burst_level=simulate_burst(consumed, rate=rate, burst=burst, start=start) if mode == "PROVISIONED" else [],
        burst_start=how,
        provisioned_wcu=rate,
        burst_max=burst,
        billing_mode=mode,
        source=source,
        metric_wcu=metric,
        metric_total_wcu=_throttling_figures(results).get("consumed_wcu_metric"),
    )


def build_report_data(run_dir: str | Path) -> ReportData:
    """Read a run directory into a :class:`ReportData` (raises RunDirError/LedgerError on bad input)."""
    rd = rundir.run_dir_of(run_dir)
    run = rundir.read_run(rd)
    results = rundir.read_results(rd)
    hist = rundir.read_histograms(rd)
    notes: list[str] = []
    has_ledger = bool(ledger_files(rd))
    if not has_ledger and results is None:
        raise RunDirError(
            f"{rd} has neither a ledger nor results.json: nothing to report",
            value=str(rd),
            hint="pass a run directory written by `loadcheck run`",
        )
    led = _Ledger(rd, present=has_ledger)
    if not has_ledger:
        notes.append(
            "no ledger in this directory (a saved baseline?): figures from results.json only, no plots over time"
        )
    duration = led.duration_s
    bucket_s = max(1, math.ceil(duration / MAX_POINTS))
    series, latency_source = _series(led, hist, bucket_s)
    if results is None:
        notes.append(
            "this run was never checked (no results.json): run `loadcheck check "
            f"{rd}` to verify it; route figures below come from the ledger"
        )
        routes = _summaries_from_ledger(led, hist)
        checks: list[CheckResult] = []
        final = verdict(
            None,
            thresholds=run.get("thresholds") or [],
            run_status=run.get("status"),
            outages=run.get("outages") or [],
            aborted=run.get("aborted"),
        )
        verdict_value = "unchecked" if final.passed else final.value
    else:
        routes = _summaries_from_results(results)
        checks = [CheckResult.from_dict(c) for c in results.get("checks", [])]
        final = verdict_of_results(results)
        verdict_value = final.value
    if hist is None:
        notes.append(
            "no histograms.json (the run did not finish writing it): latency percentiles are exact "
            "values from the ledger"
        )
    if run.get("status") == "aborted":
        notes.append(rundir.aborted_reason(run.get("aborted")))
    elif run.get("status") not in (None, "complete"):
        notes.append(f"run status is {run.get('status')!r}: the load did not run to its end")
    if run.get("note"):
        notes.append(str(run["note"]))
    checks.sort(key=lambda c: (STATUS_ORDER.get(c.status, 9), c.name))
    plan_path = rd / "capacity.json"
    plan = None
    if plan_path.is_file():
        try:
            plan = json.loads(plan_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            notes.append(f"{plan_path} is not valid JSON: the capacity plan is not shown")
    return ReportData(
        run_id=str(run.get("run_id", rd.name)),
        run_dir=rd,
        verdict=verdict_value,
        verdict_reasons=[r for r in final.reasons if r != "load only: no checks ran"],
        conditions=dict((results or {}).get("conditions") or run.get("conditions") or {}),
        run_status=run.get("status"),
        started_at=run.get("started_at"),
        ended_at=run.get("ended_at"),
        target=public_target((results or {}).get("target") or run.get("target")),
        options=dict((results or {}).get("options") or run.get("options") or {}),
        routes=routes,
        checks=checks,
        series=series,
        bucket_s=bucket_s,
        duration_s=duration,
        capacity=_capacity(led, results, rd),
        thresholds=list(run.get("thresholds") or []),
        aborted=run.get("aborted") if run.get("status") == "aborted" else None,
        dropped_arrivals=int(run.get("dropped_arrivals") or 0),
        latency_source=latency_source,
        notes=notes,
        capacity_plan=plan,
    )
