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
