"""Judge a run against a baseline: per-route rps, error rate and p50/p95/p99, and check statuses.

    budgets = Budgets(max_p95_regression=0.10, max_error_rate_increase=0.005, fail_on_check_regression=True)
    cmp = compare_runs("baselines/main", "runs/<id>", budgets)   # run dirs or saved baselines
    cmp.broken            # [] when every budget held
    render_comparison(cmp, "table" | "markdown" | "json") -> str

Figures come from each side's results.json (the ledger and histograms.json when a run was never
checked). A budget is judged only on routes with at least ``min_requests`` requests on both
sides: a p95 of five requests is noise, and the output says which routes were not judged.

Runs against different targets (kind, region, domain, table) or with a different mix or shape
measure different things; they are compared only with ``force=True`` and the output says so.
(Baseline comparison is what DLT on AWS added in v4 and what Locust lacks, docs/load-tools.md §7.)
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError
from reports import schema
from reports.data import RouteSummary, route_summaries

TARGET_KEYS = ("kind", "region", "domain", "table_name")
OPTION_KEYS = ("mix", "shape")
NOTE_OPTION_KEYS = ("rate", "steps", "step_duration_s", "duration_s", "workers", "faults")
SAME_LATENCY = 0.05  # |relative change| below this is "same"
SAME_RPS = 0.05
SAME_ERROR_PP = 0.001


@dataclass(frozen=True, kw_only=True)
class Budgets:
    max_p95_regression: float | None = 0.10  # relative increase of p95 allowed (0.10 = 10 %)
    max_error_rate_increase: float | None = 0.005  # absolute increase of the error rate (0.005 = 0.5 pp)
    fail_on_check_regression: bool = False  # a check that passed in the baseline and not now
    min_requests: int = 20


def parse_percent(value: str | float, *, option: str) -> float:
    """``10%`` or ``0.10`` -> 0.10 (a bare number above 1 is refused as ambiguous)."""
    text = str(value).strip()
    try:
        x = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
    except ValueError:
        raise ConfigError(f"{option}: {value!r} is not a percentage", value=value, hint=f"e.g. {option} 10%") from None
    if not text.endswith("%") and x > 1:
        raise ConfigError(
            f"{option}: {value!r} is ambiguous",
            value=value,
            hint=f"write a percentage ({option} {text}%) or a fraction ({option} {x / 100:g})",
        )
    if not math.isfinite(x) or x < 0:
        raise ConfigError(f"{option}: {value!r} must be 0 or more", value=value, hint=f"e.g. {option} 10%")
    return x


def parse_pp(value: str | float, *, option: str) -> float:
    """``0.5pp`` (percentage points) or ``0.005`` (a fraction) -> 0.005."""
    text = str(value).strip().lower()
    try:
        x = (
            float(text[:-2]) / 100.0
            if text.endswith("pp")
            else float(text.rstrip("%")) / 100.0
            if text.endswith("%")
            else float(text)
        )
    except ValueError:
        raise ConfigError(
            f"{option}: {value!r} is not percentage points",
            value=value,
            hint=f"e.g. {option} 0.5pp (the error rate may rise from 1.0% to 1.5%)",
        ) from None
    if not text.endswith(("pp", "%")) and x > 1:
        raise ConfigError(
            f"{option}: {value!r} is ambiguous",
            value=value,
            hint=f"write percentage points ({option} {text}pp) or a fraction ({option} {x / 100:g})",
        )
    if not math.isfinite(x) or x < 0:
        raise ConfigError(f"{option}: {value!r} must be 0 or more", value=value, hint=f"e.g. {option} 0.5pp")
    return x


@dataclass(kw_only=True)
class MetricChange:
    name: str  # rps | error_rate | p50 | p95 | p99
    baseline: float | None
    current: float | None
    change: float | None  # relative for rps/latency; absolute (fraction) for error_rate
    direction: str  # better | worse | same | n/a


@dataclass(kw_only=True)
class RouteComparison:
    route: str
    baseline_requests: int
    current_requests: int
    metrics: list[MetricChange]
    judged: bool
    note: str | None = None

    def metric(self, name: str) -> MetricChange:
        return next(m for m in self.metrics if m.name == name)


@dataclass(kw_only=True)
class CheckChange:
    name: str
    baseline: str | None
    current: str | None
    regression: bool


@dataclass(kw_only=True)
class Side:
    path: Path
    run_id: str
    target: dict[str, Any]
    options: dict[str, Any]
    routes: dict[str, RouteSummary]
    checks: dict[str, str]
    verdict: str


@dataclass(kw_only=True)
class Comparison:
    baseline: str
    current: str
    baseline_path: str
    current_path: str
    budgets: Budgets
    routes: list[RouteComparison]
    checks: list[CheckChange]
    broken: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    forced: bool = False

    @property
    def ok(self) -> bool:
        return not self.broken

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def load_side(path: str | Path) -> Side:
    rd = schema.run_dir_of(path)
    run = schema.read_run(rd)
    results = schema.read_results(rd)
    routes = {r.route: r for r in route_summaries(rd)}
    checks = {c["name"]: c["status"] for c in (results or {}).get("checks", [])}
    return Side(
        path=rd,
        run_id=str(run.get("run_id", rd.name)),
        target=dict(run.get("target") or {}),
        options=dict(run.get("options") or {}),
        routes=routes,
        checks=checks,
        verdict=str((results or {}).get("verdict", "unchecked")),
    )


def differences(a: Side, b: Side) -> tuple[list[str], list[str]]:
    """(blocking differences: target, mix, shape; notable ones: rate, duration, faults ...)."""
    blocking = [
        f"target {k}: {a.target.get(k)!r} vs {b.target.get(k)!r}"
        for k in TARGET_KEYS
        if a.target.get(k) != b.target.get(k)
    ]
    blocking += [
        f"{k}: {a.options.get(k)!r} vs {b.options.get(k)!r}"
        for k in OPTION_KEYS
        if a.options.get(k) != b.options.get(k)
    ]
    notable = [
        f"{k}: {a.options.get(k)!r} vs {b.options.get(k)!r}"
        for k in NOTE_OPTION_KEYS
        if a.options.get(k) != b.options.get(k)
    ]
    return blocking, notable


def _rel(base: float | None, cur: float | None) -> float | None:
    if base is None or cur is None:
        return None
    if base == 0:
        return 0.0 if cur == 0 else math.inf
    return (cur - base) / base


def _direction(change: float | None, *, same: float, higher_is_better: bool) -> str:
    if change is None:
        return "n/a"
    if abs(change) < same:
        return "same"
    return "better" if (change > 0) == higher_is_better else "worse"


def _route(route: str, base: RouteSummary | None, cur: RouteSummary | None, budgets: Budgets) -> RouteComparison:
    metrics = []
    b_rps, c_rps = (base.rps if base else None), (cur.rps if cur else None)
    ch = _rel(b_rps, c_rps)
    metrics.append(
        MetricChange(
            name="rps",
            baseline=b_rps,
            current=c_rps,
            change=ch,
            direction=_direction(ch, same=SAME_RPS, higher_is_better=True),
        )
    )
    b_err, c_err = (base.error_rate if base else None), (cur.error_rate if cur else None)
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
    for p in ("p50", "p95", "p99"):
        bv = base.latency_ms.get(p) if base else None
        cv = cur.latency_ms.get(p) if cur else None
        ch = _rel(bv, cv)
        metrics.append(
            MetricChange(
                name=p,
                baseline=bv,
                current=cv,
                change=ch,
                direction=_direction(ch, same=SAME_LATENCY, higher_is_better=False),
            )
        )
    note = None
    if base is None or cur is None:
        note = "only in the current run" if base is None else "missing from the current run"
        judged = False
    else:
        judged = min(base.requests, cur.requests) >= budgets.min_requests
        if not judged:
            note = f"too few requests to judge (fewer than {budgets.min_requests} on a side)"
    return RouteComparison(
        route=route,
        baseline_requests=base.requests if base else 0,
        current_requests=cur.requests if cur else 0,
        metrics=metrics,
        judged=judged,
        note=note,
    )


def compare_sides(base: Side, cur: Side, budgets: Budgets, *, force: bool = False) -> Comparison:
    blocking, notable = differences(base, cur)
    if blocking and not force:
        raise ConfigError(
            f"{base.path} and {cur.path} are not comparable: " + "; ".join(blocking),
            value=blocking,
            hint="compare runs of the same target, mix and shape, or pass --force to compare anyway (the output says so)",
        )
    warnings = [f"compared with --force although they differ: {d}" for d in blocking] if blocking else []
    warnings += [f"options differ: {d}" for d in notable]
    routes = [
        _route(r, base.routes.get(r), cur.routes.get(r), budgets) for r in sorted(set(base.routes) | set(cur.routes))
    ]
    broken: list[str] = []
    for rc in routes:
        if not rc.judged:
            continue
        p95 = rc.metric("p95")
        if (
            budgets.max_p95_regression is not None
            and p95.change is not None
            and p95.change > budgets.max_p95_regression
        ):
            broken.append(
                f"{rc.route}: p95 {p95.baseline:.1f} -> {p95.current:.1f} ms "
                f"(+{100 * p95.change:.1f}%, budget {100 * budgets.max_p95_regression:g}%)"
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
    )


def compare_runs(
    baseline: str | Path, current: str | Path, budgets: Budgets | None = None, *, force: bool = False
) -> Comparison:
    """Compare two run directories or saved baselines (see the module docstring)."""
    return compare_sides(load_side(baseline), load_side(current), budgets or Budgets(), force=force)


# ------------------------------------------------------------------------------------------------
# Renderers

ARROW = {"better": "▲ better", "worse": "▼ worse", "same": "= same", "n/a": ""}


def _fmt_value(name: str, v: float | None) -> str:
    if v is None:
        return "-"
    if name == "error_rate":
        return f"{100 * v:.2f}%"
    if name == "rps":
        return f"{v:.2f}"
    return f"{v:.1f}ms"


def _fmt_change(m: MetricChange) -> str:
    if m.change is None:
        return "-"
    if m.name == "error_rate":
        return f"{100 * m.change:+.2f}pp"
    if math.isinf(m.change):
        return "+inf%"
    return f"{100 * m.change:+.1f}%"


def _rows(cmp: Comparison) -> list[list[str]]:
    rows = []
    for rc in cmp.routes:
        for m in rc.metrics:
            rows.append(
                [
                    rc.route,
                    m.name,
                    _fmt_value(m.name, m.baseline),
                    _fmt_value(m.name, m.current),
                    _fmt_change(m),
                    ARROW[m.direction] + ("" if rc.judged else " (not judged)"),
                ]
            )
    return rows


def render_table(cmp: Comparison) -> str:
    head = ["route", "metric", "baseline", "current", "change", "direction"]
    rows = _rows(cmp)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"baseline {cmp.baseline} ({cmp.baseline_path})", f"current  {cmp.current} ({cmp.current_path})"]
    lines += [f"WARNING: {w}" for w in cmp.warnings]
    lines.append("")
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for rc in cmp.routes:
        if rc.note:
            lines.append(f"note: {rc.route}: {rc.note}")
    if cmp.checks:
        lines.append("")
        lines += [
            f"check {c.name}: {c.baseline or 'not run'} -> {c.current or 'not run'}"
            + ("  REGRESSION" if c.regression else "")
            for c in cmp.checks
        ]
    lines.append("")
    if cmp.broken:
        lines.append(f"BUDGET BROKEN ({len(cmp.broken)}):")
        lines += [f"  - {b}" for b in cmp.broken]
    else:
        lines.append("all budgets held")
    return "\n".join(lines) + "\n"


def render_markdown(cmp: Comparison) -> str:
    verdict = "❌ budget broken" if cmp.broken else "✅ within budget"
    lines = [f"### loadcheck compare: {verdict}", "", f"`{cmp.current}` vs baseline `{cmp.baseline}`", ""]
    lines += [f"> ⚠️ {w}" for w in cmp.warnings]
    if cmp.warnings:
        lines.append("")
    lines += ["| route | metric | baseline | current | change | |", "|---|---|---:|---:|---:|---|"]
    lines += [f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} |" for r in _rows(cmp)]
    if cmp.checks:
        lines += ["", "**Checks that changed**", ""]
        lines += [
            f"- {c.name}: {c.baseline or 'not run'} → {c.current or 'not run'}"
            + (" (regression)" if c.regression else "")
            for c in cmp.checks
        ]
    if cmp.broken:
        lines += ["", "**Broken budgets**", ""] + [f"- {b}" for b in cmp.broken]
    return "\n".join(lines) + "\n"


def render_json(cmp: Comparison) -> str:
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(cmp.to_dict()), indent=2, sort_keys=True) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "json": render_json}


def render_comparison(cmp: Comparison, fmt: str = "table") -> str:
    if fmt not in RENDERERS:
        raise ConfigError(f"--format: {fmt!r} is not a format", value=fmt, hint=f"use one of {', '.join(RENDERERS)}")
    return RENDERERS[fmt](cmp)
