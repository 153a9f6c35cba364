"""Capacity planner math: units by DynamoDB's rules, Scan cost, hot keys, costs, knees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from loadcheck.bench.synthetic_reports import write_run
from loadcheck.cli import cli
from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError
from reports.capacity import (
    Profile,
    analyse_steps,
    full_scan_rcu,
    hot_key_warnings,
    needs,
    parse_slo,
    query_page_rcu,
    route_rates,
    scan_page_rcu,
    workload_profile,
)
from reports.costs import load_prices, monthly_costs
from reports.data import burst_start_level, simulate_burst
from reports.plan import build_plan

# What the reference workload's kinds send (as measured from a run's ledger).
KIND_ROUTES = {
    "writes": {"POST /events": 1.0},
    "reads": {"GET /events": 1.0},
    "search": {"GET /search": 0.8, "POST /search": 0.2},
}


def _profile(item_bytes: float = 100.0, wcu: float = 1.0, scan_share: float = 0.0, limit: int = 25) -> Profile:
    return Profile(
        write_item_bytes=item_bytes,
        write_wcu=wcu,
        read_limit=limit,
        scan_share=scan_share,
        dates_written=1,
        source="test",
        kind_routes=KIND_ROUTES,
        write_routes=("POST /events",),
        read_routes=("GET /events",),
    )


def test_query_rounds_the_page_once() -> None:
    # docs/aws-behaviour.md §7.2: 10 items totalling 40.8 KB -> 44 KB -> 11 units, eventually consistent = 5.5
    assert query_page_rcu(10, 40.8 * 1024 / 10) == 5.5
    assert query_page_rcu(10, 40.8 * 1024 / 10, consistent=True) == 11.0
    # 1500 x 64 B = 96,000 B -> 24 units of 4 KB (not 1500 x 0.5)
    assert query_page_rcu(1500, 64, consistent=True) == 24.0
    # minimum 0.5 RCU even when the page is empty
    assert query_page_rcu(0, 100) == 0.5


def test_scan_costs_items_evaluated_in_1mb_pages() -> None:
    assert scan_page_rcu(25, 200) == query_page_rcu(25, 200)
    # a page never reads more than 1 MB: 10,000 items of 1 KB evaluate only 1 MB -> 256 units -> 128 RCU
    assert scan_page_rcu(10_000, 1024) == 128.0
    rcu, pages = full_scan_rcu(1_000_000, 200)
    assert pages == 191  # 200 MB / 1 MB, rounded up
    assert rcu == pytest.approx(48_829 / 2)  # ceil(200,000,000 / 4096) x 0.5


def test_wcu_from_ledger_item_sizes(tmp_path: Path) -> None:
    small = workload_profile(
        write_run(tmp_path / "s", checks=None, seconds=5, rate=5, mix={"writes": 1}, payload_bytes=40),
        load_description(),
    )
    big = workload_profile(
        write_run(tmp_path / "b", checks=None, seconds=5, rate=5, mix={"writes": 1}, payload_bytes=1500),
        load_description(),
    )
    assert small.write_wcu == 1 and big.write_wcu == 2  # 1 KB units, rounded up per item
    assert big.write_item_bytes > 1500


def test_needs_and_mix_split() -> None:
    rates = route_rates(100, {"writes": 8, "reads": 1, "search": 1}, KIND_ROUTES)
    assert rates == pytest.approx({"POST /events": 80, "GET /events": 10, "GET /search": 8, "POST /search": 2})
    n = needs(
        _profile(wcu=2, scan_share=0.5, item_bytes=1000), target_rate=100, mix={"writes": 8, "reads": 1, "search": 1}
    )
    assert n.wcu_per_s == 160
    # half Query pages, half Scan pages of 25 x 1000 B = 25,000 B -> 7 units -> 3.5 RCU each
    assert n.rcu_per_s == pytest.approx(10 * 3.5)
    assert n.recommended_wcu == 229  # ceil(160 / 0.7)
    assert any("Scan" in note for note in n.notes)


def test_hot_key_warning_above_1000_wcu_per_key() -> None:
    below = needs(_profile(), target_rate=1000, mix={"writes": 1})
    assert not [w for w in hot_key_warnings(below) if w.startswith("hot key")]
    above = needs(_profile(), target_rate=1200, mix={"writes": 1})
    warnings = hot_key_warnings(above)
    assert any(w.startswith("hot key") and "1,200 WCU/s" in w and "1,000" in w for w in warnings)
    reads = needs(_profile(item_bytes=4096, limit=25), target_rate=1000, mix={"reads": 1})
    assert any("RCU/s of Queries on one `date` key" in w for w in hot_key_warnings(reads))


def test_cost_table_arithmetic() -> None:
    prices = load_prices(None, "us-east-1")
    cost = monthly_costs(
        prices=prices,
        wcu=10,
        rcu=5,
        wcu_per_s=7,
        rcu_per_s=3,
        requests_per_s=10,
        lambda_invocations_per_s={"events": 10},
        lambda_seconds={"events": 0.1},
        lambda_memory_mb={"events": 256},
    )
    rows = {r["item"].split(" (")[0]: r for r in cost["rows"]}
    assert rows["DynamoDB writes"]["provisioned"] == pytest.approx(10 * 0.00065 * 730)
    assert rows["DynamoDB writes"]["on_demand"] == pytest.approx(7 * 730 * 3600 / 1e6 * 0.625)
    assert rows["DynamoDB reads"]["provisioned"] == pytest.approx(5 * 0.00013 * 730)
    n = 10 * 730 * 3600
    # 256 MB = 0.25 GB for 0.1 s per invocation at the Arm GB-second price (the stack's functions are arm64)
    assert rows["Lambda"]["provisioned"] == pytest.approx(n / 1e6 * 0.20 + n * 0.1 * 0.25 * 0.0000133334)
    assert rows["API Gateway HTTP API"]["on_demand"] == pytest.approx(n / 1e6 * 1.00)
    assert cost["region"] == "us-east-1" and cost["as_of"]


def test_unknown_region_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_prices(None, "ap-south-2")
    assert "ap-south-2" in str(err.value) and "--prices" in str(err.value)
    custom = tmp_path / "prices.json"
    doc = json.loads((Path(__file__).parents[2] / "reports" / "prices.json").read_text())
    doc["regions"]["ap-south-2"] = doc["regions"]["us-east-1"]
    custom.write_text(json.dumps(doc))
    assert load_prices(custom, "ap-south-2")["region"] == "ap-south-2"
    del doc["regions"]["ap-south-2"]["lambda"]["gb_second"]
    custom.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="gb_second"):
        load_prices(custom, "ap-south-2")


def test_knee_at_throttling(tmp_path: Path) -> None:
    # writes only, 1 WCU/s table with an empty bucket: 0.5 req/s fits, 2 req/s throttles
    run = write_run(tmp_path / "r", steps=[0.5, 2, 4], step_duration_s=20, mix={"writes": 1}, burst_s=0, checks=None)
    (knee,) = analyse_steps(run, provisioned_wcu=1.0)
    assert knee.route == "POST /events" and knee.knee_rate == 0.5
    assert "throttled" in knee.first_failure and knee.first_failure.startswith("step 2 req/s")


def test_steps_served_from_burst_are_not_sustainable(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", steps=[0.5, 1, 3], step_duration_s=10, mix={"writes": 1}, burst_s=300, checks=None)
    (knee,) = analyse_steps(run, provisioned_wcu=1.0)
    assert all(s.throttled == 0 for s in knee.steps)  # the bucket absorbed everything ...
    assert knee.knee_rate == 1 and "served from burst" in knee.first_failure  # ... but 3 WCU/s cannot last


def test_knee_at_latency_slo(tmp_path: Path) -> None:
    run = write_run(
        tmp_path / "r",
        steps=[1, 2, 4, 8],
        step_duration_s=10,
        mix={"search": 1, "reads": 1},
        slow_above_rate=2,
        checks=None,
    )
    knees = {k.route: k for k in analyse_steps(run, slos={"GET /search": 100.0})}
    assert knees["GET /search"].knee_rate == 2 and "breaks the SLO p95<=100ms" in knees["GET /search"].first_failure
    assert knees["GET /events"].knee_rate == 8  # no SLO given for it: latency does not count
    # The threshold syntax: any percentile, per route or for every route ('all').
    (slo, note) = parse_slo("GET /search:p99<100ms")
    assert note is None and str(slo) == "GET /search:p99<100ms"
    knees = {k.route: k for k in analyse_steps(run, slos=[slo])}
    assert knees["GET /search"].knee_rate == 2 and knees["GET /search"].slos == ["GET /search:p99<100ms"]
    assert knees["GET /search"].slo_p95_ms is None and knees["GET /events"].slos == []
    everywhere = {k.route: k for k in analyse_steps(run, slos=[parse_slo("max<100ms")[0]])}
    assert everywhere["GET /search"].knee_rate == 2 and everywhere["GET /events"].slos == ["max<100ms"]


def test_not_a_step_run(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", checks=None, seconds=5, rate=5)
    with pytest.raises(ConfigError, match="not a step run"):
        analyse_steps(run)


@pytest.mark.parametrize(
    "bad,needle",
    [
        ("POST /events=300", "is not [ROUTE:]METRIC<LIMIT"),
        ("POST /events=p99:3", "is not [ROUTE:]METRIC<LIMIT"),
        ("=p95:10", "is not [ROUTE:]METRIC<LIMIT"),
        ("POST /events=p95:-1", "is not [ROUTE:]METRIC<LIMIT"),
        ("POST /events:p95<300", "has no unit"),
        ("error_rate<1%", "is a rate; capacity SLOs are latencies"),
    ],
)
def test_parse_slo_refuses(bad: str, needle: str) -> None:
    with pytest.raises(ConfigError, match="--slo") as err:
        parse_slo(bad)
    assert needle in err.value.message and err.value.hint


def test_the_older_slo_spelling_is_read_with_a_note() -> None:
    slo, note = parse_slo("POST /events=p95:300")
    assert str(slo) == "POST /events:p95<=300ms"  # it always allowed the limit itself
    assert note == "--slo 'POST /events=p95:300' is deprecated: write --slo 'POST /events:p95<=300ms'"


def test_plan_and_cli_from_run(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", steps=[0.5, 2, 4], step_duration_s=10, mix={"writes": 1}, burst_s=0, checks=None)
    plan = build_plan(
        run_dir=run,
        knees=analyse_steps(run, provisioned_wcu=1.0),
        target_rate=2000,
        mix={"writes": 1},
        region="us-east-1",
        provisioned={"wcu": 1.0, "billing_mode": "PROVISIONED"},
    )
    assert plan["routes"][0]["knee_rate"] == 0.5
    assert any("hot key" in w for w in plan["recommendation"]["warnings"])
    assert any("would throttle" in w for w in plan["recommendation"]["warnings"])
    result = CliRunner().invoke(
        cli, ["capacity", "--from-run", str(run), "--slo", "POST /events=p95:500", "--target-rate", "10"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "capacity.json").read_text())
    assert saved["recommendation"]["target_rate"] == 10 and saved["routes"][0]["slo_p95_ms"] == 500
    html = (run / "report.html").read_text()
    assert "Capacity plan" in html and "knee: step 0.5 req/s" in html
    bad = CliRunner().invoke(cli, ["capacity", "--from-run", str(run), "--slo", "GET /search=p95:10"])
    assert bad.exit_code == 2 and "never sent" in bad.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--rates", "1,fast"], "--rates: 'fast' is not a rate"),
        (["--slo", "POST /events=300"], "--slo: 'POST /events=300' is not [ROUTE:]METRIC<LIMIT"),
        (["--mix", "writes=x"], "weight of writes is 'x'"),
    ],
)
def test_capacity_bad_options_name_the_value_and_fix(args: list[str], needle: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["capacity", "--out", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2 and needle in result.output and "fix:" in result.output
    assert not (tmp_path / "runs").exists()  # refused before any load was driven


# ------------------------------------------------------------------------------------------------
# Properties of the unit rules and the bucket simulation


@given(st.integers(0, 5000), st.floats(1, 400_000, allow_nan=False))
def test_query_page_cost_is_rounded_once_and_monotonic(items: int, item_bytes: float) -> None:
    cost = query_page_rcu(items, item_bytes)
    page = min(items * item_bytes, 1024 * 1024)
    assert cost == max(1, -(-page // 4096)) / 2
    assert query_page_rcu(items + 1, item_bytes) >= cost
    assert cost <= 128.0  # a page never reads more than 1 MB


@given(
    st.lists(st.floats(0, 50, allow_nan=False), max_size=120),
    st.floats(0.5, 20, allow_nan=False),
)
def test_simulated_bucket_stays_within_bounds_and_admits_burst_plus_rate(consumed: list[float], rate: float) -> None:
    burst = 300 * rate
    levels = simulate_burst(consumed, rate=rate, burst=burst)
    assert all(0.0 <= lv <= burst for lv in levels)
    # while the bucket never ran dry, n seconds from full took at most burst + rate*n - what is left
    # (refill that arrives while the bucket is full overflows: AWS keeps at most 300 s, §7.3)
    for n, lv in enumerate(levels, start=1):
        if lv == 0.0:
            break
        assert sum(consumed[:n]) <= burst + rate * n - lv + 1e-6 * burst


@given(st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=60), st.floats(0.5, 5, allow_nan=False))
def test_anchored_start_is_within_the_bucket(consumed: list[float], rate: float) -> None:
    throttled = [0.0] * (len(consumed) - 1) + [1.0]
    start = burst_start_level(consumed, throttled, rate=rate, burst=300 * rate)
    assert start is not None and 0.0 <= start <= 300 * rate
    assert burst_start_level(consumed, [0.0] * len(consumed), rate=rate, burst=300 * rate) is None
