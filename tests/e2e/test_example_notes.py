"""examples/notes as a user runs it: its stack up from its description, its workload through
``loadcheck run --description ... --locustfile ...``, every route sent and all four checks passing,
with the notes' writes reconciled under the notes table's keys (``day``, ``at``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from loadcheck.core.description import load_description
from loadcheck.core.ledger import read_ledger
from loadcheck.core.rundir import read_results

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "notes"


def lc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadcheck", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=600,
        check=False,
        start_new_session=True,
    )


def test_the_example_workload_runs_on_the_example_stack(tmp_path: Path) -> None:
    stack = tmp_path / "notes"
    shutil.copytree(EXAMPLE, stack, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    description = stack / "terraform" / "stack.auto.tfvars.json"
    state = tmp_path / "state"
    up = lc("stack", "up", "--detach", "--description", str(description), "--state-dir", str(state), cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        out = tmp_path / "runs"
        res = lc(
            "run",
            "--description",
            str(description),
            "--locustfile",
            str(stack / "workload.py"),
            "--state-dir",
            str(state),
            "--out",
            str(out),
            "--duration",
            "6s",
            "--rate",
            "8",
            "--seed",
            "3",
            "--threshold",
            "GET /notes/{day}:p95<60s",
            cwd=tmp_path,
        )
    finally:
        lc("stack", "down", "--state-dir", str(state), cwd=tmp_path)
    dirs = [d for d in out.iterdir() if d.is_dir() and not d.is_symlink()] if out.exists() else []
    assert len(dirs) == 1, res.stdout + res.stderr
    run_dir = dirs[0]
    ledger = list(read_ledger(run_dir))
    statuses = Counter((r["route"], r["status"]) for r in ledger)
    assert {route for route, _ in statuses} == set(load_description(description).routes), statuses
    assert statuses[("POST /notes", 201)] > 0 and statuses[("GET /notes/{day}", 200)] > 0, statuses
    assert all(set(r["item_key"]) == {"day", "at"} for r in ledger if r.get("item_key"))
    doc = read_results(run_dir, required=True)
    assert doc is not None
    checks = {c["name"]: c for c in doc["checks"]}
    assert set(checks) == {"dynamodb_contents", "throttling", "access_logs", "security"}
    assert all(c["status"] == "pass" for c in checks.values()), {
        n: (c["status"], c["summary"]) for n, c in checks.items()
    }
    run = json.loads((run_dir / "run.json").read_text())
    assert "GET /notes/{day}:p95<60s" in {t["name"] for t in run["thresholds"]}
    assert res.returncode == 0, res.stdout + res.stderr
