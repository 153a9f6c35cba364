"""Latency histograms: HDR (3 significant digits, microseconds) per route, whole run and per second.

Why HDR: Locust buckets response times to about two significant digits and averages nothing
across workers correctly for percentiles (docs/load-tools.md §5); HDR histograms keep every
value within 0.1 % and merge exactly by adding counts,
so a master that adds its workers' histograms gets the same percentiles as one process that saw
every request.

Per-second intervals are keyed by the epoch second in which the request *completed* (when
its latency became known), as HdrHistogram interval logs do; so an interval is final once its
second is over, and a worker can ship it at once. Latency itself counts from the request's
intended start (``t_intended_ms`` in the ledger), so queueing in an open-model run is not
omitted.

Memory: one live HDR histogram of this range is about 190 KB, so only the whole-run histograms
and the open seconds are kept live; closed intervals are kept encoded (a few hundred bytes).

``histograms.json`` (docs/internals.md)::

    {"version": 1, "unit": "us",
     "routes": {route: <HDR base64>},
     "intervals": [{"t": <epoch s>, "routes": {route: <HDR base64>}}]}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core.errors import RunDirError
from loadcheck.core.rundir import HISTOGRAMS_FILE, HISTOGRAMS_VERSION, read_histograms
from loadcheck.core.state import write_json_atomic

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: anything slower is clamped to it (and is a timeout anyway)
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def to_us(latency_ms: float) -> int:
    """Milliseconds (float) -> whole microseconds within the trackable range."""
    if not math.isfinite(latency_ms):
        return HIGHEST_US
    return min(HIGHEST_US, max(LOWEST_US, int(round(latency_ms * 1000.0))))


def encode(h: HdrHistogram) -> str:
    return h.encode().decode("ascii")


def decode(text: str | bytes) -> HdrHistogram:
    """An encoded histogram, re-based on our range so adding it to ours is exact."""
    decoded = HdrHistogram.decode(text.encode("ascii") if isinstance(text, str) else text)
    out = new_histogram()
    out.add(decoded)
    return out


def summary(h: HdrHistogram) -> dict[str, float | int]:
    """count, p50..p999 and max in milliseconds."""
    out: dict[str, float | int] = {"count": h.get_total_count()}
    if out["count"] == 0:
        return out
    for name, p in PERCENTILES.items():
        out[name] = h.get_value_at_percentile(p) / 1000.0
    out["max"] = h.get_max_value() / 1000.0
    return out


class IntervalRecorder:
    """What a load-generating process records: per-second, per-route histograms, shipped when closed."""

    def __init__(self) -> None:
        self._open: dict[int, dict[str, HdrHistogram]] = {}

    def record(self, route: str, t_end_s: float, latency_ms: float) -> None:
        second = int(t_end_s)
        routes = self._open.setdefault(second, {})
        h = routes.get(route)
        if h is None:
            h = routes[route] = new_histogram()
        h.record_value(to_us(latency_ms))

    def record_counts(self, counts: Mapping[tuple[int, str, int], int]) -> None:
        """Record ``{(second, route, microseconds): count}``: one HDR update per distinct value.

        A second of load repeats latencies (whole microseconds), so counting them first gives
        the same histograms as :meth:`record` per sample for a fraction of the updates; a load
        generator records a second's requests this way at once.
        """
        for (second, route, us), n in counts.items():
            routes = self._open.setdefault(second, {})
            h = routes.get(route)
            if h is None:
                h = routes[route] = new_histogram()
            h.record_value(us, n)

    def take(self, *, before_s: float | None = None) -> dict[int, dict[str, str]]:
        """Encode and forget the seconds that ended before ``before_s`` (all when None)."""
        done = [s for s in self._open if before_s is None or s + 1 <= before_s]
        out: dict[int, dict[str, str]] = {}
        for s in sorted(done):
            out[s] = {route: encode(h) for route, h in self._open.pop(s).items()}
        return out


class RunHistograms:
    """The merged view (master or single process): whole-run per route + encoded intervals."""

    def __init__(self) -> None:
        self.routes: dict[str, HdrHistogram] = {}
        self.intervals: dict[int, dict[str, str]] = {}

    def add_intervals(self, intervals: Mapping[int | str, Mapping[str, str]]) -> None:
        """Merge shipped intervals (from :meth:`IntervalRecorder.take`, possibly from many workers)."""
        for second, routes in intervals.items():
            sec = int(second)
            mine = self.intervals.setdefault(sec, {})
            for route, text in routes.items():
                incoming = HdrHistogram.decode(text.encode("ascii") if isinstance(text, str) else text)
                whole = self.routes.get(route)
                if whole is None:
                    whole = self.routes[route] = new_histogram()
                whole.add(incoming)
                if route in mine:
                    merged = decode(mine[route])
                    merged.add(incoming)
                    mine[route] = encode(merged)
                else:
                    mine[route] = text if isinstance(text, str) else text.decode("ascii")

    def total(self) -> HdrHistogram:
        out = new_histogram()
        for h in self.routes.values():
            out.add(h)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "version": HISTOGRAMS_VERSION,
            "unit": "us",
            "routes": {route: encode(h) for route, h in sorted(self.routes.items())},
            "intervals": [{"t": s, "routes": dict(sorted(r.items()))} for s, r in sorted(self.intervals.items())],
        }

    def save(self, run_dir: Path) -> Path:
        path = Path(run_dir) / HISTOGRAMS_FILE
        write_json_atomic(path, self.to_json())
        return path

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "histograms.json") -> RunHistograms:
        if data.get("version") != HISTOGRAMS_VERSION or data.get("unit") != "us":
            raise RunDirError(
                f"{source}: version {data.get('version')!r} / unit {data.get('unit')!r} not understood",
                value=source,
                hint=f"this loadcheck reads version {HISTOGRAMS_VERSION} in microseconds",
            )
        out = cls()
        out.routes = {route: decode(text) for route, text in data.get("routes", {}).items()}
        out.intervals = {int(i["t"]): dict(i["routes"]) for i in data.get("intervals", [])}
        return out


def load(run_dir: Path) -> RunHistograms:
    """A run's histograms.json (read by :func:`loadcheck.core.rundir.read_histograms`), decoded."""
    data = read_histograms(run_dir)
    path = Path(run_dir) / HISTOGRAMS_FILE
    if data is None:
        raise RunDirError(
            f"{path} does not exist",
            value=str(path),
            hint="the run did not finish writing its histograms; latency figures need it",
        )
    return RunHistograms.from_json(data, source=str(path))


# ------------------------------------------------------------------------------------------------
# How sure a percentile is: order-statistic confidence intervals, computed from the counts.
#
# Of n independent samples, the number B at or below the true p-quantile q is Binomial(n, p).
# The k-th smallest sample X_(k) lies above q exactly when B < k, so P(X_(l) > q) = P(B <= l-1)
# and P(X_(u) < q) = P(B >= u): choosing the ranks l and u from the binomial distribution gives
# an interval [X_(l), X_(u)] that holds q with at least the asked confidence, whatever the
# latency distribution. It needs no resampling (deterministic) and one pass over the counts.
# A rank that would have to lie beyond the sample (too few samples for so extreme a
# percentile: the largest of 22 samples is above the true p95 only 68 % of the time) leaves
# that bound unknown, and a caller must not judge on it.

_TAIL_SDS = 12.0  # binomial mass beyond 12 standard deviations is below 1e-30: left out


def _binomial_window(n: int, p: float) -> tuple[int, list[float]]:
    """(first k, pmf of Binomial(n, p) for k = first..last) over every k that carries mass."""
    mean, sd = n * p, math.sqrt(n * p * (1.0 - p))
    lo = max(0, int(mean - _TAIL_SDS * sd) - 1)
    hi = min(n, int(mean + _TAIL_SDS * sd) + 2)
    log_p, log_q = math.log(p), math.log1p(-p)
    base = math.lgamma(n + 1)
    pmf = [
        math.exp(base - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q)
        for k in range(lo, hi + 1)
    ]
    return lo, pmf


def binomial_quantiles(n: int, p: float, probabilities: Iterable[float]) -> list[int]:
    """For each q in ``probabilities``: the least k with P(Binomial(n, p) <= k) >= q."""
    if not 0.0 < p < 1.0:
        return [0 if p <= 0.0 else n for _ in probabilities]
    lo, pmf = _binomial_window(n, p)
    out = []
    for q in probabilities:
        total, k = 0.0, lo
        for mass in pmf:
            total += mass
            if total >= q - 1e-12:
                break
            k += 1
        out.append(min(k, n))
    return out


def value_at_rank(h: HdrHistogram, rank: int) -> float:
    """The ``rank``-th smallest recorded value (1-based), as HDR reports percentiles (highest equivalent)."""
    for item in h.get_recorded_iterator():
        if item.total_count_to_this_value >= rank:
            return float(item.value_iterated_to)
    return float(h.get_max_value())


def min_samples_for(percentile: float, *, confidence: float = 0.95) -> int:
    """Fewest samples for which :func:`percentile_interval` has both bounds at this percentile."""
    tail = (1.0 - confidence) / 2.0
    p = percentile / 100.0
    extreme = max(p, 1.0 - p)
    return max(1, math.ceil(math.log(tail) / math.log(extreme))) if 0.0 < p < 1.0 else 1


def percentile_interval(
    h: HdrHistogram, percentile: float, *, confidence: float = 0.95
) -> tuple[float | None, float | None]:
    """(low, high) in ms bracketing the true ``percentile`` with ``confidence`` (two-sided).

    Each bound alone holds with ``1 - (1 - confidence) / 2``. A bound is None when the sample is
    too small to give it (see :func:`min_samples_for`). Values are HDR values (within 0.1 %).
    """
    n = h.get_total_count()
    if n == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    p = percentile / 100.0
    # l: the largest rank with P(B <= l - 1) <= tail; u: the least rank with P(B <= u - 1) >= 1 - tail
    below, above = binomial_quantiles(n, p, (tail, 1.0 - tail))
    cdf_below = _binomial_cdf(n, p, below)
    low_rank = below if cdf_below > tail + 1e-12 else below + 1  # the quantile itself may sit exactly on tail
    high_rank = above + 1
    low = value_at_rank(h, low_rank) / 1000.0 if low_rank >= 1 else None
    high = value_at_rank(h, high_rank) / 1000.0 if high_rank <= n else None
    return low, high


def _binomial_cdf(n: int, p: float, k: int) -> float:
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    lo, pmf = _binomial_window(n, p)
    return sum(pmf[: max(0, k - lo + 1)])
