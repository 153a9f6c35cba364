"""The threshold syntax, its judgement on hand-worked histograms and counts, and the doom rule
``--abort-on-fail`` stops a run on (worked by hand below)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from loadcheck.cli import cli
from loadcheck.commands.run import run_thresholds
from loadcheck.core import histograms
from loadcheck.core.errors import ConfigError
from loadcheck.core.runconfig import RunOptions
from loadcheck.core.thresholds import (
    AbortWatcher,
    Counts,
    Observed,
    Threshold,
    check_threshold_routes,
    describe_entry,
    doomed,
    evaluate,
    parse_threshold,
    planned_until,
    rank,
    request_bound,
)


@pytest.mark.parametrize(
    "text,expected,canonical",
    [
        ("GET /events/{id}:p99<300ms", Threshold("p99", 300.0, "GET /events/{id}"), "GET /events/{id}:p99<300ms"),
        ("error_rate<1%", Threshold("error_rate", 0.01), "error_rate<1%"),
        ("error_rate<0.01", Threshold("error_rate", 0.01), "error_rate<1%"),
        ("server_error_rate<=1%", Threshold("server_error_rate", 0.01, inclusive=True), "server_error_rate<=1%"),
        ("throttle_rate<=0%", Threshold("throttle_rate", 0.0, inclusive=True), "throttle_rate<=0%"),
        ("p99.9<1.5s", Threshold("p99.9", 1500.0), "p99.9<1500ms"),
        ("P99.90 < 2s", Threshold("p99.9", 2000.0), "p99.9<2s"),
        ("p05<1m30s", Threshold("p5", 90000.0), "p5<90s"),
        ("max<250ms", Threshold("max", 250.0), "max<250ms"),
        ("ALL:p50<0.5ms", Threshold("p50", 0.5), "p50<0.5ms"),
        ("  POST   /events : p95 <= 300ms ", Threshold("p95", 300.0, "POST /events", True), "POST /events:p95<=300ms"),
    ],
)
def test_parse_and_canonical_text(text: str, expected: Threshold, canonical: str) -> None:
    t = parse_threshold(text)
    assert t == expected and str(t) == canonical and parse_threshold(canonical) == t


@pytest.mark.parametrize(
    "text,needle,fix",
    [
        ("p95>300ms", "'p95>300ms' is not [ROUTE:]METRIC<LIMIT", "thresholds are upper limits"),
        ("p95=300ms", "is not [ROUTE:]METRIC<LIMIT", "e.g. --threshold 'POST /events:p99<300ms'"),
        ("p95<300", "the limit '300' in 'p95<300' has no unit", "p95<300ms"),
        ("p95<fast", "the limit 'fast' in 'p95<fast' is not a duration", "p95<1.5s"),
        ("p95<0.0001ms", "below a microsecond", "at least p95<1ms"),
        ("p100<1s", "'p100' in 'p100<1s' is not a metric", "write max<LIMIT"),
        ("p0<1s", "'p0' in 'p0<1s' is not a metric", "above 0 and below 100"),
        ("latency<1s", "'latency' in 'latency<1s' is not a metric", "error_rate, server_error_rate, throttle_rate"),
        ("error_rate<5", "the limit '5' in 'error_rate<5' is ambiguous", "(5%) or a fraction (0.05)"),
        ("error_rate<150%", "is outside 0..100%", "error_rate<1%"),
        ("error_rate<lots", "is not a fraction", "1% or 0.01"),
        ("error_rate<0%", "can never hold", "error_rate<=0%"),
        ("FETCH /events:p95<1s", "'FETCH /events' in 'FETCH /events:p95<1s' is not a route key", "METHOD /path"),
        (":p95<1s", "has an empty route", "drop the ':'"),
    ],
)
def test_bad_thresholds_name_the_value_and_the_fix(text: str, needle: str, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_threshold(text)
    assert needle in err.value.message and err.value.value == text
    assert fix in (err.value.hint or "")


def test_routes_are_the_descriptions() -> None:
    routes = ("GET /events", "POST /events")
    check_threshold_routes([parse_threshold("POST /events:p95<1s"), parse_threshold("p99<2s")], routes)
    with pytest.raises(ConfigError, match="'PUT /events' is not a route of the stack description") as err:
        check_threshold_routes([parse_threshold("PUT /events:p95<1s")], routes)
    assert "GET /events, POST /events" in (err.value.hint or "")


# ---------------------------------------------------------------------------------------------
# judging a run
def hist(values_us: list[int]) -> Any:
    h = histograms.new_histogram()
    for v in values_us:
        h.record_value(v)
    return h


# 100 latencies 0.01, 0.02, ... 1.00 ms: below 2048 us every microsecond is its own HDR bucket,
# so each percentile is exact: p50 = 0.50 ms (rank 50), p95 = 0.95 ms, p99 = 0.99, max = 1.00.
HUNDRED = hist([10 * k for k in range(1, 101)])


@pytest.mark.parametrize(
    "text,actual,passed",
    [
        ("p50<0.5ms", 0.5, False),  # strict: the limit itself does not pass
        ("p50<=0.5ms", 0.5, True),
        ("p95<0.96ms", 0.95, True),
        ("p99<0.99ms", 0.99, False),
        ("p99.9<2ms", 1.0, True),  # rank int(99.9 + 0.5) = 100: the largest
        ("max<1ms", 1.0, False),
        ("max<=1ms", 1.0, True),
        ("p1<0.011ms", 0.01, True),  # rank max(1, int(1 + 0.5)) = 1
    ],
)
def test_latency_thresholds_on_a_hand_worked_histogram(text: str, actual: float, passed: bool) -> None:
    (entry,) = evaluate([parse_threshold(text)], Observed(hdr={"GET /events": HUNDRED}))
    assert entry["actual"] == pytest.approx(actual) and entry["passed"] is passed
    assert entry["unit"] == "ms" and entry["route"] == "all" and entry["name"] == str(parse_threshold(text))


def test_all_merges_the_routes_and_a_route_is_its_own() -> None:
    fast, slow = hist([100] * 90), hist([1000] * 10)  # 0.1 ms x 90 on one route, 1 ms x 10 on another
    observed = Observed(hdr={"GET /events": fast, "POST /events": slow})
    out = {e["name"]: e for e in evaluate(parse_all(["p90<=0.1ms", "p91<=0.1ms", "POST /events:p50<1ms"]), observed)}
    assert out["p90<=0.1ms"]["passed"] and not out["p91<=0.1ms"]["passed"]
    assert out["p91<=0.1ms"]["actual"] == 1.0 and out["POST /events:p50<1ms"]["passed"] is False


def parse_all(texts: list[str]) -> list[Threshold]:
    return [parse_threshold(t) for t in texts]


def test_rate_thresholds_on_counts() -> None:
    observed = Observed(
        counts={
            "POST /events": Counts(requests=200, error_rate=4, server_error_rate=2, throttle_rate=2),
            "GET /events": Counts(requests=100, error_rate=0),
        }
    )
    out = {e["name"]: e for e in evaluate(parse_all(["error_rate<=2%", "POST /events:error_rate<2%"]), observed)}
    assert out["error_rate<=2%"]["actual"] == round(4 / 300, 4) and out["error_rate<=2%"]["passed"]
    assert out["POST /events:error_rate<2%"]["actual"] == 0.02 and not out["POST /events:error_rate<2%"]["passed"]
    (t,) = evaluate(parse_all(["throttle_rate<1%"]), observed)
    assert t["actual"] == round(2 / 300, 4) and t["passed"] and t["unit"] == "fraction"


def test_nothing_to_judge_does_not_hold() -> None:
    out = evaluate(parse_all(["error_rate<1%", "GET /x:p95<1s", "p99<1s"]), Observed(hdr={}))
    assert [e["passed"] for e in out] == [False, False, False]
    assert out[0]["reason"] == "no requests: the run did not send any request"
    assert "did not complete any request on GET /x" in out[1]["reason"]
    missing = evaluate(parse_all(["p99<1s"]), Observed(hdr=None, hdr_problem="histograms.json does not exist"))
    assert missing[0]["reason"] == "histograms.json does not exist" and missing[0]["actual"] is None


def test_entries_read_with_units_old_entries_as_they_are() -> None:
    (e,) = evaluate(parse_all(["p95<0.9ms"]), Observed(hdr={"r": HUNDRED}))
    assert describe_entry(e) == "0.9 ms (limit 0.9 ms)"
    assert describe_entry({"name": "error rate", "limit": 0.05, "actual": 0.1, "passed": False}) == "0.1 (limit 0.05)"
    rate = {"unit": "fraction", "limit": 0.01, "actual": 0.025, "reason": None}
    assert describe_entry(rate) == "2.5% (limit 1%)"


# ---------------------------------------------------------------------------------------------
# the doom rule, worked by hand
def test_rank_is_hdrs() -> None:
    assert [rank(240, 90), rank(200, 95), rank(199, 95), rank(10, 99.9), rank(1, 50)] == [216, 190, 189, 10, 1]
    for n in (1, 7, 240, 1000):
        for p in (50.0, 90.0, 99.0, 99.9):
            h = hist(list(range(1, n + 1)))  # the k-th smallest is k us: the rank is the value
            assert h.get_value_at_percentile(p) == rank(n, p)


def test_a_percentile_is_doomed_once_too_many_requests_broke_it_for_the_whole_run() -> None:
    # 240 requests at most (4/s for 60 s); p90 lets 240 - rank(240, 90) = 24 of them be slow.
    t = parse_threshold("POST /events:p90<200ms")
    for slow, fast in ((24, 0), (24, 100), (25, 0), (25, 200)):
        h = hist([300_000] * slow + [20_000] * fast)
        why = doomed(t, counts=None, hdr=h, bound=240)
        assert (why is not None) is (slow > 24), (slow, fast)
    why = doomed(t, counts=None, hdr=hist([300_000] * 25), bound=240)
    assert why == "25 requests already at or above 200ms, more than the 24 of at most 240 it allows"
    # The limit itself (2 ms: exact in HDR below 2048 us): strict '<' breaks at it, '<=' does not.
    at_limit = hist([2_000] * 30)
    assert doomed(parse_threshold("p90<2ms"), counts=None, hdr=at_limit, bound=240) is not None
    assert doomed(parse_threshold("p90<=2ms"), counts=None, hdr=at_limit, bound=240) is None
    # No bound (closed model): a percentile is never judged early.
    assert doomed(t, counts=None, hdr=hist([300_000] * 200), bound=None) is None


def test_a_bound_below_what_was_sent_is_raised_to_it() -> None:
    # 100 sent, 11 slow, p90: with 100 in all 10 may be slow -> doomed even if the bound says 50.
    h = hist([300_000] * 11 + [1_000] * 89)
    assert doomed(parse_threshold("p90<200ms"), counts=None, hdr=h, bound=50) is not None
    assert doomed(parse_threshold("p90<200ms"), counts=None, hdr=hist([300_000] * 10 + [1_000] * 90), bound=50) is None


def test_a_rate_is_doomed_once_its_count_breaks_the_limit_over_the_whole_run() -> None:
    # 300 requests at most; error_rate<1% fails at 3 (3/300 = 1% is not below 1%), <=1% at 4.
    strict, inclusive = parse_threshold("error_rate<1%"), parse_threshold("error_rate<=1%")
    assert doomed(strict, counts=Counts(requests=10, error_rate=2), hdr=None, bound=300) is None
    assert doomed(strict, counts=Counts(requests=10, error_rate=3), hdr=None, bound=300) == (
        "3 of at most 300 requests already count (1.00% even if every other planned request passes)"
    )
    assert doomed(inclusive, counts=Counts(requests=10, error_rate=3), hdr=None, bound=300) is None
    assert doomed(inclusive, counts=Counts(requests=10, error_rate=4), hdr=None, bound=300) is not None
    assert doomed(strict, counts=Counts(requests=10, error_rate=50), hdr=None, bound=None) is None


def test_max_needs_no_bound() -> None:
    t = parse_threshold("max<1s")
    assert doomed(t, counts=None, hdr=hist([999_000] * 50), bound=None) is None
    assert doomed(t, counts=None, hdr=hist([1_000] * 50 + [1_000_001]), bound=None) is not None


def test_the_bound_is_the_planned_arrivals() -> None:
    assert request_bound(RunOptions(rate=4, duration_s=60)) == 240
    assert request_bound(RunOptions(rate=2.5, duration_s=3)) == 8  # 7.5 arrivals: the 8th starts at 2.8 s
    assert request_bound(RunOptions(shape="step", rate=None, steps=(1, 2), step_duration_s=10)) == 30
    assert request_bound(RunOptions(rate=10, duration_s=1, workers=3)) == 12  # each of 3 emits ceil(10/3)
    assert request_bound(RunOptions(shape="ramp", rate=None, users=5)) is None
    assert planned_until(RunOptions(rate=4, duration_s=60), 10) == 40
    assert planned_until(RunOptions(rate=4, duration_s=60), 100) == 240


# ---------------------------------------------------------------------------------------------
# the watcher on progress.json documents
def progress(routes: dict[str, dict[str, Any]], *, elapsed: float = 10.0) -> dict[str, Any]:
    return {
        "t": 1_800_000_000.0,
        "elapsed_s": elapsed,
        "requests": sum(r["requests"] for r in routes.values()),
        "routes": routes,
    }


def route(requests: int, *, status: dict[str, int] | None = None, values_us: list[int] | None = None) -> dict[str, Any]:
    return {
        "requests": requests,
        "status": status or {"2xx": requests},
        "hdr": histograms.encode(hist(values_us)) if values_us else None,
    }


def test_the_watcher_stops_on_the_first_doomed_threshold() -> None:
    opts = RunOptions(rate=4, duration_s=60)
    w = AbortWatcher(parse_all(["POST /events:p90<200ms", "server_error_rate<=1%"]), opts)
    assert w.skipped == {}
    assert w.check({}) is None
    calm = progress({"POST /events": route(30, values_us=[300_000] * 24 + [1_000] * 6)})
    assert w.check(calm) is None
    slow = progress({"POST /events": route(30, values_us=[300_000] * 25 + [1_000] * 5)}, elapsed=8.2)
    abort = w.check(slow)
    assert abort is not None and abort.threshold == "POST /events:p90<200ms" and abort.elapsed_s == 8.2
    run = abort.to_run("2027-01-15T08:00:00.000+00:00")
    assert run == {
        "threshold": "POST /events:p90<200ms",
        "reason": "25 requests already at or above 200ms, more than the 24 of at most 240 it allows",
        "elapsed_s": 8.2,
        "at": "2027-01-15T08:00:00.000+00:00",
    }
    # 5xx and requests with no answer count for the server-error rate: 3 of at most 240 > 1%.
    errors = progress({"GET /events": route(20, status={"2xx": 17, "5xx": 2, "none": 1})})
    assert w.check(errors).threshold == "server_error_rate<=1%"  # type: ignore[union-attr]


def test_the_watcher_leaves_what_it_cannot_judge_to_the_end() -> None:
    ramp = AbortWatcher(parse_all(["p95<1s", "max<2s"]), RunOptions(shape="ramp", rate=None, users=3))
    assert set(ramp.skipped) == {"p95<1s"} and "--shape ramp" in ramp.skipped["p95<1s"]
    assert ramp.check(progress({"GET /events": route(5, values_us=[3_000_000] * 5)})).threshold == "max<2s"  # type: ignore[union-attr]
    collisions = AbortWatcher(parse_all(["error_rate<1%"]), RunOptions(rate=4, duration_s=60, collisions=0.1))
    assert "forced collisions" in collisions.skipped["error_rate<1%"]
    assert collisions.check(progress({"POST /events": route(50, status={"4xx": 50})})) is None
    chaos = AbortWatcher(parse_all(["server_error_rate<1%"]), RunOptions(rate=4, duration_s=60), chaos=True)
    assert "--chaos" in chaos.skipped["server_error_rate<1%"]


def test_a_workload_sending_several_requests_per_arrival_drops_the_bound() -> None:
    w = AbortWatcher(parse_all(["p90<200ms"]), RunOptions(rate=4, duration_s=60))
    # 10 s at 4/s is at most 48 arrivals (with 2 s of slack): 100 requests means more than one each.
    doc = progress({"GET /events": route(100, values_us=[300_000] * 100)}, elapsed=10.0)
    assert w.check(doc) is None and w.bound is None
    assert "more than one request per arrival" in w.notes[0] and "p90<200ms" in w.skipped


# ---------------------------------------------------------------------------------------------
# the run command's spellings
def test_deprecated_spellings_become_thresholds_with_a_note() -> None:
    notes: list[str] = []
    out = run_thresholds(
        ("p99<1s",),
        default=True,
        max_error_rate="5%",
        max_p95_ms=("POST /events=500", "all=800"),
        max_server_error_rate="0.02",
        deprecations=notes,
    )
    assert out == ("p99<1s", "POST /events:p95<=500ms", "p95<=800ms", "error_rate<=5%", "server_error_rate<=2%")
    assert notes[0] == "--max-p95-ms 'POST /events=500' is deprecated: write --threshold 'POST /events:p95<=500ms'"
    assert notes[-1] == "--max-server-error-rate 0.02 is deprecated: write --threshold 'server_error_rate<=2%'"


def test_the_default_server_error_threshold() -> None:
    kw: dict[str, Any] = {"max_error_rate": None, "max_p95_ms": (), "max_server_error_rate": None, "deprecations": []}
    assert run_thresholds((), default=True, **kw) == ("server_error_rate<=1%",)
    assert run_thresholds((), default=False, **kw) == ()
    assert run_thresholds(("server_error_rate<0.5%",), default=True, **kw) == ("server_error_rate<0.5%",)
    assert run_thresholds(("GET /events:server_error_rate<5%",), default=True, **kw) == (
        "GET /events:server_error_rate<5%",
        "server_error_rate<=1%",
    )
    notes: list[str] = []
    assert run_thresholds((), default=True, **{**kw, "max_server_error_rate": "off", "deprecations": notes}) == ()
    assert notes == ["--max-server-error-rate off is deprecated: write --no-default-threshold"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--threshold", "PUT /events:p95<1s"], "--threshold: 'PUT /events' is not a route of the stack description"),
        (["--threshold", "p95<300"], "--threshold: the limit '300' in 'p95<300' has no unit"),
        (["--max-error-rate", "5"], "--max-error-rate: the limit '5' in '5' is ambiguous"),
    ],
)
def test_run_refuses_bad_thresholds_before_anything_starts(tmp_path: Any, args: list[str], needle: str) -> None:
    out = CliRunner().invoke(cli, ["run", "--state-dir", str(tmp_path / "s"), "--out", str(tmp_path / "r"), *args])
    assert out.exit_code == 2 and needle in out.output and "fix:" in out.output, out.output
    assert not (tmp_path / "r").exists() and not (tmp_path / "s").exists()
