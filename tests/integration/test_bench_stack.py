"""The full-stack POST /events benchmark: every request a 201, CPU attributed to each part."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_post_events_bench_measures_and_splits_cpu() -> None:
    from loadcheck.bench.stack import run_post_events_bench

    r = run_post_events_bench(connections=2, duration_s=1.5, warmup_s=1.0)
    assert r["requests"] > 0 and r["errors"] == 0
    assert set(r["statuses"]) == {"201"}, r["statuses"]  # PAY_PER_REQUEST: nothing throttled
    assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
    parts = set(r["cpu_s"])
    assert {"gateway", "lambda service + environments", "aws endpoint (moto + governor)"} <= parts
    assert r["cpu_s"]["lambda service + environments"] > 0 and r["cpu_s"]["aws endpoint (moto + governor)"] > 0


def test_bench_group_lists_every_benchmark() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "loadcheck", "bench", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("aws", "gateway", "load", "checks"):
        assert f"  {name} " in out


def test_load_bench_compares_the_same_get_and_reads_the_ledger_back(tmp_path) -> None:
    from loadcheck.bench.load import bench_locust

    r = bench_locust(seconds=2, soak_s=3, users=2, workdir=tmp_path, rounds=1)
    assert r["ledger_complete"] is True  # every signed request is in the ledger
    assert r["unsigned_rps"] > 0 and r["signed_ledger_rps"] > 0 and r["eventlog_reader_rps"] > 0
    assert r["throughput_ratio"] == round(r["signed_ledger_rps"] / r["unsigned_rps"], 3)
    assert r["soak_requests"] > 0 and len(r["rss_by_tenth_mb"]) == 10


def test_soak_summary_reports_each_tenth_of_the_run() -> None:
    from loadcheck.bench.load import soak_summary

    rss = [(i * 0.25, (50 + i // 10) * 2**20) for i in range(100)]  # +1 MB every tenth
    s = soak_summary(rss, 1000)
    assert s["rss_by_tenth_mb"] == [50.0 + k for k in range(10)]
    assert s["rss_growth_mb"] == 8.0 and s["rss_max_mb"] == 59.0


def test_soak_paces_requests_and_reports_rss_of_each_service() -> None:
    from loadcheck.bench.stack import run_soak

    r = run_soak(duration_s=4.0, rate=20.0, connections=2, sample_s=0.5, first_s=1.5)
    assert r["errors"] == 0 and set(r["statuses"]) == {"201"}, r
    assert 0 < r["requests"] <= 80  # paced: never more than rate x duration
    assert {"gateway", "lambda", "aws", "search"} <= set(r["rss_ratio"])
    for name, ratio in r["rss_ratio"].items():
        assert ratio is not None and abs(ratio - r["rss_mb_end"][name] / r["rss_mb_first_minute"][name]) < 0.01
        assert r["met"][name] == (ratio <= r["goal_ratio"])
    assert r["samples"][0]["t_s"] < 1.5 <= r["samples"][-1]["t_s"]


def test_soak_refuses_a_run_no_longer_than_its_first_minute() -> None:
    from loadcheck.bench.stack import run_soak
    from loadcheck.core.errors import ConfigError

    with pytest.raises(ConfigError, match="bad soak options"):
        run_soak(duration_s=30.0, rate=200.0)
