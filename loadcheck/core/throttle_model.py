"""The provisioned-capacity model the throttling check holds a run to (pure functions).

DynamoDB's rules (docs/aws-behaviour.md §7.2, §7.3): a table refills ``rate`` capacity units per
second and keeps up to 300 s of unused capacity as burst, so its bucket holds at most
``burst = 300 * rate`` units; a request that does not fit is refused
(ProvisionedThroughputExceededException), and a refused request consumes nothing.

What the ledger lets us test without knowing the bucket's level when the run began:

1. **No over-admission**: in any interval of ``n`` seconds the table cannot have accepted more
   than ``burst + rate * n`` units (whatever the starting level). We find the worst interval
   with a maximum-subarray scan over per-second consumption minus ``rate``.
2. **No early throttling**: at the first refusal the bucket was empty, so
   ``level_at_start = consumed_before - rate * elapsed`` (the burst the run used before
   throttling began) must be >= 0: a table that refuses while it has not even used its
   provisioned rate throttles too early.
3. **The refusals after onset**: from the first refusal on, the bucket level is known (empty),
   so we simulate it forward over the offered writes and predict how many should be accepted
   and refused; observed acceptances must agree within the stated tolerance.

Consumption is placed at the client's send time; the handler's SDK retries move it later by
up to the request's latency, so every bound gets ``rate * slack_s`` of slack (the p99 write
latency, at least 1 s).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Write:
    t: float  # seconds from the run's start (client send time)
    units: float  # WCU it costs when accepted
    accepted: bool  # consumed capacity (2xx, 409: a failed conditional write still costs, §7.2)
    refused: bool  # answered as throttled
    latency_s: float = 0.0


@dataclass(frozen=True)
class Interval:
    start_s: int
    end_s: int  # inclusive
    consumed: float
    allowed: float


def per_second(writes: Sequence[Write], *, accepted_only: bool = True) -> list[float]:
    if not writes:
        return []
    n = int(math.floor(max(w.t for w in writes))) + 1
    out = [0.0] * n
    for w in writes:
        if w.accepted or not accepted_only:
            out[int(math.floor(w.t))] += w.units
    return out


def worst_interval(consumed: Sequence[float], rate: float, burst: float) -> Interval | None:
    """The interval with the largest ``consumed - rate * seconds`` (Kadane); None if empty."""
    best = -math.inf
    best_span = (0, -1)
    run_sum = 0.0
    run_start = 0
    for i, c in enumerate(consumed):
        gain = c - rate
        if run_sum <= 0:
            run_sum, run_start = gain, i
        else:
            run_sum += gain
        if run_sum > best:
            best, best_span = run_sum, (run_start, i)
    if best_span[1] < 0:
        return None
    a, b = best_span
    total = sum(consumed[a : b + 1])
    return Interval(a, b, total, burst + rate * (b - a + 1))


@dataclass(frozen=True)
class Prediction:
    onset_s: float | None  # first refusal (observed)
    burst_used_before_onset: float | None  # consumed before onset minus rate * elapsed
    predicted_refused_after_onset: int
    observed_refused_after_onset: int
    offered_after_onset: int
    predicted_accepted_after_onset: int = 0
    observed_accepted_after_onset: int = 0


def predict_after_onset(writes: Sequence[Write], *, rate: float, burst: float) -> Prediction:
    """Anchor the bucket at empty when the first refused write was answered; simulate forward.

    Each write is decided when the client heard back (send time + latency): the handler's SDK
    retries for that long, so the write fits if the bucket holds its cost by then.
    """
    ordered = sorted(writes, key=lambda w: w.t + w.latency_s)
    anchor = next((w for w in ordered if w.refused), None)
    if anchor is None:
        return Prediction(None, None, 0, 0, 0)
    d0 = anchor.t + anchor.latency_s
    first_t = min(w.t for w in ordered)
    before = sum(w.units for w in ordered if w.accepted and w.t + w.latency_s < d0)
    used = before - rate * (d0 - first_t)
    level, last = 0.0, d0
    predicted = observed = offered = pred_ok = seen_ok = 0
    for w in ordered:
        d = w.t + w.latency_s
        if d < d0 or (d == d0 and w is not anchor and not w.refused):
            continue
        offered += 1
        observed += int(w.refused)
        seen_ok += int(w.accepted)
        if w is anchor:
            predicted += 1
            continue
        level = min(burst, level + rate * max(0.0, d - last))
        last = max(last, d)
        if level + 1e-9 >= w.units:
            level -= w.units
            pred_ok += 1
        else:
            predicted += 1
    return Prediction(anchor.t, used, predicted, observed, offered, pred_ok, seen_ok)


def model_onset(writes: Sequence[Write], *, rate: float, burst: float, start_level: float) -> float | None:
    """When the model predicts the first refusal if every offered write were attempted in
    order with the bucket at ``start_level`` (burst full: ``burst``; empty: 0)."""
    level, last = start_level, None
    for w in sorted(writes, key=lambda w: w.t):
        if last is not None:
            level = min(burst, level + rate * (w.t - last))
        last = w.t
        if level + 1e-9 >= w.units:
            level -= w.units
        else:
            return w.t
    return None


def tolerance(predicted_accepted: int, *, rate: float, slack_s: float) -> int:
    """Allowed |observed - predicted| writes accepted after onset: 10% of the prediction, at
    least 2, plus what the slack lets through. (Judged on acceptances, not refusals: when 20
    writes/s meet a 1 WCU/s table, refusing all of them is within 10% of the refusals but
    wrong by 100% on what the table should have taken.)"""
    return max(2, math.ceil(0.1 * predicted_accepted)) + math.ceil(rate * slack_s)
