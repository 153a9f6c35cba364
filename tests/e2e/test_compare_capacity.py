"""``loadcheck compare`` and ``loadcheck capacity`` as a user runs them, on the real local stack.

One stack (burst bucket starting empty, so the table's provisioned 1 WCU/s is what a step run
meets) serves both tests: the capacity run must find the write knee at the provisioned rate,
and a run with the ``ddb-latency`` fault must break the p95 budget against a run without it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "loadcheck"]


def loadcheck(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, start_new_session=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    supervisor = pytest.importorskip("reference_stack.local.supervisor")
    state = tmp_path_factory.mktemp("stack") / "state"
    supervisor.start_detached(state, burst_start="empty")
    try:
        yield state
    finally:
        supervisor.stop_stack(state)


def _new_run(runs: Path, before: set[str]) -> Path:
    new = [d for d in runs.iterdir() if d.is_dir() and not d.is_symlink() and d.name not in before]
    assert len(new) == 1, new
    return new[0]


def _run(stack: Path, runs: Path, *extra: str, duration: str = "15s", rate: str = "1.5") -> Path:
    runs.mkdir(exist_ok=True)
    before = {d.name for d in runs.iterdir()}
    out = loadcheck(
        "run",
        "--state-dir",
        str(stack),
        "--out",
        str(runs),
        "--duration",
        duration,
        "--rate",
        rate,
        "--mix",
        "reads=1",
        "--no-checks",
        *extra,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return _new_run(runs, before)


def test_capacity_finds_the_write_knee_at_provisioned_capacity(stack: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    out = loadcheck(
        "capacity",
        "--state-dir",
        str(stack),
        "--out",
        str(runs),
        "--rates",
        "0.5,1,2,4",
        "--step-duration",
        "8s",
        "--mix",
        "writes=1",
        "--slo",
        "POST /events:p95<3s",
        "--target-rate",
        "20",
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = _new_run(runs, set())
    plan = json.loads((run / "capacity.json").read_text())
    (writes,) = [r for r in plan["routes"] if r["route"] == "POST /events"]
    # The table is provisioned with 1 WCU and each event costs 1 WCU: 1 write/s is sustainable, 2 is not
    # (throttled, or only served from the burst bucket the idle stack accumulated).
    assert writes["knee_rate"] in (0.5, 1.0), writes
    assert writes["first_failure"] and writes["first_failure"].startswith(("step 1 req/s", "step 2 req/s"))
    rec = plan["recommendation"]
    assert rec["needs"]["wcu_per_s"] == pytest.approx(20.0)
    assert rec["needs"]["recommended_wcu"] == 29  # ceil(20 / 0.7)
    assert any("provisioned with 1 WCU" in w for w in rec["warnings"])
    assert rec["cost"]["region"] == "us-east-1" and rec["cost"]["as_of"]
    html = (run / "report.html").read_text()
    assert "Capacity plan" in html and "POST /events: step results" in html
    assert "knee" in out.stdout and "monthly cost" in out.stdout


def test_compare_flags_the_ddb_latency_regression(stack: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    _run(stack, runs)  # warm-up: Lambda environments start cold
    # 20 s at 5 req/s: about 100 reads a side, enough for an interval on p95 (it needs 72); with
    # the 22 of a 15 s run at 1.5 req/s compare rightly says "not enough samples to judge"
    base = _run(stack, runs, duration="20s", rate="5")
    slow = _run(stack, runs, "--fault", "ddb-latency=800", duration="20s", rate="5")
    same = loadcheck("compare", str(base), str(base), "--min-requests", "10")
    assert same.returncode == 0, same.stdout + same.stderr
    out = loadcheck("compare", str(base), str(slow), "--min-requests", "10", "--max-p95-regression", "10%")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "BUDGET BROKEN" in out.stdout and "GET /events: p95" in out.stdout
    doc = json.loads(loadcheck("compare", str(base), str(slow), "--min-requests", "10", "--format", "json").stdout)
    (reads,) = [r for r in doc["routes"] if r["route"] == "GET /events"]
    p95 = next(m for m in reads["metrics"] if m["name"] == "p95")
    assert p95["direction"] == "worse" and p95["current"] - p95["baseline"] >= 700  # the fault adds 800 ms per call
    # runs of another mix are refused without --force
    other = _run(stack, runs, "--mix", "reads=1,search=1")
    refused = loadcheck("compare", str(base), str(other))
    assert refused.returncode == 2 and "--force" in refused.stderr
