"""The comparison's records: budgets, per-route changes, each side, and the comparison itself
(built by :mod:`reports.compare`, rendered by :mod:`reports.compare_render`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from loadcheck.core.errors import ConfigError
from loadcheck.core.thresholds import split_expression
from reports.compare_stats import MetricChange
from reports.data import RouteSummary


@dataclass(frozen=True, kw_only=True)
class Budgets:
    max_p95_regression: float | None = 0.10  # relative increase of p95 allowed (0.10 = 10 %)
    max_error_rate_increase: float | None = 0.005  # absolute increase of the error rate (0.005 = 0.5 pp)
    fail_on_check_regression: bool = False  # a check that passed in the baseline and not now
    min_requests: int = 20
    confidence: float = 0.95  # each end of a latency change's interval holds with at least this
    # --max-regression budgets, as written back by Regression.__str__ ("GET /events:p99<10%")
    regressions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Regression:
    """A ``--max-regression`` budget: how much a route's metric may rise against the baseline.

    The threshold syntax (:func:`loadcheck.core.thresholds.split_expression`) with a change as the
    limit: a latency percentile ``pNN`` by a relative amount (``10%`` or ``0.10``, judged on the
    lower confidence bound of the change, as ``--max-p95-regression``), ``error_rate`` by
    percentage points (``0.5pp``). No route, or ``all``: every route, each judged on its own.
    """

    metric: str
    limit: float
    route: str = "all"

    @property
    def percentile(self) -> float | None:
        return float(self.metric[1:]) if self.metric.startswith("p") else None

    def __str__(self) -> str:
        route = "" if self.route == "all" else f"{self.route}:"
        limit = f"{100 * self.limit:.10g}pp" if self.metric == "error_rate" else f"{100 * self.limit:.10g}%"
        return f"{route}{self.metric}<{limit}"


REGRESSION_EXAMPLE = "e.g. --max-regression 'GET /events:p99<10%' or --max-regression 'error_rate<0.5pp'"


def parse_regression(value: str, *, option: str = "--max-regression") -> Regression:
    """``'[ROUTE:]pNN<10%'`` or ``'[ROUTE:]error_rate<0.5pp'`` -> :class:`Regression`."""
    route, metric, _, limit_text = split_expression(value, option=option, example=REGRESSION_EXAMPLE)
    if metric == "error_rate":
        limit = parse_pp(limit_text, option=option)
    elif metric.startswith("p"):
        limit = parse_percent(limit_text, option=option)
    else:
        raise ConfigError(
            f"{option}: {metric!r} in {value!r} cannot be compared with a baseline",
            value=value,
            hint="compare budgets judge latency percentiles (pNN, relative: p99<10%) and error_rate "
            "(percentage points: error_rate<0.5pp)",
        )
    return Regression(metric=metric, limit=limit, route=route)


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
class RouteComparison:
    route: str
    baseline_requests: int
    current_requests: int
    metrics: list[MetricChange]
    judged: bool
    note: str | None = None
    baseline_forced_409: int = 0  # 409s of forced collisions left out of the error rate
    current_forced_409: int = 0

    def metric(self, name: str) -> MetricChange:
        return next(m for m in self.metrics if m.name == name)

    @property
    def notes(self) -> list[str]:
        return [n for n in [self.note, *(m.note for m in self.metrics)] if n]


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
    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    forced_409: dict[str, int] = field(default_factory=dict)  # per route
    forced_409_source: str | None = None  # ledger | baseline.json | assumed (every 409) | None

    def error_rate(self, route: str) -> float | None:
        """Failures over requests, the 409s of forced collisions left out."""
        r = self.routes.get(route)
        if r is None:
            return None
        if not r.requests:
            return 0.0
        return max(0, r.failures - self.forced_409.get(route, 0)) / r.requests


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
    options_differ: list[dict[str, Any]] = field(default_factory=list)  # {"option", "baseline", "current"}
    notes: list[str] = field(default_factory=list)  # how figures were read (409s left out, ...)

    @property
    def ok(self) -> bool:
        return not self.broken

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}
