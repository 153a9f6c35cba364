"""Chaos during a run (issue 15 item 1): a killed service is restarted, its outage is recorded, the
checks attribute what it cost, and the aws endpoint's death ends the run with a plain verdict.

Bounded: each run is 12 s at 6 req/s with one kill; the stateless services are each killed once
outside a run. Every process is gone afterwards (the fixture's leftover check).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from loadcheck.core.chaos import RESTART_TIMEOUT_S
from loadcheck.core.ledger import read_ledger
from loadcheck.core.rundir import ledger_state, read_run
from loadcheck.core.state import admin_headers, read_admin_token
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
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
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


KILLS = {"gateway": 3, "lambda": 6, "search": 9}  # seconds into the 12 s load


@pytest.fixture(scope="module")
def chaos_run(
    chaos_stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One short run in which the gateway, the lambda service and the search service are each
    SIGKILLed once: (the CLI's result, the run directory)."""
    out = tmp_path_factory.mktemp("runs")
    chaos = [arg for name, at in KILLS.items() for arg in ("--chaos", f"kill:{name}@{at}s")]
    result = loadcheck_run(Path(chaos_stack["state_dir"]), out, *chaos)
    return result, only_run_dir(out)


def test_a_run_survives_stateless_services_killed_mid_run_and_attributes_their_failures(
    chaos_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, run_dir = chaos_run
    run = read_run(run_dir)
    outages = {o["service"]: o for o in run["outages"]}
    assert len(run["outages"]) == len(KILLS) and set(outages) == set(KILLS), (run["outages"], result.stdout[-3000:])
    for o in outages.values():
        assert not o["fatal"] and o["restart_s"] is not None, o
    assert run["conditions"]["chaos"] == [f"kill:{n}@{t}s" for n, t in KILLS.items()]
    results = json.loads((run_dir / "results.json").read_text())
    checks = {c["name"]: c for c in results["checks"]}
    ddb = checks["dynamodb_contents"]
    # Every write acknowledged (inside or outside the outages) is in the table.
    assert ddb["status"] == "pass" and ddb["figures"]["lost"] == 0, ddb
    assert checks["access_logs"]["status"] == "pass", checks["access_logs"]
    assert results["verdict"] == "pass", (results["verdict_reasons"], result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    for name, o in outages.items():
        print(
            f"\nFIGURE {name} killed mid-run: restart {o['restart_s']:.2f} s, {o['requests']} request(s) in the "
            f"outage window, {o['failed']} failed"
        )
    print(
        f"FIGURE chaos run: {ddb['figures']['acknowledged']} acknowledged writes, 0 lost, "
        f"{ddb['figures']['indeterminate_in_outage']} indeterminate in outages, "
        f"{checks['access_logs']['figures']['lost_with_outage']} access-log record(s) lost with the gateway"
    )


def test_no_secret_of_the_stack_is_in_the_run_directory_or_the_logs(
    chaos_stack: dict[str, Any], chaos_run: tuple[subprocess.CompletedProcess[str], Path]
) -> None:
    """Every file of the run (the ledger decompressed), and every service log, searched for
    every identity's secret key and session token and the admin token."""
    result, run_dir = chaos_run
    state_dir = Path(chaos_stack["state_dir"])
    secrets = set(secret_values(state_dir))
    assert len(secrets) >= 4
    places = [*run_dir.rglob("*"), *(state_dir / "logs").rglob("*")]
    searched = 0
    for path in places:
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data) if data else b""
        searched += 1
        found = [s[:4] + "..." for s in secrets if s.encode() in data]
        assert not found, f"{path} holds secrets {found}"
    for stream in (result.stdout, result.stderr):
        assert not [s for s in secrets if s in stream]
    assert searched >= 10
    print(f"\nFIGURE secrets found in {searched} files of a run directory and the service logs: 0")


def secret_values(state_dir: Path) -> list[str]:
    ids = json.loads((state_dir / "identities.json").read_text())["identities"]
    values = [i["secret_access_key"] for i in ids.values()]
    values += [i["session_token"] for i in ids.values() if i.get("session_token")]
    token = read_admin_token(state_dir)
    assert token
    return [*values, token]


def test_the_aws_endpoints_death_ends_the_run_with_a_plain_verdict(tmp_path: Path) -> None:
    state_dir = tmp_path / ".loadcheck"
    out = tmp_path / "runs"
    with own_stack(state_dir):
        result = loadcheck_run(state_dir, out, "--chaos", "kill:aws@3s")
        assert not (state_dir / "stack.json").exists(), "the supervisor should have stopped the stack"
    assert result.returncode == 4, result.stdout[-3000:] + result.stderr[-2000:]  # verdict error
    assert "the table was lost with the aws endpoint at" in result.stdout
    assert "reconciliation impossible" in result.stdout and "verdict: ERROR" in result.stdout
    run = read_run(only_run_dir(out))
    (outage,) = run["outages"]
    assert outage["service"] == "aws" and outage["fatal"] and outage["up_at"] is None
    assert not (only_run_dir(out) / "results.json").exists()  # no list of "lost" writes blamed on the stack


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (root only), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_run_that_runs_out_of_disk_stops_keeps_its_ledger_and_says_so(tmp_path: Path) -> None:
    """A real ENOSPC condition: the run directory on an 8 MB tmpfs that the test fills mid-run.

    On a stack of its own: the throttling check compares the table's per-minute metrics with the
    ledger, and another test's writes in the same minute of a shared stack would count against it."""
    state_dir = tmp_path / ".loadcheck"
    with own_stack(state_dir), tiny_tmpfs(tmp_path / "disk", "8m") as disk:
        out = disk / "runs"
        argv = [*CLI, "run", "--state-dir", str(state_dir), "--out", str(out), *RUN]
        env = {**os.environ, "LOADCHECK_DISK_RESERVE_MB": "4"}
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                progress = next(out.glob("*/progress.json"), None) if out.exists() else None
                with contextlib.suppress(OSError, ValueError):
                    if progress and json.loads(progress.read_text()).get("elapsed_s", 0) >= 3:
                        break
                time.sleep(0.2)  # polling progress.json against a deadline
            free = shutil.disk_usage(disk).free
            (disk / "filler").write_bytes(b"\0" * (free - 3_500_000))  # leaves 3.5 MB: below the 4 MB reserve
            stdout, stderr = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        run_dir = only_run_dir(out)
        run = read_run(run_dir)
        state = ledger_state(run_dir, run)
        records = sum(1 for _ in read_ledger(run_dir))
    assert proc.returncode == 130, stdout[-3000:] + stderr[-2000:]  # stopped early: interrupted
    assert "disk full:" in stdout and run["status"] == "interrupted" and "disk full" in (run["note"] or "")
    assert not state.problems and records == run["ledger_records"] and records > 0, (state, records, run)
    print(
        f"\nFIGURE disk full mid-run: load stopped, {records} ledger records kept and readable, run marked interrupted"
    )
