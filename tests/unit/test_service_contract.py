"""The service contract (reference_stack/local/common/contract.py) and the launcher, proven on the
real entry points run as subprocesses: one error format and exit status for a bad config, the
ready file, SIGTERM, and the parent-death watch."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from loadcheck.core.errors import StackError
from reference_stack.local.common import configs
from reference_stack.local.common.contract import CONFIG_ERROR_EXIT
from reference_stack.local.common.launcher import REPO_ROOT, SERVICE_MODULES, ServiceProcess

SERVICES = sorted(SERVICE_MODULES)


def _run(service: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", SERVICE_MODULES[service], "--config", str(config)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), ("{", "is not JSON"), ("[1, 2]", "must be a JSON object, not list")],
)
def test_a_bad_config_file_is_one_error_format_and_exit_status(
    tmp_path: Path, service: str, content: str | None, message: str
) -> None:
    config = tmp_path / f"{service}.json"
    if content is not None:
        config.write_text(content)
    run = _run(service, config)
    assert run.returncode == CONFIG_ERROR_EXIT == 2
    first, *rest = run.stderr.splitlines()
    assert first.startswith(f"{service}: error: {service} service config {config}") and message in first
    assert rest and rest[0].startswith("  fix: ")


@pytest.mark.parametrize("service", SERVICES)
def test_a_bad_config_value_is_reported_in_the_same_format(tmp_path: Path, service: str) -> None:
    config = tmp_path / f"{service}.json"
    config.write_text(json.dumps({"service": service, "host": "0.0.0.0"}))  # noqa: S104 (the value refused)
    run = _run(service, config)
    assert run.returncode == 2
    assert run.stderr.startswith(f"{service}: error: ") and "fix:" in run.stderr, run.stderr


def _aws(tmp_path: Path, **keys: object) -> ServiceProcess:
    base = configs.ServiceBase(region="us-east-1", log_level="WARNING")
    config = configs.aws_config(base, ready_file=tmp_path / "aws.ready") | keys
    return ServiceProcess.for_service("aws", config, config_path=tmp_path / "aws.json")


def test_ready_file_names_the_port_and_pid_and_sigterm_exits_0(tmp_path: Path) -> None:
    proc = _aws(tmp_path)
    try:
        port = proc.launch(60)
        ready = json.loads((tmp_path / "aws.ready").read_text())
        assert ready == {"port": port, "pid": proc.pid}
        health = requests.get(f"http://127.0.0.1:{port}/_loadcheck/health", timeout=10)
        assert health.json() == {"status": "ok", "service": "aws"}
    finally:
        status = proc.stop()
    assert status == 0
    assert proc.stop() == 0  # stopping again reports the same exit


def test_the_launcher_names_the_log_of_a_service_that_fails_to_start(tmp_path: Path) -> None:
    proc = _aws(tmp_path, log_level="LOUD")
    with pytest.raises(StackError, match="exited with status 2 while starting") as err:
        proc.launch(60)
    assert "aws: error:" in (err.value.hint or "") and "log_level" in (err.value.hint or "")
    assert proc.returncode == 2


PARENT = """
import json, os, subprocess, sys
cfg = json.load(open(sys.argv[1])); cfg["parent_pid"] = os.getpid()
json.dump(cfg, open(sys.argv[1], "w"))
child = subprocess.Popen([sys.executable, "-m", "reference_stack.local.aws", "--config", sys.argv[1]])
print(child.pid, flush=True)
sys.stdin.read()
"""


def test_a_service_exits_when_its_parent_dies(tmp_path: Path) -> None:
    config = tmp_path / "aws.json"
    ready = tmp_path / "aws.ready"
    base = configs.ServiceBase(region="us-east-1", log_level="WARNING")
    config.write_text(json.dumps(configs.aws_config(base, ready_file=ready)))
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(config)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = None
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        end = time.monotonic() + 60
        while not ready.is_file():
            assert time.monotonic() < end and child.is_running(), "the service never wrote its ready file"
            time.sleep(0.05)  # polling the ready file against a deadline
        parent.kill()
        parent.wait(10)
        end = time.monotonic() + 15
        while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < end, "the service still runs 15 s after its parent died"
            time.sleep(0.1)  # polling the process table against a deadline
    finally:
        parent.kill()
        parent.wait(10)
        if child is not None and child.is_running():
            child.kill()
