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

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core.errors import RunDirError
from loadcheck.core.state import write_json_atomic

HISTOGRAMS_VERSION = 1
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


def merge_encoded(items: Iterable[str]) -> HdrHistogram:
    out = new_histogram()
    for text in items:
        out.add(HdrHistogram.decode(text.encode("ascii")))
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
        path = Path(run_dir) / "histograms.json"
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
    path = Path(run_dir) / "histograms.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(
            f"{path} does not exist",
            value=str(path),
            hint="the run did not finish writing its histograms; latency figures need it",
        ) from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not JSON ({exc.msg})", value=str(path), hint="the file is damaged") from None
    return RunHistograms.from_json(data, source=str(path))
