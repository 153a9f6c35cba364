"""The plan applied: ``loadcheck capacity --write-description`` on the real local stack, then a
run at the target rate on the written description passes where the original one throttled.

Two stacks, one after the other (burst bucket starting empty, so a table's provisioned capacity is
what the load meets): the reference description (1 WCU) and the written copy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadcheck.core.description import load_description
from reports.data import route_summaries

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "loadcheck"]
TARGET = "4"  # writes/s of 1 WCU each: 4 WCU/s against the reference table's 1


def loadcheck(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, start_new_session=True)


def _run(state: Path, runs: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    runs.mkdir(exist_ok=True)
    before = {d.name for d in runs.iterdir()}
    out = loadcheck(
        "run", "--state-dir", str(state), "--out", str(runs), "--duration", "10s", "--rate", TARGET,
        "--mix", "writes=1", "--no-checks", *extra,
    )  # fmt: skip
    (new,) = [d for d in runs.iterdir() if d.is_dir() and not d.is_symlink() and d.name not in before]
    return out, new


def _throttled(run: Path) -> int:
    return sum(int(r.status.get("429", 0)) for r in route_summaries(run))


def test_the_written_description_holds_at_the_target_rate(tmp_path: Path) -> None:
    supervisor = pytest.importorskip("reference_stack.local.supervisor")
    planned = tmp_path / "planned" / "stack.json"
    runs = tmp_path / "runs"
    state = tmp_path / "state"
    supervisor.start_detached(state, burst_start="empty", load_corpus=False)
    try:
        cap = loadcheck(
            "capacity", "--state-dir", str(state), "--out", str(runs), "--rates", "1,2", "--step-duration", "5s",
            "--mix", "writes=1", "--target-rate", TARGET, "--write-description", str(planned),
        )  # fmt: skip
        assert cap.returncode == 0, cap.stdout[-3000:] + cap.stderr[-3000:]
        assert '+    "write_capacity": 6,' in cap.stdout  # ceil(4 / 0.7)
        _, original = _run(state, runs)
        assert _throttled(original) > 0, "the reference table (1 WCU) should throttle 4 writes/s"
    finally:
        supervisor.stop_stack(state)
    assert load_description(planned).table.write_capacity == 6
    state2 = tmp_path / "state2"
    supervisor.start_detached(state2, description=str(planned), burst_start="empty", load_corpus=False)
    try:
        out, applied = _run(state2, runs, "--description", str(planned))
    finally:
        supervisor.stop_stack(state2)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert _throttled(applied) == 0
    assert sum(r.requests for r in route_summaries(applied)) >= 30  # the load did run
    assert json.loads((applied / "run.json").read_text())["options"]["description"] == str(planned)
