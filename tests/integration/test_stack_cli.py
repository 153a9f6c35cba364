"""`loadcheck stack` as a user runs it: up --detach, status, env, use, down; nothing left behind."""

from __future__ import annotations

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
        up = lc("stack", "up", "--detach", "--state-dir", str(sd), cwd=tmp_path)
        assert "local stack ready" in up.stdout
        assert "curl --aws-sigv4" in up.stdout

        again = lc("stack", "up", "--detach", "--state-dir", str(sd), cwd=tmp_path, check=False)
        assert again.returncode == 2
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
    finally:
        down = lc("stack", "down", "--state-dir", str(sd), cwd=tmp_path, check=False)
    assert "stopped" in down.stdout
    assert lc("stack", "status", "--state-dir", str(sd), cwd=tmp_path, check=False).returncode == 3
    assert _descendants_of_state(sd) == []


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
