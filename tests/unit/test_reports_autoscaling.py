"""DynamoDB auto scaling (target tracking) over a step load, against hand-worked examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadcheck.bench.synthetic_reports import write_run
from reports.autoscaling import TargetTracking, plan_autoscaling, simulate, step_demand
from reports.capacity import analyse_steps
from reports.plan import build_plan

CONFIG = TargetTracking(min_capacity=1, max_capacity=10, target=0.7)


def test_scale_out_after_two_breaching_minutes_hand_worked() -> None:
    # 2 min at 0.5 WCU/s, then 4 min at 4 WCU/s, on 1 WCU with no burst credit.
    demand = step_demand([0.5, 4.0, 4.0], 120, 1.0)
    sim = simulate(demand, CONFIG, burst_s=0)
    # minutes 1-2: 50 % < 70 %, nothing throttled.
    assert sum(sim.throttled[:120]) == 0
    # minutes 3-4 breach (100 % of 1 WCU): at 240 s capacity -> ceil(1 x 1.0 / 0.7) = 2;
    # minutes 5-6 breach again (2 WCU all used): at 360 s -> ceil(2 x 1.0 / 0.7) = 3.
    assert sim.events == [(240, "out", 2.0), (360, "out", 3.0)]
    # throttled: 3/s for 120 s at 1 WCU, then 2/s for 120 s at 2 WCU = 360 + 240
    assert sim.throttled_units == pytest.approx(600.0)
    assert sim.capacity[239] == 1 and sim.capacity[240] == 2 and sim.capacity[359] == 2


def test_burst_credit_absorbs_the_first_seconds() -> None:
    # the same load, with the 300 s bucket: 120 s at 0.5 of 1 WCU leave 60 units of credit,
    # so the first 20 s of the 4 WCU/s step are served (1 + 3 from the bucket each second)
    sim = simulate(step_demand([0.5, 4.0, 4.0], 120, 1.0), CONFIG, burst_s=300, burst_start=0.0)
    assert sum(sim.throttled[120:140]) == pytest.approx(0.0)
    assert sim.throttled[140] == pytest.approx(3.0)
    assert sim.throttled_units == pytest.approx(600.0 - 60.0)


def test_scale_in_after_fifteen_quiet_minutes_and_never_below_min() -> None:
    start = TargetTracking(min_capacity=1, max_capacity=10, target=0.7)
    demand = step_demand([4.0, 0.1], 600, 1.0) + [0.1] * 1200
    sim = simulate(demand, start, burst_s=0)
    outs = [e for e in sim.events if e[1] == "out"]
    ins = [e for e in sim.events if e[1] == "in"]
    assert outs and ins
    # quiet from 600 s: 0.1 of 6 WCU is far below 50 %; the 15th quiet minute ends at 1500 s
    assert ins[0][0] == 1500 and ins[0][2] >= start.min_capacity


def test_a_load_shorter_than_two_minutes_never_scales() -> None:
    sim = simulate(step_demand([1, 2, 4], 10, 1.0), CONFIG, burst_s=0)
    assert sim.events == [] and sim.throttled_units == pytest.approx(40.0)  # (2 - 1) x 10 s + (4 - 1) x 10 s on 1 WCU
    plan = plan_autoscaling(
        steps=[1, 2, 4],
        step_s=10,
        write_units_per_request=1.0,
        wcu_per_write=1.0,
        wcu_per_s_at_target=4.0,
        current_wcu=1,
        recommended_wcu=6,
        wcu_hour_price=0.00065,
        hours=730,
    )
    assert plan["config"] == {"min": 1, "max": 12, "target": 0.7}
    assert "would not have acted" in str(plan["note"])
    assert plan["settled_wcu"] == 6 and plan["monthly_writes"] == pytest.approx(6 * 0.00065 * 730)


def test_plan_holds_the_auto_scaling_option(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", steps=[0.5, 2, 4], step_duration_s=10, mix={"writes": 1}, burst_s=0, checks=None)
    plan = build_plan(
        run_dir=run, knees=analyse_steps(run, provisioned_wcu=1.0), target_rate=4, mix={"writes": 1}, region="us-east-1"
    )
    auto = plan["autoscaling"]
    assert auto is not None and auto["steps"] == [0.5, 2.0, 4.0] and auto["throttled_units"] > 0
    # writes only, 1 WCU each: the throttled writes are the throttled units
    assert auto["throttled_writes"] == pytest.approx(auto["throttled_units"], abs=0.1)


def test_throttled_writes_count_writes_not_requests() -> None:
    # steps of all requests, 80 % writes of 2 WCU each: 1.6 WCU per request; 3.2 units throttled = 1.6 writes
    plan = plan_autoscaling(
        steps=[4.0],
        step_s=1,
        write_units_per_request=1.6,
        wcu_per_write=2.0,
        wcu_per_s_at_target=6.4,
        current_wcu=1,
        recommended_wcu=10,
        wcu_hour_price=0.00065,
        hours=730,
    )
    # 4 req/s x 1.6 = 6.4 units offered in 1 s; 1 WCU admits 1 (no credit): 5.4 units = 2.7 writes
    assert plan["throttled_units"] == pytest.approx(5.4) and plan["throttled_writes"] == pytest.approx(2.7)
