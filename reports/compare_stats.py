"""How sure a change between two runs is: latency percentile intervals and the offered-load rule for rps.

    latency_change(name, percentile, base_value, cur_value, base_h, cur_h, confidence=0.95) -> MetricChange
    rps_change(base, cur, offered_ratio, confidence=0.95) -> MetricChange
    offered_ratio(base_options, cur_options) -> float | None

Latency (docs/reports.md "How sure a change is"): each side's percentile gets an order-statistic
interval from its HDR histogram (:func:`loadcheck.core.histograms.percentile_interval`, each
bound at ``1 - (1 - confidence) / 2``). The change's lower bound is the current run's lower bound
over the baseline's upper bound, its upper bound the current's upper over the baseline's lower;
each end then holds with at least ``confidence`` (the two sides' error chances add up). A
change is *significant* when that interval excludes zero. Too few samples for a bound leaves the
metric unjudged ("not enough samples to judge").

Throughput: in an open model the load generator decides a route's rps (offered rate x the mix,
each arrival's route drawn at random); in a closed model the users, think time and latency do.
So an rps change is labelled better or worse only when the two runs offered the same load (or
loads that differ only in rate, in an open model, when the change is taken relative to the rate
ratio) *and* the change is beyond the counting noise of the random mix: conditioned on both runs'
total requests of the route, the current run's count is binomial if the rate did not change
(Poisson arrivals; a fixed arrival rate with a random mix varies less, so the test is cautious),
at 99 % (:data:`RPS_CONFIDENCE`): every route gets a label, so each may be wrong only rarely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core import histograms

OPEN_SHAPES = ("constant-rate", "step")
CLOSED_LOAD_KEYS = ("users", "spawn_rate", "think_time_s")
SAME_LATENCY = 0.05  # |relative change| below this is "same" even when significant
SAME_RPS = 0.05
# rps labels are informational and every route gets one: a 1 % chance per route of labelling the
# mix's noise better or worse, rather than the budgets' 5 %
RPS_CONFIDENCE = 0.99


@dataclass(kw_only=True)
class MetricChange:
    name: str  # rps | error_rate | p50 | p95 | p99
    baseline: float | None
    current: float | None
    change: float | None  # relative for rps/latency; absolute (fraction) for error_rate
    direction: str  # better | worse | same | offered (rps changed with the offered load) | n/a
    judged: bool = True  # False: too few samples (or no distribution) to say whether it changed
    significant: bool | None = None  # latency and rps: the change is beyond sampling noise
    baseline_interval: list[float | None] | None = None  # latency: [low, high] ms of each side's percentile
    current_interval: list[float | None] | None = None
    change_interval: list[float | None] | None = None  # latency: [low, high] relative change
    expected_current: list[float] | None = None  # rps: the range the mix's noise allows at the offered load
    note: str | None = None


def pct(x: float) -> str:
    """A relative change as a signed percentage."""
    return "+inf%" if math.isinf(x) else f"{100 * x:+.1f}%"


def _rel(base: float | None, cur: float | None) -> float | None:
    if base is None or cur is None:
        return None
    if base == 0:
        return 0.0 if cur == 0 else float("inf")
    return (cur - base) / base


def latency_change(
    name: str,
    percentile: float,
    *,
    base_value: float | None,
    cur_value: float | None,
    base_h: HdrHistogram | None,
    cur_h: HdrHistogram | None,
    confidence: float = 0.95,
) -> MetricChange:
    change = _rel(base_value, cur_value)
    m = MetricChange(name=name, baseline=base_value, current=cur_value, change=change, direction="n/a", judged=False)
    if base_value is None or cur_value is None:
        return m
    if base_h is None or cur_h is None:
        m.note = f"{name}: no latency distribution (histograms.json or ledger) on a side: not judged"
        return m
    bl, bh = histograms.percentile_interval(base_h, percentile, confidence=confidence)
    cl, ch = histograms.percentile_interval(cur_h, percentile, confidence=confidence)
    m.baseline_interval, m.current_interval = [bl, bh], [cl, ch]
    low = None if cl is None or not bh else cl / bh - 1.0
    high = None if ch is None or not bl else ch / bl - 1.0
    m.change_interval = [low, high]
    if low is None or high is None:
        need = histograms.min_samples_for(percentile, confidence=confidence)
        n = min(base_h.get_total_count(), cur_h.get_total_count())
        m.note = f"{name}: not enough samples to judge ({n} on the smaller side; an interval on {name} needs {need})"
        return m
    m.judged = True
    m.significant = low > 0 or high < 0
    if low > 0 and change is not None and change >= SAME_LATENCY:
        m.direction = "worse"
    elif high < 0 and change is not None and change <= -SAME_LATENCY:
        m.direction = "better"
    else:
        m.direction = "same"
    return m


def _mean_rate(options: dict[str, Any]) -> float | None:
    if options.get("shape") == "step":
        steps = [float(s) for s in options.get("steps") or []]
        return sum(steps) / len(steps) if steps else None
    rate = options.get("rate")
    return float(rate) if rate else None


def offered_ratio(base: dict[str, Any], cur: dict[str, Any]) -> float | None:
    """Current over baseline offered load per route, or None when it cannot be known (mix, shape, users differ)."""
    if base.get("shape") != cur.get("shape") or base.get("mix") != cur.get("mix"):
        return None
    if base.get("shape") in OPEN_SHAPES:
        b, c = _mean_rate(base), _mean_rate(cur)
        return c / b if b and c else None
    if any(base.get(k) != cur.get(k) for k in CLOSED_LOAD_KEYS):
        return None
    return 1.0


def rps_change(
    *,
    base_requests: int,
    base_rps: float | None,
    cur_requests: int,
    cur_rps: float | None,
    offered: float | None,
    confidence: float = RPS_CONFIDENCE,
) -> MetricChange:
    change = _rel(base_rps, cur_rps)
    m = MetricChange(name="rps", baseline=base_rps, current=cur_rps, change=change, direction="n/a", judged=False)
    if not base_rps or not cur_rps or not base_requests or not cur_requests:
        return m
    if offered is None:
        m.direction = "offered"
        m.note = (
            "rps: the runs offered different loads (mix, shape or users): changed with the offered load, not judged"
        )
        return m
    t_base, t_cur = base_requests / base_rps, cur_requests / cur_rps
    total = base_requests + cur_requests
    share = offered * t_cur / (t_base + offered * t_cur)  # the current run's share of the route's requests
    tail = (1.0 - confidence) / 2.0
    lo, hi = histograms.binomial_quantiles(total, share, (tail, 1.0 - tail))
    m.expected_current = [lo / t_cur, hi / t_cur]
    m.judged = True
    m.significant = not lo <= cur_requests <= hi
    normalised = (cur_rps / base_rps) / offered - 1.0
    if not m.significant or abs(normalised) < SAME_RPS:
        m.direction = "same" if offered == 1.0 else "offered"
    else:
        m.direction = "better" if normalised > 0 else "worse"
    if offered != 1.0:
        m.note = (
            f"rps: the offered rate changed x{offered:.3g}; relative to it the route's rps changed "
            f"{100 * normalised:+.1f}%" + ("" if m.significant else " (within the mix's noise)")
        )
    return m
