"""Thresholds: parse(format(t)) == t, and the doom rule is exact: a threshold is doomed exactly
when even the best rest of the run (every remaining planned request fast and answered 2xx)
leaves it failing."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from loadcheck.core import histograms
from loadcheck.core.thresholds import (
    RATE_METRICS,
    Counts,
    Observed,
    Threshold,
    doomed,
    evaluate,
    format_threshold,
    parse_threshold,
)

ROUTES = st.sampled_from(["all", "GET /events", "POST /events", "GET /events/{date}", "DELETE /a/{proxy+}"])
PERCENTILES = st.one_of(
    st.integers(1, 99).map(lambda p: f"p{p}"),
    st.tuples(st.integers(0, 99), st.integers(1, 999)).map(lambda t: f"p{t[0]}.{t[1]}".rstrip("0")),
).filter(lambda m: 0 < float(m[1:]) < 100)


@st.composite
def thresholds(draw: st.DrawFn) -> Threshold:
    route = draw(ROUTES)
    inclusive = draw(st.booleans())
    if draw(st.booleans()):
        metric = draw(st.sampled_from(RATE_METRICS))
        limit = draw(st.floats(0.0, 1.0, allow_nan=False))
        inclusive = inclusive or limit == 0.0  # nothing is below 0: '<0%' is refused
    else:
        metric = draw(st.one_of(PERCENTILES, st.just("max")))
        limit = draw(st.integers(1, histograms.HIGHEST_US)) / 1000.0  # whole microseconds, in ms
    return Threshold(metric=metric, limit=limit, route=route, inclusive=inclusive)


@given(thresholds())
@example(Threshold("error_rate", 0.07))
@example(Threshold("error_rate", 1 / 3, inclusive=True))
@example(Threshold("p99.9", 0.001, "GET /events/{date}"))
@example(Threshold("max", 3_600_000.0))
@example(Threshold("p50", 1500.0))
def test_parse_of_format_round_trips(t: Threshold) -> None:
    text = format_threshold(t)
    assert parse_threshold(text) == t
    assert format_threshold(parse_threshold(text)) == text


# Latencies below 2048 us: exact in HDR, so the best case is easy to state.
latencies = st.lists(st.integers(1, 2047), min_size=1, max_size=60)


@given(
    latencies,
    st.integers(0, 100),
    st.sampled_from([50.0, 75.0, 90.0, 95.0, 99.0, 99.9]),
    st.integers(2, 2047),  # above 1 us, so the best rest (1 us each) passes it
    st.booleans(),
)
def test_a_percentile_is_doomed_exactly_when_the_best_rest_fails(
    seen: list[int], more: int, p: float, limit_us: int, inclusive: bool
) -> None:
    t = Threshold(metric=f"p{p:g}", limit=limit_us / 1000.0, inclusive=inclusive)
    bound = len(seen) + more
    so_far = histograms.new_histogram()
    for v in seen:
        so_far.record_value(v)
    best = histograms.new_histogram()  # the rest: every remaining request at 1 us
    best.add(so_far)
    if more:
        best.record_value(1, more)
    (final,) = evaluate([t], Observed(hdr={"r": best}))
    assert (doomed(t, counts=None, hdr=so_far, bound=bound) is not None) is (not final["passed"])


@given(st.integers(0, 200), st.integers(0, 200), st.floats(0.0, 1.0), st.booleans())
def test_a_rate_is_doomed_exactly_when_the_best_rest_fails(k: int, more: int, limit: float, inclusive: bool) -> None:
    t = Threshold(metric="error_rate", limit=limit, inclusive=inclusive or limit == 0.0)
    requests = k + 1  # at least the k errors and one more request were sent
    bound = requests + more
    (final,) = evaluate([t], Observed(counts={"r": Counts(requests=bound, error_rate=k)}))
    assert (doomed(t, counts=Counts(requests=requests, error_rate=k), hdr=None, bound=bound) is not None) is (
        not final["passed"]
    )
