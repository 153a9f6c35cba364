"""``loadcheck run --abort-on-fail`` on the local stack: a threshold doomed after a few seconds
stops a 60 s run early; the checks still run on what was sent and the run exits 6 (aborted)."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadcheck.core.errors import ExitCode
from loadcheck.core.ledger import read_ledger
from loadcheck.core.rundir import epoch_s

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

CLI = [sys.executable, "-m", "loadcheck"]
RATE = 4
DURATION_S = 60
# 4 writes/s for 60 s is at most 240 requests; p90 allows 24 of them above the limit, so the
# threshold is doomed once 25 writes took longer than 200 ms: about 7 s into the load when every
# DynamoDB call is delayed 400 ms.
THRESHOLD = "POST /events:p90<200ms"


def test_a_doomed_threshold_stops_a_60s_run_early(tmp_path: Path, stack: Path) -> None:
    runs = tmp_path / "runs"
    out = subprocess.run(
        [
            *CLI,
            "run",
            "--state-dir",
            str(stack),
            "--out",
            str(runs),
            "--duration",
            f"{DURATION_S}s",
            "--rate",
            str(RATE),
            "--mix",
            "writes=1",
            "--fault",
            "ddb-latency=400ms",
            "--threshold",
            THRESHOLD,
            "--threshold",
            "error_rate<50%",
            "--abort-on-fail",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        start_new_session=True,
    )
    text = out.stdout + out.stderr
    assert out.returncode == ExitCode.ABORTED == 6, text
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir() and not d.is_symlink()]  # runs/latest aside
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "aborted", run
    aborted = run["aborted"]
    assert aborted["threshold"] == THRESHOLD and aborted["at"] and "above 200ms" in aborted["reason"]
    # Stopped early, by the load's own clock: the elapsed figure when it was judged doomed, and
    # the load generator's start and end.
    assert aborted["elapsed_s"] < DURATION_S / 2, aborted
    load_s = epoch_s(run["ended_at"]) - epoch_s(run["started_at"])
    assert load_s < DURATION_S / 2, (run["started_at"], run["ended_at"])
    ledger = list(read_ledger(run_dir))
    assert 25 <= len(ledger) < RATE * DURATION_S / 2
    # The thresholds were judged on what was sent: the doomed one failed, the other held.
    by_name = {t["name"]: t for t in run["thresholds"]}
    assert by_name[THRESHOLD]["passed"] is False and by_name[THRESHOLD]["actual"] > 200
    assert by_name["error_rate<50%"]["passed"] is True
    # The checks ran on what was sent, and every artefact says the run was aborted and why.
    results = json.loads((run_dir / "results.json").read_text())
    assert results["checks"] and results["run"]["status"] == "aborted"
    assert results["verdict"] == "fail"
    assert any("aborted" in r and THRESHOLD in r for r in results["verdict_reasons"])
    assert "aborted" in (run_dir / "summary.md").read_text()
    assert html.escape(THRESHOLD) in (run_dir / "report.html").read_text()
    junit = (run_dir / "junit.xml").read_text()
    assert "the run was aborted" in junit
    assert f"abort-on-fail: threshold {THRESHOLD} can no longer pass" in out.stdout
