"""Chaos during a run (issue 15 item 1): a killed service is restarted, its outage is recorded, the
checks attribute what it cost, and the aws endpoint's death ends the run with a plain verdict.

Bounded: each run is 12 s at 6 req/s with one kill; the stateless services are each killed once
outside a run. Every process is gone afterwards (the fixture's leftover check).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from loadcheck.core.chaos import RESTART_TIMEOUT_S
from loadcheck.core.rundir import read_run
from loadcheck.core.state import admin_headers
from reference_stack.local import supervisor

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "loadcheck"]
RUN = ["--duration", "12s", "--rate", "6", "--mix", "writes=4,reads=1,search=1"]


def _processes_naming(state_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(state_dir) in part for part in (p.info["cmdline"] or [])):
                found.append(p)
    return found


@contextlib.contextmanager
def own_stack(state_dir: Path) -> Iterator[dict[str, Any]]:
    stack = supervisor.start_detached(state_dir)
    try:
        yield stack
    finally:
        supervisor.stop_stack(state_dir)
        left = _processes_naming(state_dir)
        for p in left:
            with contextlib.suppress(psutil.Error):
                p.kill()
        assert not left, f"processes left behind: {[p.pid for p in left]}"


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with own_stack(tmp_path_factory.mktemp("chaos") / ".loadcheck") as stack:
        yield stack


def loadcheck_run(state_dir: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [*CLI, "run", "--state-dir", str(state_dir), "--out", str(out), *RUN, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, start_new_session=True)


def only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


@pytest.mark.parametrize("service", ["lambda", "search"])
def test_a_killed_stateless_service_is_restarted_on_its_port(chaos_stack: dict[str, Any], service: str) -> None:
    state_dir = Path(chaos_stack["state_dir"])
    url = chaos_stack["services"][service]["url"]
    killed = supervisor.kill(state_dir, service)
    outage = supervisor.wait_restarted(state_dir, service, killed["pid"], timeout_s=RESTART_TIMEOUT_S + 10)
    assert not outage.fatal and outage.restart_s is not None and outage.restart_s < RESTART_TIMEOUT_S
    stack = json.loads((state_dir / "stack.json").read_text())
    assert stack["services"][service]["url"] == url and stack["services"][service]["pid"] != killed["pid"]
    health = requests.get(f"{url}/_loadcheck/health", headers=admin_headers(state_dir), timeout=10)
    assert health.status_code == 200
    print(f"\nFIGURE restart {service}: {outage.restart_s:.2f} s")


def test_a_run_survives_a_gateway_kill_and_attributes_its_failures(chaos_stack: dict[str, Any], tmp_path: Path) -> None:
    state_dir = Path(chaos_stack["state_dir"])
    out = tmp_path / "runs"
    result = loadcheck_run(state_dir, out, "--chaos", "kill:gateway@4s")
    run_dir = only_run_dir(out)
    run = read_run(run_dir)
    (outage,) = [o for o in run["outages"] if o["service"] == "gateway"]
    assert not outage["fatal"] and outage["restart_s"] is not None, run["outages"]
    assert run["conditions"]["chaos"] == ["kill:gateway@4s"]
    results = json.loads((run_dir / "results.json").read_text())
    checks = {c["name"]: c for c in results["checks"]}
    ddb = checks["dynamodb_contents"]
    # Every write acknowledged (inside or outside the outage) is in the table.
    assert ddb["status"] == "pass" and ddb["figures"]["lost"] == 0, ddb
    assert checks["access_logs"]["status"] == "pass", checks["access_logs"]
    assert results["verdict"] == "pass", (results["verdict_reasons"], result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    print(
        f"\nFIGURE gateway kill mid-run: restart {outage['restart_s']:.2f} s, {outage['requests']} request(s) "
        f"in the outage window ({outage['failed']} failed), {ddb['figures']['acknowledged']} acknowledged writes, 0 lost, "
        f"{ddb['figures']['indeterminate_in_outage']} indeterminate in the outage, "
        f"{checks['access_logs']['figures']['lost_with_outage']} access-log record(s) lost with the gateway"
    )


def test_the_aws_endpoints_death_ends_the_run_with_a_plain_verdict(tmp_path: Path) -> None:
    state_dir = tmp_path / ".loadcheck"
    out = tmp_path / "runs"
    with own_stack(state_dir):
        result = loadcheck_run(state_dir, out, "--chaos", "kill:aws@3s")
        assert not (state_dir / "stack.json").exists(), "the supervisor should have stopped the stack"
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-2000:]
    assert "the table was lost with the aws endpoint at" in result.stdout
    assert "reconciliation impossible" in result.stdout and "verdict: ERROR" in result.stdout
    run = read_run(only_run_dir(out))
    (outage,) = run["outages"]
    assert outage["service"] == "aws" and outage["fatal"] and outage["up_at"] is None
    assert not (only_run_dir(out) / "results.json").exists()  # no list of "lost" writes blamed on the stack
