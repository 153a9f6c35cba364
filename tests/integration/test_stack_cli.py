"""`loadcheck stack` as a user runs it: up --detach, status, env, use, down; nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import psutil
import pytest

from tests.integration.conftest import _descendants_of_state

pytestmark = pytest.mark.integration


def lc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadcheck", *args], cwd=cwd, text=True, capture_output=True, timeout=240, check=check
    )


def test_stack_lifecycle(tmp_path: Path) -> None:
    sd = tmp_path / "state"
    try:
        up = lc("stack", "up", "--detach", "--fault", "log-delay=2s", "--state-dir", str(sd), cwd=tmp_path)
        assert "local stack ready" in up.stdout
        assert "curl --aws-sigv4" in up.stdout

        again = lc("stack", "up", "--detach", "--state-dir", str(sd), cwd=tmp_path, check=False)
        assert again.returncode == 5  # the target cannot be used: it runs already
        assert "already runs" in again.stderr

        st = lc("stack", "status", "--state-dir", str(sd), cwd=tmp_path)
        for svc in ("aws", "search", "lambda", "gateway"):
            assert f"{svc}" in st.stdout
        assert st.stdout.count("healthy") == 4

        env_out = lc("stack", "env", "--state-dir", str(sd), cwd=tmp_path).stdout
        env = dict(line.removeprefix("export ").split("=", 1) for line in env_out.splitlines())
        env = {k: v.strip("'") for k, v in env.items()}
        for key in (
            "AWS_ENDPOINT_URL",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_PROFILE",
            "AWS_DEFAULT_REGION",
            "AWS_CA_BUNDLE",
        ):
            assert key in env
        # The exported settings are enough for boto3 to find the provisioned table.
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            ddb = boto3.Session().client("dynamodb")
            table = ddb.describe_table(TableName="EventLog")["Table"]
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        assert table["ProvisionedThroughput"]["WriteCapacityUnits"] == 1
        assert [k["AttributeName"] for k in table["KeySchema"]] == ["date", "time"]
        _faults_are_set_validated_and_shown(sd, tmp_path)
    finally:
        down = lc("stack", "down", "--state-dir", str(sd), cwd=tmp_path, check=False)
    assert "stopped" in down.stdout
    assert lc("stack", "status", "--state-dir", str(sd), cwd=tmp_path, check=False).returncode == 5
    assert _descendants_of_state(sd) == []


def _faults_are_set_validated_and_shown(sd: Path, cwd: Path) -> None:
    from loadcheck.core.faults import active_faults

    set_out = lc("stack", "fault", "drop-writes=0.5", "ddb-latency=0.2s", "--state-dir", str(sd), cwd=cwd).stdout
    assert "aws      ddb-latency=200ms drop-writes=0.5" in set_out and "gateway  log-delay=2s" in set_out
    st = lc("stack", "status", "--state-dir", str(sd), cwd=cwd).stdout
    assert "  faults   aws      ddb-latency=200ms drop-writes=0.5" in st
    assert "           gateway  log-delay=2s" in st
    doc = json.loads(lc("stack", "status", "--json", "--state-dir", str(sd), cwd=cwd).stdout)
    assert doc["faults"] == {
        "aws": {"drop-writes": 0.5, "ddb-latency": 200.0},
        "lambda": {},
        "gateway": {"log-delay": 2.0},
    }
    assert active_faults(sd) == {"drop-writes": 0.5, "ddb-latency": 200.0, "log-delay": 2.0}

    # Refused before any request: the registry's one error format.
    bad = lc("stack", "fault", "lambda-error=-0.1", "--state-dir", str(sd), cwd=cwd, check=False)
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[0] == (
        "loadcheck: error: fault lambda-error=-0.1: -0.1 is outside 0..1 (fraction of invocations)"
    )
    # Refused by the service (only the gateway knows its access-log format): one line, no JSON.
    bad = lc("stack", "fault", "blank-access-log-field=nope", "--state-dir", str(sd), cwd=cwd, check=False)
    assert bad.returncode == 2, bad.stderr
    lines = bad.stderr.splitlines()
    assert lines[0] == (
        "loadcheck: error: the gateway service refused blank-access-log-field=nope: "
        "'nope' is not a field of the access-log format"
    )
    assert len(lines) == 2 and lines[1].startswith("  fix: name one of ") and "{" not in bad.stderr
    assert "Error:" not in bad.stderr

    lc("stack", "fault", "ddb-latency=off", "--state-dir", str(sd), cwd=cwd)
    assert active_faults(sd) == {"drop-writes": 0.5, "log-delay": 2.0}
    assert "cleared" in lc("stack", "fault", "--clear", "--state-dir", str(sd), cwd=cwd).stdout
    assert "  faults   none" in lc("stack", "status", "--state-dir", str(sd), cwd=cwd).stdout
    assert active_faults(sd) == {}


def test_hints_keep_the_state_dir(tmp_path: Path) -> None:
    other = tmp_path / "other"
    r = lc("stack", "env", "--state-dir", str(other), cwd=tmp_path, check=False)
    assert r.returncode == 5  # not running: the target cannot be used
    assert f"`loadcheck stack up --detach --state-dir {other}`" in r.stderr
    r = lc("stack", "fault", "drop-writes=0.1", "--state-dir", str(other), cwd=tmp_path, check=False)
    assert r.returncode == 5 and f"--state-dir {other}" in r.stderr
    r = lc("stack", "fault", "--state-dir", str(other), cwd=tmp_path, check=False)
    assert f"loadcheck stack fault ddb-latency=200ms --state-dir {other}" in r.stderr


def test_down_after_a_service_crash_leaves_nothing(tmp_path: Path) -> None:
    from reference_stack.local import supervisor

    sd = tmp_path / "state"
    stack = supervisor.start_detached(sd)
    try:
        lam = psutil.Process(stack["services"]["lambda"]["pid"])
        lam.kill()
        lam.wait(10)
    finally:
        supervisor.stop_stack(sd)
    assert _descendants_of_state(sd) == []


def test_bad_port_option_names_the_fix(tmp_path: Path) -> None:
    r = lc(
        "stack",
        "up",
        "--detach",
        "--port",
        "gateway=http",
        "--state-dir",
        str(tmp_path / "s"),
        cwd=tmp_path,
        check=False,
    )
    assert r.returncode == 2
    assert "gateway=http" in r.stderr and "SERVICE=PORT" in r.stderr
