"""compare does not cry wolf: sampling noise, forced collisions and differing options.

Runs are synthetic (tests/fixtures/compare_runs.py): seeded latencies from one distribution,
240 requests per route, written by the real ledger, histogram and results writers.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from loadcheck.cli import cli
from loadcheck.core import histograms
from reports.baseline import save_baseline
from reports.compare import Budgets, compare_runs, render_comparison
from tests.fixtures.compare_runs import write_clean_run


def test_identical_clean_runs_hold_the_default_budgets_over_20_seeds(tmp_path: Path) -> None:
    rps_labels = []
    for seed in range(20):
        base = write_clean_run(tmp_path / f"base-{seed}", seed=1000 + seed, checked=False)
        cur = write_clean_run(tmp_path / f"cur-{seed}", seed=2000 + seed, checked=False)
        cmp = compare_runs(base, cur)
        assert cmp.ok, (seed, cmp.broken)
        assert not cmp.options_differ
        for rc in cmp.routes:
            assert 200 <= rc.current_requests <= 290  # realistic counts, drawn by the random mix
            assert rc.metric("p95").judged, rc.notes
            rps_labels.append(rc.metric("rps").direction)
    # the mix's noise moves a route's rps by 10-20 % between such runs; it is not better or worse
    assert rps_labels.count("same") >= len(rps_labels) - 1, rps_labels


def test_a_150ms_regression_on_one_route_is_flagged_with_its_interval(tmp_path: Path) -> None:
    base = write_clean_run(tmp_path / "base", seed=11)
    slow = write_clean_run(tmp_path / "slow", seed=12, shift_ms={"POST /events": 150.0})
    cmp = compare_runs(base, slow)
    (broken,) = cmp.broken
    assert broken.startswith("POST /events: p95") and "with 95% confidence" in broken and "budget 10%" in broken
    p95 = next(r for r in cmp.routes if r.route == "POST /events").metric("p95")
    low, high = p95.change_interval or [None, None]
    assert p95.significant and p95.direction == "worse"
    assert low is not None and high is not None and 1.0 < low <= p95.change <= high  # well above the budget
    others = [r.metric("p95") for r in cmp.routes if r.route != "POST /events"]
    assert all(m.direction != "worse" for m in others)
    table = render_comparison(cmp, "table")
    assert "95% interval" in table and f"[{100 * low:+.1f}%, {100 * high:+.1f}%]" in table


def test_small_samples_are_not_enough_to_judge(tmp_path: Path) -> None:
    base = write_clean_run(tmp_path / "base", seed=21, requests_per_route=25)
    slow = write_clean_run(tmp_path / "slow", seed=22, requests_per_route=25, shift_ms={"POST /events": 150.0})
    cmp = compare_runs(base, slow)
    assert cmp.ok  # a p95 of 25 samples cannot be bounded from above
    p95 = next(r for r in cmp.routes if r.route == "POST /events").metric("p95")
    assert not p95.judged and p95.direction == "n/a"
    assert "not enough samples to judge" in render_comparison(cmp, "table")
    # with enough samples on both sides the same shift is a broken budget (the test above)


def test_percentile_interval_brackets_the_sample_and_needs_enough_samples() -> None:
    rng = random.Random(5)
    h = histograms.new_histogram()
    values = sorted(rng.uniform(10.0, 30.0) for _ in range(1000))
    for v in values:
        h.record_value(histograms.to_us(v))
    low, high = histograms.percentile_interval(h, 95.0)
    assert low is not None and high is not None
    # ranks 937..963 of 1000 (binomial 2.5 % and 97.5 % of Binomial(1000, 0.95), plus one)
    assert low == pytest.approx(values[936 - 1], rel=2e-3) and high == pytest.approx(values[963 - 1], rel=2e-3)
    assert histograms.min_samples_for(95.0) == 72 and histograms.min_samples_for(99.0) == 368
    small = histograms.new_histogram()
    for v in values[:71]:
        small.record_value(histograms.to_us(v))
    assert histograms.percentile_interval(small, 95.0)[1] is None


def test_forced_collision_409s_are_not_errors_and_the_options_differ(tmp_path: Path) -> None:
    base = write_clean_run(tmp_path / "base", seed=31)
    colliding = write_clean_run(tmp_path / "colliding", seed=32, collisions=0.1)
    writes_409 = json.loads((colliding / "results.json").read_text())["routes"]["POST /events"]["status"]["409"]
    assert writes_409 >= 10  # results.json counts them as failures, as it counts every 4xx
    cmp = compare_runs(base, colliding)
    assert cmp.ok, cmp.broken
    writes = next(r for r in cmp.routes if r.route == "POST /events")
    assert writes.metric("error_rate").current == 0.0 and writes.current_forced_409 == writes_409
    assert cmp.options_differ == [{"option": "collisions", "baseline": 0.0, "current": 0.1, "blocking": False}]
    table = render_comparison(cmp, "table")
    assert "WARNING: options differ: collisions: 0.0 vs 0.1" in table
    assert "error rates leave out the 409s of forced collisions (--collisions 0.1) in the current run" in table
    assert f"{writes_409} on POST /events (counted from the ledger)" in table
    doc = json.loads(render_comparison(cmp, "json"))
    assert doc["options_differ"][0]["option"] == "collisions" and doc["notes"]
    (doc_writes,) = [r for r in doc["routes"] if r["route"] == "POST /events"]
    assert doc_writes["current_forced_409"] == writes_409
    # a 409 that was not a forced collision stays an error
    other = write_clean_run(tmp_path / "other", seed=32, collisions=0.0)
    assert next(r for r in compare_runs(base, other).routes if r.route == "POST /events").current_forced_409 == 0


def test_forced_collisions_survive_a_saved_baseline_and_a_missing_ledger(tmp_path: Path) -> None:
    colliding = write_clean_run(tmp_path / "colliding", seed=41, collisions=0.1)
    n = json.loads((colliding / "results.json").read_text())["routes"]["POST /events"]["status"]["409"]
    saved = save_baseline(colliding, name="with-collisions", directory=tmp_path / "baselines")
    assert json.loads((saved / "baseline.json").read_text())["forced_collision_409s"] == {"POST /events": n}
    cmp = compare_runs(saved, colliding)
    assert cmp.ok and not cmp.options_differ
    assert any("as counted when the baseline was saved" in note for note in cmp.notes)
    shutil.rmtree(colliding / "ledger")
    cmp = compare_runs(saved, colliding)
    assert cmp.ok and any("every 409 taken as a forced collision" in note for note in cmp.notes)


def test_rps_follows_the_offered_rate_and_is_not_labelled_better(tmp_path: Path) -> None:
    base = write_clean_run(tmp_path / "base", seed=51, rate=16.0)
    faster = write_clean_run(tmp_path / "faster", seed=52, rate=32.0)
    cmp = compare_runs(base, faster)
    assert [d["option"] for d in cmp.options_differ] == ["rate", "duration_s"]
    for rc in cmp.routes:
        rps = rc.metric("rps")
        assert rps.change is not None and rps.change > 0.5 and rps.direction == "offered", rc.notes
    assert "~ with the offered load" in render_comparison(cmp, "table")
    # a run that served half of what was offered is worse, relative to the offered rate
    half = write_clean_run(tmp_path / "half", seed=53, rate=16.0, options={"rate": 32.0})
    dropped = compare_runs(base, half)
    assert all(rc.metric("rps").direction == "worse" for rc in dropped.routes)


def test_cli_json_carries_the_options_differ_field(tmp_path: Path) -> None:
    base = write_clean_run(tmp_path / "base", seed=61)
    faulty = write_clean_run(tmp_path / "faulty", seed=62, options={"faults": {"ddb-latency": 150}})
    out = CliRunner().invoke(cli, ["compare", str(base), str(faulty), "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["options_differ"] == [
        {"option": "faults", "baseline": {}, "current": {"ddb-latency": 150}, "blocking": False}
    ]
    assert Budgets().confidence == doc["budgets"]["confidence"] == 0.95


def test_cli_confidence_option_and_its_refusal(tmp_path: Path) -> None:
    base = write_clean_run(tmp_path / "base", seed=71, checked=False)
    slow = write_clean_run(tmp_path / "slow", seed=72, checked=False, shift_ms={"POST /events": 150.0})
    out = CliRunner().invoke(cli, ["compare", str(base), str(slow), "--confidence", "99%"])
    assert out.exit_code == 3 and "with 99% confidence" in out.output and "99% interval" in out.output
    bad = CliRunner().invoke(cli, ["compare", str(base), str(slow), "--confidence", "100%"])
    assert bad.exit_code == 2 and "--confidence" in bad.output and "95%" in bad.output
