"""Plots as inline SVG text (matplotlib, Agg backend): the HTML report embeds them, so it opens
from disk with no network and no JavaScript (Locust's headless HTML reports lose their charts,
docs/load-tools.md §6).

Each function takes plain data from :mod:`reports.data` and returns an ``<svg>`` string; none
reads files. Text stays text in the SVG (``svg.fonttype: none``) so the report is small and
searchable.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

from reports.data import CapacitySeries, RouteSeries  # noqa: E402

RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "loadcheck",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "figure.dpi": 96,
}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
STATUS_COLORS = {
    "2xx": "#2ca02c",
    "3xx": "#17becf",
    "429": "#ff7f0e",
    "409": "#bcbd22",
    "403": "#9467bd",
    "404": "#8c564b",
    "413": "#e377c2",
    "5xx": "#d62728",
    "errors": "#222222",
}
WIDTH_IN = 10.5


@contextmanager
def _figure(rows: int = 1, cols: int = 1, height: float = 2.6, **kw: Any) -> Iterator[tuple[Any, Any]]:
    with matplotlib.rc_context(RC):  # type: ignore[arg-type]  # stubs list keys as Literals
        fig, axes = plt.subplots(rows, cols, figsize=(WIDTH_IN, height * rows), squeeze=False, **kw)
        try:
            yield fig, axes
        finally:
            plt.close(fig)


def _svg(fig: Any) -> str:
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _headroom(a: Any, factor: float = 1.3) -> None:
    """Room above the data for the legend (it sits inside the axes, top left)."""
    low, high = a.get_ylim()
    a.set_ylim(0, max(high, 1e-9) * factor)


def status_color(cat: str, i: int) -> str:
    return STATUS_COLORS.get(cat, PALETTE[i % len(PALETTE)])


def _status_key(cat: str) -> tuple[int, str]:
    order = {"2xx": 0, "3xx": 1, "5xx": 8, "errors": 9}
    return (order.get(cat, 5), cat)


def throughput(series: dict[str, RouteSeries], bucket_s: int) -> str:
    with _figure(height=2.8) as (fig, ax):
        a = ax[0][0]
        for i, (route, s) in enumerate(series.items()):
            a.step(s.t, s.throughput, where="post", label=route, color=PALETTE[i % len(PALETTE)])
        a.set_title(
            "Throughput per route (responses completed per second"
            + (f", {bucket_s} s buckets)" if bucket_s > 1 else ")")
        )
        a.set_xlabel("seconds since the first request")
        a.set_ylabel("req/s")
        _headroom(a)
        a.legend(loc="upper left", ncols=4)
        return _svg(fig)


def _route_grid(n: int) -> tuple[int, int]:
    cols = 2 if n > 1 else 1
    return math.ceil(n / cols), cols


def latency_over_time(series: dict[str, RouteSeries], source: str) -> str:
    rows, cols = _route_grid(len(series))
    with _figure(rows, cols, height=2.4, sharex=True) as (fig, axes):
        for k, (route, s) in enumerate(series.items()):
            a = axes[k // cols][k % cols]
            for name, values, color in (
                ("p50", s.p50, "#2ca02c"),
                ("p95", s.p95, "#ff7f0e"),
                ("p99", s.p99, "#d62728"),
            ):
                xs = [t for t, v in zip(s.t, values, strict=True) if v is not None]
                ys = [v for v in values if v is not None]
                a.plot(xs, ys, label=name, color=color, marker="." if len(xs) < 30 else None, linewidth=1.2)
            a.set_title(f"{route}: latency (ms)")
            _headroom(a)
            a.legend(loc="upper left", ncols=3)
        for k in range(len(series), rows * cols):
            axes[k // cols][k % cols].set_visible(False)
        fig.supxlabel(f"seconds since the first request (percentiles from {source})", fontsize=8)
        return _svg(fig)


def latency_distribution(series: dict[str, RouteSeries]) -> str:
    """Percentile spectrum (x: 1/(1-p) on a log scale, as HdrHistogram plots it)."""
    with _figure(height=3.0) as (fig, ax):
        a = ax[0][0]
        ticks = [0.0, 50.0, 90.0, 99.0, 99.9, 99.99]
        for i, (route, s) in enumerate(series.items()):
            pts = [(1.0 / (1.0 - p / 100.0), ms) for p, ms in s.distribution if p < 100.0]
            a.plot(
                [x for x, _ in pts],
                [y for _, y in pts],
                marker="o",
                markersize=3,
                label=route,
                color=PALETTE[i % len(PALETTE)],
            )
        a.set_xscale("log")
        a.set_xticks([1.0 / (1.0 - p / 100.0) for p in ticks], [f"p{p:g}" for p in ticks])
        a.minorticks_off()
        a.set_title("Latency distribution, whole run (percentile spectrum)")
        a.set_ylabel("ms")
        _headroom(a)
        a.legend(loc="upper left", ncols=4)
        return _svg(fig)


def status_mix(series: dict[str, RouteSeries], bucket_s: int) -> str:
    rows, cols = _route_grid(len(series))
    with _figure(rows, cols, height=2.4, sharex=True) as (fig, axes):
        for k, (route, s) in enumerate(series.items()):
            a = axes[k // cols][k % cols]
            cats = sorted(s.status, key=_status_key)
            a.stackplot(
                s.t,
                [s.status[c] for c in cats],
                labels=cats,
                step="post",
                colors=[status_color(c, i) for i, c in enumerate(cats)],
                alpha=0.85,
            )
            a.set_title(f"{route}: responses per second by status")
            _headroom(a)
            a.legend(loc="upper left", ncols=min(6, len(cats)))
        for k in range(len(series), rows * cols):
            axes[k // cols][k % cols].set_visible(False)
        fig.supxlabel(
            "seconds since the first request (by completion" + (f", {bucket_s} s buckets)" if bucket_s > 1 else ")"),
            fontsize=8,
        )
        return _svg(fig)


def capacity(cap: CapacitySeries, table: str) -> str:
    with _figure(height=3.2) as (fig, ax):
        a = ax[0][0]
        a.bar(
            cap.t,
            cap.consumed_wcu,
            width=1.0,
            align="edge",
            color="#1f77b4",
            alpha=0.6,
            label="consumed WCU/s (landed writes)",
        )
        if cap.billing_mode == "PROVISIONED":
            a.axhline(
                cap.provisioned_wcu, color="#2ca02c", linestyle="--", label=f"provisioned {cap.provisioned_wcu:g} WCU/s"
            )
        if cap.metric_wcu:
            a.step(
                [t for t, _ in cap.metric_wcu],
                [v for _, v in cap.metric_wcu],
                where="post",
                color="#9467bd",
                label="CloudWatch ConsumedWCU / 60 (per minute)",
            )
        throttled_t = [t + 0.5 for t, n in zip(cap.t, cap.throttled_writes, strict=True) if n]
        if throttled_t:
            a.scatter(
                throttled_t,
                [0.0] * len(throttled_t),
                marker="|",
                s=120,
                color="#d62728",
                zorder=5,
                label=f"seconds with throttled writes ({int(sum(cap.throttled_writes))} 429s)",
            )
        a.set_xlabel("seconds since the first request (by send time)")
        a.set_ylabel("WCU per second")
        _headroom(a, 1.45)
        handles, labels = a.get_legend_handles_labels()
        if cap.burst_level:
            b = a.twinx()
            b.plot(
                [t + 1 for t in cap.t],
                cap.burst_level,
                color="#ff7f0e",
                linewidth=1.5,
                label=f"simulated burst bucket (max {cap.burst_max:g} WCU)",
            )
            b.set_ylabel("burst bucket (WCU)")
            b.set_ylim(0, max(cap.burst_max, 1.0) * 1.45)
            b.grid(False)
            h2, l2 = b.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        a.legend(handles, labels, loc="upper right", fontsize=7, ncols=2)
        a.set_title(
            f"Table {table} ({cap.billing_mode}): consumed vs provisioned vs burst\n"
            f"consumption {cap.source}\nburst bucket simulated, {cap.burst_start}",
            fontsize=9,
        )
        return _svg(fig)


def knee(
    route: str,
    rates: Sequence[float],
    offered: Sequence[float],
    achieved: Sequence[float],
    p95: Sequence[float | None],
    ok: Sequence[bool | None],
    knee_rate: float | None,
    slo_ms: float | None,
) -> str:
    """Per-route step results: x is the step's total arrival rate; y the route's offered and
    successfully answered rate and its p95; the knee (highest good step) marked."""
    with _figure(height=2.6) as (fig, ax):
        a = ax[0][0]
        a.plot(rates, achieved, marker="o", color="#1f77b4", label="answered 2xx req/s")
        a.plot(rates, offered, linestyle=":", color="#999999", label="offered req/s")
        for r, y, good in zip(rates, achieved, ok, strict=True):
            color = "#999999" if good is None else "#2ca02c" if good else "#d62728"  # grey: no request, not judged
            a.scatter([r], [y], color=color, zorder=5, s=30)
        if knee_rate is not None:
            a.axvline(knee_rate, color="#2ca02c", linestyle="--", label=f"knee: step {knee_rate:g} req/s")
        a.set_xlabel("step arrival rate (req/s, all routes)")
        a.set_ylabel("req/s")
        _headroom(a, 1.5)
        b = a.twinx()
        xs = [r for r, v in zip(rates, p95, strict=True) if v is not None]
        b.plot(xs, [v for v in p95 if v is not None], marker="s", color="#ff7f0e", label="p95 ms")
        if slo_ms is not None:
            b.axhline(slo_ms, color="#ff7f0e", linestyle=":", label=f"SLO p95 {slo_ms:g} ms")
        b.set_ylabel("p95 ms")
        _headroom(b, 1.5)
        b.grid(False)
        h1, l1 = a.get_legend_handles_labels()
        h2, l2 = b.get_legend_handles_labels()
        a.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=7, ncols=2)
        a.set_title(f"{route}: step results (green: met SLO, no throttling, no errors)")
        return _svg(fig)


def bill(items: Sequence[str], monthly: Sequence[float], currency: str) -> str:
    """The monthly bill of the provisioned option: one horizontal bar per line item."""
    with _figure(height=0.3 * len(items) + 1.0) as (fig, ax):
        a = ax[0][0]
        ys = list(range(len(items)))[::-1]
        a.barh(ys, monthly, color="#1f77b4")
        a.set_yticks(ys, [i[:48] for i in items], fontsize=7)
        for y, v in zip(ys, monthly, strict=True):
            a.text(v, y, f" {v:,.2f}", va="center", fontsize=7)
        a.set_xlabel(f"{currency} per month")
        a.set_xlim(0, max([*monthly, 1e-9]) * 1.25)
        a.set_title("Monthly bill (provisioned table)")
        return _svg(fig)


def limits(names: Sequence[str], share: Sequence[float], verdicts: Sequence[str], at_risk: float) -> str:
    """Each limit's need as a share of the limit, coloured by verdict, with the at-risk line and 100 %."""
    colors = {"fits": "#2ca02c", "at risk": "#ff7f0e", "exceeded": "#d62728"}
    with _figure(height=0.3 * len(names) + 1.0) as (fig, ax):
        a = ax[0][0]
        ys = list(range(len(names)))[::-1]
        shown = [min(s, 2.0) * 100 for s in share]  # beyond 200 % the bar is cut, the label tells
        a.barh(ys, shown, color=[colors.get(v, "#999999") for v in verdicts])
        a.set_yticks(ys, [n[:48] for n in names], fontsize=7)
        for y, s in zip(ys, share, strict=True):
            a.text(min(s, 2.0) * 100, y, f" {100 * s:,.0f}%", va="center", fontsize=7)
        a.axvline(100 * at_risk, color="#ff7f0e", linestyle=":", label=f"at risk above {100 * at_risk:.0f}%")
        a.axvline(100, color="#d62728", linestyle="--", label="limit")
        a.set_xlim(0, 230)
        a.set_xlabel("need as % of the limit")
        a.legend(loc="upper right", fontsize=7)
        a.set_title("Limits at the target rate (green fits, orange at risk, red exceeded)")
        return _svg(fig)
