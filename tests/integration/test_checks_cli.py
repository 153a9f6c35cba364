"""A real short `loadcheck run` on the local stack, then `loadcheck check` on its run directory,
twice: same verdicts (the checks only read), results.json rewritten, exit status per verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadcheck.core.rundir import read_results

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def lc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadcheck", *args], cwd=cwd, text=True, capture_output=True, timeout=400, check=False
    )


def test_run_then_check_again_and_again(local_stack: dict[str, Any], tmp_path: Path) -> None:
    sd = local_stack["state_dir"]
    run = lc(
        "run",
        "--duration",
        "8s",
        "--rate",
        "4",
        "--mix",
        "writes=3,reads=1",
        "--collisions",
        "0.2",
        "--state-dir",
        sd,
        "--out",
        str(tmp_path / "runs"),
        cwd=tmp_path,
    )
    run_dirs = [d for d in (tmp_path / "runs").iterdir() if not d.is_symlink()]  # runs/latest aside
    assert len(run_dirs) == 1, run.stdout + run.stderr
    first = read_results(run_dirs[0])
    assert [c["name"] for c in first["checks"]] == ["dynamodb_contents", "throttling", "access_logs", "security"]

    outcomes = []
    for _ in range(2):
        res = lc("check", str(run_dirs[0]), "--state-dir", sd, "--check-budget", "30s", cwd=tmp_path)
        doc = read_results(run_dirs[0])
        outcomes.append(
            (
                res.returncode,
                [(c["name"], c["status"]) for c in doc["checks"]],
                {k: doc["checks"][0]["figures"][k] for k in ("acknowledged", "found", "lost", "phantom")},
            )
        )
        assert f"results: {run_dirs[0] / 'results.json'}" in res.stdout
        assert res.returncode == (0 if doc["verdict"] == "pass" else 1), res.stdout + res.stderr
        print(res.stdout)
    assert outcomes[0] == outcomes[1]
    statuses = dict(outcomes[0][1])
    assert statuses["dynamodb_contents"] == "pass" and statuses["security"] == "pass", json.dumps(doc["checks"])[:3000]
    assert outcomes[0][2]["lost"] == 0 and outcomes[0][2]["acknowledged"] == outcomes[0][2]["found"]
    post = doc["routes"]["POST /events"]
    assert post["requests"] > 0 and set(post["latency_ms"]) == {"p50", "p90", "p95", "p99", "p999", "max"}
