"""Judge a run against a baseline: per-route rps, error rate and p50/p95/p99, and check statuses.

    budgets = Budgets(max_p95_regression=0.10, max_error_rate_increase=0.005, fail_on_check_regression=True)
    cmp = compare_runs("baselines/main", "runs/<id>", budgets)   # run dirs or saved baselines
    cmp.broken            # [] when every budget held
    cmp.options_differ    # [{"option", "baseline", "current"}] when the runs were run differently
    render_comparison(cmp, "table" | "markdown" | "json") -> str

Figures come from each side's results.json (the ledger and histograms.json when a run was never
checked); latency intervals from histograms.json (or the ledger's latencies). The rules
(docs/reports.md "compare"):

- error rates leave out the 409s of forced collisions (``--collisions``), as the run's own
  error-rate threshold does (:func:`loadcheck.core.ledger.forced_collision`); counted from the
  ledger, from a saved baseline's ``baseline.json``, or, with neither, every 409 of a run with
  ``collisions`` above 0 (the output says which);
- a p95 budget is broken only when the change is significant and its lower confidence bound
  exceeds the budget (:mod:`reports.compare_stats`); too few samples are "not enough samples to
  judge";
- rps is labelled better or worse only when the offered load does not explain it;
- budgets are judged only on routes with at least ``min_requests`` requests on both sides.

Runs against different targets (kind, region, domain, table) or with a different mix or shape
measure different things; they are compared only with ``force=True`` and the output says so.
(Baseline comparison is what DLT on AWS added in v4 and what Locust lacks, docs/load-tools.md §7.)
Every option that differs (collisions, rate, duration, faults ...) is listed in ``options_differ``
and as a warning line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core import histograms, rundir
from loadcheck.core.errors import ConfigError, LoadcheckError
from loadcheck.core.ledger import forced_collisions_by_route, ledger_files, read_ledger
from loadcheck.core.runconfig import RunOptions
from reports.compare_model import (
    Budgets,
    CheckChange,
    Comparison,
    Regression,
    RouteComparison,
    Side,
    parse_percent,
    parse_pp,
    parse_regression,
)
from reports.compare_render import RENDERERS, render_comparison, render_json, render_markdown, render_table
from reports.compare_stats import MetricChange, latency_change, offered_ratio, pct, rps_change
from reports.data import RouteSummary, route_summaries

TARGET_KEYS = ("kind", "region", "domain", "table_name")
OPTION_KEYS = ("mix", "shape")  # a different mix or shape measures something else: needs --force
NOTE_OPTION_KEYS = (
    "rate",
    "steps",
    "step_duration_s",
    "duration_s",
    "users",
    "spawn_rate",
    "think_time_s",
    "workers",
    "collisions",
    "faults",
)
LATENCY_PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))
SAME_ERROR_PP = 0.001
BASELINE_META = "baseline.json"
LOADCONFIG_FILE = "loadconfig.json"
COLLISIONS_KEY = "forced_collision_409s"  # in baseline.json: per route, counted when it was saved


def _options(rd: Path, run: dict[str, Any]) -> dict[str, Any]:
    """The run's options as run.json records them, completed from loadconfig.json, then the defaults."""
    options = dict(run.get("options") or {})
    cfg = rd / LOADCONFIG_FILE
    if cfg.is_file():
        try:
            extra = (rundir.read_json_object(cfg, writer="loadcheck") or {}).get("options") or {}
        except LoadcheckError:
            extra = {}
        options = {**extra, **options}
    defaults = RunOptions().to_dict()
    return {**{k: v for k, v in defaults.items() if k != "target"}, **options}


def _histograms(rd: Path) -> dict[str, HdrHistogram]:
    """Whole-run latency per route: histograms.json, else the ledger's latencies, else none."""
    data = rundir.read_histograms(rd)
    if data is not None:
        return {route: histograms.decode(text) for route, text in (data.get("routes") or {}).items()}
    if not ledger_files(rd):
        return {}
    out: dict[str, HdrHistogram] = {}
    for rec in read_ledger(rd):
        h = out.get(rec["route"])
        if h is None:
            h = out[rec["route"]] = histograms.new_histogram()
        h.record_value(histograms.to_us(float(rec.get("latency_ms") or 0.0)))
    return out


def forced_collisions(
    rd: Path, options: dict[str, Any], routes: dict[str, RouteSummary]
) -> tuple[dict[str, int], str | None]:
    """(409s of forced collisions per route, where the count came from)."""
    if not float(options.get("collisions") or 0.0) > 0:
        return {}, None
    if ledger_files(rd):
        return forced_collisions_by_route(rd), "ledger"
    meta = rd / BASELINE_META
    if meta.is_file():
        saved = (rundir.read_json_object(meta, writer="loadcheck") or {}).get(COLLISIONS_KEY)
        if isinstance(saved, dict):
            return {str(k): int(v) for k, v in saved.items()}, BASELINE_META
    return {route: int(r.status.get("409", 0)) for route, r in routes.items() if r.status.get("409")}, "assumed"


def load_side(path: str | Path) -> Side:
    rd = rundir.run_dir_of(path)
    run = rundir.read_run(rd)
    results = rundir.read_results(rd)
    routes = {r.route: r for r in route_summaries(rd)}
    checks = {c["name"]: c["status"] for c in (results or {}).get("checks", [])}
    options = _options(rd, run)
    forced, source = forced_collisions(rd, options, routes)
    return Side(
        path=rd,
        run_id=str(run.get("run_id", rd.name)),
        target=dict(run.get("target") or {}),
        options=options,
        routes=routes,
        checks=checks,
        verdict=str((results or {}).get("verdict", "unchecked")),
        histograms=_histograms(rd),
        forced_409=forced,
        forced_409_source=source,
    )


def option_differences(a: Side, b: Side) -> list[dict[str, Any]]:
    """Every target field and run option that differs, blocking ones (target, mix, shape) first."""
    out = [
        {"option": f"target.{k}", "baseline": a.target.get(k), "current": b.target.get(k), "blocking": True}
        for k in TARGET_KEYS
        if a.target.get(k) != b.target.get(k)
    ]
    for keys, blocking in ((OPTION_KEYS, True), (NOTE_OPTION_KEYS, False)):
        out += [
            {"option": k, "baseline": a.options.get(k), "current": b.options.get(k), "blocking": blocking}
            for k in keys
            if a.options.get(k) != b.options.get(k)
        ]
    return out


def differences(a: Side, b: Side) -> tuple[list[str], list[str]]:
    """(blocking differences: target, mix, shape; notable ones: rate, duration, collisions, faults ...)."""
    diffs = option_differences(a, b)

    def line(d: dict[str, Any]) -> str:
        name = d["option"].replace("target.", "target ")
        return f"{name}: {d['baseline']!r} vs {d['current']!r}"

    return [line(d) for d in diffs if d["blocking"]], [line(d) for d in diffs if not d["blocking"]]


def _direction(change: float | None, *, same: float, higher_is_better: bool) -> str:
    if change is None:
        return "n/a"
    if abs(change) < same:
        return "same"
    return "better" if (change > 0) == higher_is_better else "worse"


def _route(route: str, base: Side, cur: Side, budgets: Budgets, offered: float | None) -> RouteComparison:
    b, c = base.routes.get(route), cur.routes.get(route)
    metrics = [
        rps_change(
            base_requests=b.requests if b else 0,
            base_rps=b.rps if b else None,
            cur_requests=c.requests if c else 0,
            cur_rps=c.rps if c else None,
            offered=offered,
        )
    ]
    b_err, c_err = base.error_rate(route), cur.error_rate(route)
    d_err = None if b_err is None or c_err is None else c_err - b_err
    metrics.append(
        MetricChange(
            name="error_rate",
            baseline=b_err,
            current=c_err,
            change=d_err,
            direction=_direction(d_err, same=SAME_ERROR_PP, higher_is_better=False),
        )
    )
    for name, p in LATENCY_PERCENTILES:
        metrics.append(
            latency_change(
                name,
                p,
                base_value=b.latency_ms.get(name) if b else None,
                cur_value=c.latency_ms.get(name) if c else None,
                base_h=base.histograms.get(route),
                cur_h=cur.histograms.get(route),
                confidence=budgets.confidence,
            )
        )
    note = None
    if b is None or c is None:
        note = "only in the current run" if b is None else "missing from the current run"
        judged = False
    else:
        judged = min(b.requests, c.requests) >= budgets.min_requests
        if not judged:
            note = f"too few requests to judge (fewer than {budgets.min_requests} on a side)"
    return RouteComparison(
        route=route,
        baseline_requests=b.requests if b else 0,
        current_requests=c.requests if c else 0,
        metrics=metrics,
        judged=judged,
        note=note,
        baseline_forced_409=base.forced_409.get(route, 0),
        current_forced_409=cur.forced_409.get(route, 0),
    )


def _budget_breaks(rc: RouteComparison, budgets: Budgets, base: Side, cur: Side) -> list[str]:
    broken = []
    p95 = rc.metric("p95")
    low = (p95.change_interval or [None, None])[0]
    if (
        budgets.max_p95_regression is not None
        and p95.judged
        and p95.significant
        and low is not None
        and low > budgets.max_p95_regression
    ):
        broken.append(
            f"{rc.route}: p95 {p95.baseline:.1f} -> {p95.current:.1f} ms ({pct(p95.change or 0.0)}; "
            f"at least {pct(low)} with {100 * budgets.confidence:g}% confidence, "
            f"budget {100 * budgets.max_p95_regression:g}%)"
        )
    err = rc.metric("error_rate")
    if (
        budgets.max_error_rate_increase is not None
        and err.change is not None
        and err.change > budgets.max_error_rate_increase + 1e-12
    ):
        broken.append(
            f"{rc.route}: error rate {100 * (err.baseline or 0):.2f}% -> {100 * (err.current or 0):.2f}% "
            f"(+{100 * err.change:.2f} pp, budget {100 * budgets.max_error_rate_increase:g} pp)"
        )
    for text in budgets.regressions:
        broken += _regression_breaks(rc, parse_regression(text), budgets, base, cur)
    return broken


def _regression_breaks(rc: RouteComparison, r: Regression, budgets: Budgets, base: Side, cur: Side) -> list[str]:
    """A ``--max-regression`` budget judged on one route (as the p95 and error-rate budgets are)."""
    if r.route not in ("all", rc.route):
        return []
    if r.metric == "error_rate":
        err = rc.metric("error_rate")
        if err.change is None or err.change <= r.limit + 1e-12:
            return []
        return [
            f"{rc.route}: error rate {100 * (err.baseline or 0):.2f}% -> {100 * (err.current or 0):.2f}% "
            f"(+{100 * err.change:.2f} pp, budget {r})"
        ]
    m = _latency_metric(rc, r, budgets, base, cur)
    low = (m.change_interval or [None, None])[0]
    if not (m.judged and m.significant and low is not None and low > r.limit):
        return []
    return [
        f"{rc.route}: {r.metric} {m.baseline:.1f} -> {m.current:.1f} ms ({pct(m.change or 0.0)}; "
        f"at least {pct(low)} with {100 * budgets.confidence:g}% confidence, budget {r})"
    ]


def _latency_metric(rc: RouteComparison, r: Regression, budgets: Budgets, base: Side, cur: Side) -> MetricChange:
    """The route's change of ``r``'s percentile: one of the table's (p50/p95/p99), else computed."""
    known = next((m for m in rc.metrics if m.name == r.metric), None)
    if known is not None:
        return known
    p = r.percentile or 0.0
    bh, ch = base.histograms.get(rc.route), cur.histograms.get(rc.route)

    def value(h: HdrHistogram | None) -> float | None:
        return h.get_value_at_percentile(p) / 1000.0 if h is not None and h.get_total_count() else None

    return latency_change(
        r.metric, p, base_value=value(bh), cur_value=value(ch), base_h=bh, cur_h=ch, confidence=budgets.confidence
    )


def _collision_notes(base: Side, cur: Side) -> list[str]:
    notes = []
    for label, side in (("baseline", base), ("current", cur)):
        if side.forced_409_source is None:
            continue
        counts = ", ".join(f"{n} on {route}" for route, n in sorted(side.forced_409.items())) or "none"
        how = {
            "ledger": "counted from the ledger",
            BASELINE_META: f"as counted when the baseline was saved ({BASELINE_META})",
            "assumed": "no ledger to tell them apart: every 409 taken as a forced collision",
        }[side.forced_409_source]
        notes.append(
            f"error rates leave out the 409s of forced collisions (--collisions {side.options.get('collisions')}) "
            f"in the {label} run, as the run's own error-rate threshold does: {counts} ({how})"
        )
    return notes


def compare_sides(base: Side, cur: Side, budgets: Budgets, *, force: bool = False) -> Comparison:
    diffs = option_differences(base, cur)
    blocking, notable = differences(base, cur)
    if blocking and not force:
        raise ConfigError(
            f"{base.path} and {cur.path} are not comparable: " + "; ".join(blocking),
            value=blocking,
            hint="compare runs of the same target, mix and shape, or pass --force to compare anyway (the output says so)",
        )
    sent = set(base.routes) | set(cur.routes)
    for text in budgets.regressions:
        r = parse_regression(text)
        if r.route != "all" and r.route not in sent:
            raise ConfigError(
                f"--max-regression {text!r} names route {r.route!r}, which neither run sent",
                value=text,
                hint=f"routes in the runs: {', '.join(sorted(sent)) or 'none'}; or drop the route to judge every one",
            )
    warnings = [f"compared with --force although they differ: {d}" for d in blocking] if blocking else []
    warnings += [f"options differ: {d}" for d in notable]
    offered = offered_ratio(base.options, cur.options)
    routes = [_route(r, base, cur, budgets, offered) for r in sorted(set(base.routes) | set(cur.routes))]
    broken: list[str] = []
    for rc in routes:
        if rc.judged:
            broken += _budget_breaks(rc, budgets, base, cur)
    checks = []
    for name in sorted(set(base.checks) | set(cur.checks)):
        b, c = base.checks.get(name), cur.checks.get(name)
        if b == c:
            continue
        regression = b == "pass" and c in ("fail", "error", None)
        checks.append(CheckChange(name=name, baseline=b, current=c, regression=regression))
        if regression and budgets.fail_on_check_regression:
            broken.append(f"check {name}: {b} -> {c or 'not run'}")
    return Comparison(
        baseline=base.run_id,
        current=cur.run_id,
        baseline_path=str(base.path),
        current_path=str(cur.path),
        budgets=budgets,
        routes=routes,
        checks=checks,
        broken=broken,
        warnings=warnings,
        forced=bool(blocking),
        options_differ=diffs,
        notes=_collision_notes(base, cur),
    )


def compare_runs(
    baseline: str | Path, current: str | Path, budgets: Budgets | None = None, *, force: bool = False
) -> Comparison:
    """Compare two run directories or saved baselines (see the module docstring)."""
    return compare_sides(load_side(baseline), load_side(current), budgets or Budgets(), force=force)


__all__ = [
    "RENDERERS",
    "Budgets",
    "Comparison",
    "MetricChange",
    "compare_runs",
    "compare_sides",
    "load_side",
    "parse_percent",
    "parse_pp",
    "parse_regression",
    "render_comparison",
    "render_json",
    "render_markdown",
    "render_table",
]
