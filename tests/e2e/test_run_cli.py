"""``loadcheck run`` as a user runs it: bad values, a short run on the local stack, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from loadcheck.core.ledger import read_ledger

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "loadcheck"]


def _ignore_sigint() -> None:
    # As a shell starts a background job: SIGINT ignored, and an ignored signal survives exec.
    # The CLI restores the default handler itself, so Ctrl-C (kill -INT) still stops the run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def loadcheck(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, start_new_session=True, **kw)


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--duration", "60sec"], "--duration: '60sec' is not a duration"),
        (["--mix", "writes=6,de letes=1"], "--mix: 'de letes' is not a request kind name"),
        (["--mix", "writes=x"], "weight of writes is 'x'"),
        (["--fault", "drop-everything=1"], "unknown fault 'drop-everything'"),
        (["--fault", "drop-writes"], "--fault: 'drop-writes' is not NAME=VALUE"),
        (["--threshold", "PUT /events:p95<5ms"], "'PUT /events' is not a route of the stack description"),
        (["--max-p95-ms", "PUT /events=5"], "'PUT /events' is not a route of the stack description"),
        (["--threshold", "p95>5ms"], "--threshold: 'p95>5ms' is not [ROUTE:]METRIC<LIMIT"),
        (["--locustfile", "nowhere.py"], "--locustfile: 'nowhere.py' is not a file"),
        (["--max-error-rate", "5"], "--max-error-rate: the limit '5' in '5' is ambiguous"),
        (["--collisions", "2"], "--collisions: '2' is outside 0..1"),
        (["--shape", "ramp", "--rate", "5", "--users", "2"], "--rate 5 does not apply to --shape ramp"),
        (["--shape", "step", "--steps", "1,2"], "--shape step needs --steps and --step-duration"),
        (["--steps", "1,fast", "--step-duration", "5s"], "--steps: 'fast' is not a rate"),
        (["--worker"], "--worker needs --master-host"),
        (
            ["--target", "aws", "--fault", "drop-writes=0.1", "--tf-outputs", "x.json"],
            "--fault applies to the local target only",
        ),
    ],
)
def test_bad_values_name_the_value_and_the_fix(tmp_path, args, needle):
    out = loadcheck("run", "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "runs"), *args)
    assert out.returncode == 2, out.stdout + out.stderr
    assert needle in out.stderr and "fix:" in out.stderr
    assert not (tmp_path / "runs").exists() and not (tmp_path / "state" / "stack.json").exists()


@pytest.mark.parametrize(
    "fault,first_line",
    [
        ("lambda-error=-0.1", "fault lambda-error=-0.1: -0.1 is outside 0..1 (fraction of invocations)"),
        ("ddb-latency=abc", "fault ddb-latency=abc: 'abc' is not a duration in milliseconds"),
        ("throttle-status=42", "fault throttle-status=42: 42 is outside 100..599 (HTTP status code)"),
    ],
)
def test_bad_fault_values_stop_the_run_before_anything_starts(tmp_path, fault, first_line):
    out = loadcheck("run", "--state-dir", str(tmp_path / "state"), "--out", str(tmp_path / "runs"), "--fault", fault)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == f"loadcheck: error: {first_line}", out.stderr
    assert len(lines) == 2 and lines[1].startswith("  fix: give ") and "e.g. " + fault.split("=")[0] in lines[1]
    assert "Error:" not in out.stderr and "{" not in out.stderr  # no class path, no JSON body hint
    assert out.stdout == ""  # nothing started: no progress line at all
    assert not (tmp_path / "runs").exists() and not (tmp_path / "state").exists()


def _run_dir(runs: Path) -> Path:
    dirs = [d for d in runs.iterdir() if d.is_dir() and not d.is_symlink()]  # runs/latest aside
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.mark.integration
@pytest.mark.slow
def test_a_short_run_on_the_local_stack(tmp_path, stack):
    runs = tmp_path / "runs"
    # A fault set on the stack before the run (not by --fault) is a condition the run records.
    set_fault = loadcheck("stack", "fault", "ddb-latency=1ms", "--state-dir", str(stack))
    assert set_fault.returncode == 0, set_fault.stdout + set_fault.stderr
    try:
        out = _short_run(stack, runs)
    finally:
        loadcheck("stack", "fault", "--clear", "--state-dir", str(stack))
    run_dir = _run_dir(runs)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["conditions"]["faults"] == {"ddb-latency": 1}, run["conditions"]
    assert run["conditions"]["collisions"] == 0.1 and run["conditions"]["shape"] == "constant-rate"
    assert "ddb-latency=1" in (run_dir / "report.html").read_text()
    assert "ddb-latency=1" in (run_dir / "summary.md").read_text()
    _assert_short_run(out, stack, runs)


def _short_run(stack: Path, runs: Path) -> subprocess.CompletedProcess[str]:
    return loadcheck(
        "run",
        "--state-dir",
        str(stack),
        "--out",
        str(runs),
        "--duration",
        "6s",
        "--rate",
        "6",
        "--mix",
        "writes=4,reads=1,search=1",
        "--collisions",
        "0.1",
        "--threshold",
        "p95<60s",
        "--max-p95-ms",  # deprecated, still read: a threshold and a note naming the new spelling
        "GET /events=60000",
        timeout=600,
    )


def _assert_short_run(out: subprocess.CompletedProcess[str], stack: Path, runs: Path) -> None:
    # 1 a check failed, 3 a threshold: the checks' and thresholds' business, not this test's
    assert out.returncode in (0, 1, 3), out.stdout + out.stderr
    run_dir = _run_dir(runs)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "complete", run
    assert run["target"]["kind"] == "local" and "secret" not in json.dumps(run["target"]).lower()
    ledger = list(read_ledger(run_dir))
    assert ledger, "no ledger"
    assert dict(Counter(r["route"] for r in ledger)) == {r: v["requests"] for r, v in run["locust"]["routes"].items()}
    assert Counter(r["status"] for r in ledger)[403] == 0, "the gateway refused our signatures"
    assert (run_dir / "histograms.json").is_file()
    by_name = {t["name"]: t for t in run["thresholds"]}
    assert by_name["p95<60s"] == {
        "name": "p95<60s",
        "route": "all",
        "metric": "p95",
        "unit": "ms",
        "limit": 60000.0,
        "actual": by_name["p95<60s"]["actual"],
        "passed": True,
    }
    assert by_name["GET /events:p95<=60s"]["passed"] is True
    assert "--max-p95-ms 'GET /events=60000' is deprecated: write --threshold 'GET /events:p95<=60s'" in out.stderr
    # On by default: a load test of this stack expects 429s and 409s, never 5xx.
    assert by_name["server_error_rate<=1%"]["limit"] == 0.01
    assert str(run_dir) in out.stdout and "verdict:" in out.stdout
    # The stack was already running: the run leaves it running.
    assert (stack / "stack.json").is_file()


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_keeps_the_ledger_and_marks_the_run_interrupted(tmp_path, stack):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [
            *CLI,
            "run",
            "--state-dir",
            str(stack),
            "--out",
            str(runs),
            "--duration",
            "120s",
            "--rate",
            "5",
            "--no-checks",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_ignore_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # poll until requests have been recorded
            progress = next(iter(runs.glob("*/progress.json")), None) if runs.exists() else None
            if progress is not None:
                try:
                    if json.loads(progress.read_text()).get("requests", 0) >= 5:
                        break
                except ValueError:
                    pass
            assert time.monotonic() < deadline and proc.poll() is None, "the run did not start"
            time.sleep(0.2)
        os.kill(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, output  # interrupted (docs/cli.md exit codes)
    run_dir = _run_dir(runs)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "interrupted"
    ledger = list(read_ledger(run_dir))
    assert len(ledger) >= 5
    assert sum(v["requests"] for v in run["locust"]["routes"].values()) == len(ledger)
    assert "interrupted" in output


# The reference workload plus one Locust warning at the start of the load, in Locust's own words.
WARNING_WORKLOAD = """\
import logging

from locust import events

from locustfiles.eventlog import EventLogUser  # noqa: F401  (the user class Locust runs)


@events.test_start.add_listener
def _warn(**_):
    logging.getLogger("locust.runners").warning("CPU usage above 90%! (seeded by the test)")
"""


@pytest.mark.integration
@pytest.mark.slow
def test_off_a_terminal_progress_is_plain_lines_and_locust_warnings_are_shown(tmp_path, stack):
    runs = tmp_path / "runs"
    workload = tmp_path / "warning_workload.py"
    workload.write_text(WARNING_WORKLOAD)
    out = loadcheck(
        "run",
        "--state-dir",
        str(stack),
        "--out",
        str(runs),
        "--duration",
        "11s",
        "--rate",
        "4",
        "--locustfile",
        str(workload),
        "--no-checks",
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "\r" not in out.stdout  # stdout is a pipe: no line is ever redrawn
    progress = [line for line in out.stdout.splitlines() if line.startswith("progress [")]
    # One line per 5 s of load (5 s, 10 s) and the last one, each complete.
    assert len(progress) >= 3, out.stdout
    final = json.loads((_run_dir(runs) / "progress.json").read_text())
    assert progress[-1].startswith(f"progress [{final['elapsed_s']:.0f}/11 s]")
    assert f"requests {final['requests']}" in progress[-1]
    for line in progress:
        assert " req/s " in line and " 2xx " in line and " p95 " in line and " dropped " in line, line
        assert " users busy " in line and " burst write " in line, line  # the local table's buckets
    warning = "locust WARNING (locust.log, locust.runners): CPU usage above 90%! (seeded by the test)"
    lines = out.stdout.splitlines()
    assert warning in lines, out.stdout  # shown as it appeared, before the load ended
    assert lines.index(warning) < lines.index(progress[-1])
    summary = lines[lines.index("  Locust warned 1 time(s) (run directory's Locust logs):") + 1]
    assert summary == "    " + warning


@pytest.mark.integration
@pytest.mark.slow
def test_ci_run_json_run_id_and_latest(tmp_path, stack):
    """What a CI job relies on: `--run-id` names the directory, stdout is one JSON document that
    matches docs/run-summary.schema.json, runs/latest moves to the new run, and the same id again is
    refused before anything starts."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).resolve().parents[2] / "docs" / "run-summary.schema.json").read_text())
    runs = tmp_path / "runs"
    (runs / "older").mkdir(parents=True)
    (runs / "latest").symlink_to("older", target_is_directory=True)
    args = ["run", "--state-dir", str(stack), "--out", str(runs), "--run-id", "ci-42-1", "--json"]
    out = loadcheck(*args, "--duration", "5s", "--rate", "3", "--threshold", "p95<60s", timeout=600)
    assert out.returncode in (0, 1, 3), out.stdout + out.stderr
    doc = json.loads(out.stdout)  # the whole of stdout: one document, no progress lines
    jsonschema.validate(doc, schema)
    run_dir = runs / "ci-42-1"
    assert doc["run_id"] == "ci-42-1" and doc["run_dir"] == str(run_dir.resolve())
    assert doc["exit_code"] == out.returncode and doc["status"] == "complete" and doc["checks_ran"]
    assert {c["name"] for c in doc["checks"]} == {"dynamodb_contents", "throttling", "access_logs", "security"}
    assert {t["name"]: t["passed"] for t in doc["thresholds"]}["p95<60s"] is True
    assert set(doc["reports"]) == {"report.html", "summary.md", "junit.xml"}
    assert "verdict:" in out.stderr and "run directory:" in out.stderr  # the human text, on stderr
    assert os.readlink(runs / "latest") == "ci-42-1"
    again = loadcheck(*args)
    assert again.returncode == 2 and f"--run-id: {run_dir} already exists" in again.stderr, again.stderr
    assert again.stdout == "" and sorted(p.name for p in runs.iterdir()) == ["ci-42-1", "latest", "older"]


@pytest.mark.integration
def test_a_smoke_in_the_runs_first_minute_is_named_not_blamed_on_the_stack(tmp_path, stack):
    """`loadcheck smoke` writes through the API; a run started in the same minute sees that write in
    the table's per-minute metrics. The throttling check finds it in the access log and passes,
    naming it, instead of failing consumed_mismatch."""
    while time.time() % 60 > 30:  # smoke and the run's first request in one minute
        time.sleep(0.5)
    smoke = loadcheck("smoke", "--state-dir", str(stack), timeout=120)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    runs = tmp_path / "runs"
    out = loadcheck(
        "run", "--state-dir", str(stack), "--out", str(runs), "--duration", "5s", "--rate", "3", timeout=600
    )
    results = json.loads((_run_dir(runs) / "results.json").read_text())
    throttling = next(c for c in results["checks"] if c["name"] == "throttling")
    assert throttling["status"] == "pass", throttling
    assert throttling["figures"]["other_clients_writes"] >= 1, throttling
    assert "writes other clients sent in the run's minutes are counted" in throttling["summary"]
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
