"""Renderers of a :class:`reports.compare.Comparison`: table (terminal), markdown (pull request), json.

    render_comparison(cmp, "table" | "markdown" | "json") -> str

Every format carries the same facts: warnings (runs that differ), notes (409s of forced
collisions left out), each metric with its change and confidence interval, routes not judged
and why, and the broken budgets.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from loadcheck.core.errors import ConfigError
from reports.compare_stats import MetricChange, pct

if TYPE_CHECKING:
    from reports.compare_model import Comparison

ARROW = {"better": "▲ better", "worse": "▼ worse", "same": "= same", "offered": "~ with the offered load", "n/a": ""}


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
    return pct(m.change)


def _fmt_interval(m: MetricChange) -> str:
    """The change's confidence interval (latency) or the rps the offered load and the mix's noise allow."""
    if m.expected_current is not None:
        return f"expected {m.expected_current[0]:.2f}..{m.expected_current[1]:.2f}"
    if m.change_interval is None:
        return "-"
    lo, hi = m.change_interval
    return f"[{'?' if lo is None else pct(lo)}, {'?' if hi is None else pct(hi)}]"


def _fmt_direction(m: MetricChange, route_judged: bool) -> str:
    if not m.judged and m.name not in ("rps", "error_rate"):
        return "not enough samples" if m.change_interval is not None else "not judged"
    text = ARROW[m.direction]
    if m.direction == "same" and m.significant is False and m.change is not None and abs(m.change) >= 0.05:
        text += " (within noise)"
    return text + ("" if route_judged else " (not judged)")


def _rows(cmp: Comparison) -> list[list[str]]:
    return [
        [
            rc.route,
            m.name,
            _fmt_value(m.name, m.baseline),
            _fmt_value(m.name, m.current),
            _fmt_change(m),
            _fmt_interval(m),
            _fmt_direction(m, rc.judged),
        ]
        for rc in cmp.routes
        for m in rc.metrics
    ]


def _interval_heading(cmp: Comparison) -> str:
    return f"{100 * cmp.budgets.confidence:g}% interval"


def render_table(cmp: Comparison) -> str:
    head = ["route", "metric", "baseline", "current", "change", _interval_heading(cmp), "direction"]
    rows = _rows(cmp)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"baseline {cmp.baseline} ({cmp.baseline_path})", f"current  {cmp.current} ({cmp.current_path})"]
    lines += [f"WARNING: {w}" for w in cmp.warnings]
    lines += [f"note: {n}" for n in cmp.notes]
    lines.append("")
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for rc in cmp.routes:
        lines += [f"note: {rc.route}: {n}" for n in rc.notes]
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
    lines += [f"> {n}" for n in cmp.notes]
    if cmp.warnings or cmp.notes:
        lines.append("")
    lines += [
        f"| route | metric | baseline | current | change | {_interval_heading(cmp)} | |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    lines += [f"| `{r[0]}` | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]} | {r[6]} |" for r in _rows(cmp)]
    route_notes = [f"- `{rc.route}`: {n}" for rc in cmp.routes for n in rc.notes]
    if route_notes:
        lines += ["", *route_notes]
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
