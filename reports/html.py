"""``report.html``: one self-contained file (inline CSS and SVG, no scripts, no network).

Layout, top to bottom: the verdict with failing checks first, per-route table, throughput,
latency percentiles over time and distribution, status mix, throttling against the capacity
model, every check with figures and evidence, the capacity plan when ``capacity.json`` exists,
then the run's options and target (public fields only: a Target holds no secrets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from loadcheck import __version__
from reports import plots
from reports.data import ReportData
from reports.limits import AT_RISK

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _evidence(items: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(e, sort_keys=True, default=str) for e in items)


def knee_svgs(plan: dict[str, Any]) -> list[str]:
    out = []
    for r in plan.get("routes", []):
        steps = r.get("steps") or []
        if not steps:
            continue
        out.append(
            plots.knee(
                r["route"],
                [s["rate"] for s in steps],
                [s["offered_rps"] for s in steps],
                [s["ok_rps"] for s in steps],
                [s.get("p95_ms") for s in steps],
                [bool(s["ok"]) if s.get("judged", True) else None for s in steps],
                r.get("knee_rate"),
                r.get("slo_p95_ms"),
            )
        )
    return out


def plan_svgs(plan: dict[str, Any]) -> list[str]:
    """The bill and the limits of the plan as charts (the tables beside them hold the figures)."""
    out = []
    cost = (plan.get("recommendation") or {}).get("cost") or {}
    rows = [r for r in cost.get("rows", []) if r.get("item") != "total per month"]
    if rows:
        out.append(plots.bill([r["item"] for r in rows], [r["provisioned"] for r in rows], cost.get("currency", "USD")))
    lims = [r for r in plan.get("limits") or [] if r.get("have")]
    if lims:
        out.append(
            plots.limits(
                [r["limit"] for r in lims],
                [r["need"] / r["have"] for r in lims],
                [r["verdict"] for r in lims],
                AT_RISK,
            )
        )
    return out


def render_html(d: ReportData) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=False
    )
    counts = {s: sum(1 for c in d.checks if c.status == s) for s in ("pass", "fail", "error", "skipped")}
    svgs = {}
    if d.series:
        svgs = {
            "throughput": plots.throughput(d.series, d.bucket_s),
            "latency": plots.latency_over_time(d.series, d.latency_source),
            "distribution": plots.latency_distribution(d.series),
            "status": plots.status_mix(d.series, d.bucket_s),
        }
    cap_svg = plots.capacity(d.capacity, str(d.target.get("table_name", "table"))) if d.capacity else None
    plan = d.capacity_plan
    return env.get_template("report.html.j2").render(
        d=d,
        counts=counts,
        total_requests=sum(r.requests for r in d.routes),
        svgs=svgs,
        cap_svg=cap_svg,
        plan=plan,
        knee_svgs=knee_svgs(plan) if plan else [],
        plan_svgs=plan_svgs(plan) if plan else [],
        ms=_ms,
        money=_money,
        evidence=_evidence,
        version=__version__,
    )


class HtmlRenderer:
    name = "html"
    filename = "report.html"

    def render(self, data: ReportData, out_dir: Path) -> Path:
        path = out_dir / self.filename
        path.write_text(render_html(data), encoding="utf-8")
        return path
