"""The lambda service's lifecycle as a real process: each test starts its own service to prove
SIGTERM stops every environment it started, that the service exits when its parent dies, and
that idle environments are reclaimed. Helpers and fixtures are in lambda_service.py.
"""

# The fixtures imported from lambda_service.py come back as test arguments (pytest injects them).
# ruff: noqa: F811
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import boto3
import psutil
import pytest

from tests.integration.lambda_service import (  # noqa: F401 - moto_endpoint is a fixture
    KEYS,
    _fn,
    moto_endpoint,
    poll,
    request,
    start_service,
    stop_and_check,
    wait_ready,
    write_config,
)

pytestmark = pytest.mark.integration


# -- lifecycle ------------------------------------------------------------------------------
def test_sigterm_stops_every_environment(tmp_path: Path, moto_endpoint: str) -> None:
    process = start_service(tmp_path, moto_endpoint, {"a": _fn("echo"), "b": _fn("sleep", timeout_s=5)})
    children: list[psutil.Process] = []
    try:
        port = wait_ready(tmp_path, process)
        assert request(port, "POST", "/2015-03-31/functions/a/invocations", b"{}")[0] == 200
        assert request(port, "POST", "/2015-03-31/functions/b/invocations", b'{"seconds": 0}')[0] == 200
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(children) == 2
    finally:
        assert stop_and_check(process, children) == 0
    logs = boto3.client(
        "logs",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIAADMINTEST",
        aws_secret_access_key=KEYS["admin-secret"],
    )
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/a")["logStreams"]
    assert streams, "logs are shipped on shutdown"


# A parent that starts the service (naming itself as parent_pid) and exits when its stdin closes.
_PARENT = """
import json, os, subprocess, sys
config = json.loads(open(sys.argv[1]).read())
config["parent_pid"] = os.getpid()
open(sys.argv[1], "w").write(json.dumps(config))
child = subprocess.Popen([sys.executable, "-m", "reference_stack.local.lambda_", "--config", sys.argv[1]],
                         stderr=open(sys.argv[2], "wb"), stdout=subprocess.DEVNULL)
print(child.pid, flush=True)
sys.stdin.read()
"""


def test_the_service_exits_when_its_parent_dies(tmp_path: Path, moto_endpoint: str) -> None:
    config = write_config(tmp_path, moto_endpoint, {"a": _fn("echo")})
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(config), str(tmp_path / "lambda.log")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert parent.stdout is not None and parent.stdin is not None
    service = psutil.Process(int(parent.stdout.readline()))
    children: list[psutil.Process] = []
    try:
        port = poll(
            lambda: (
                (tmp_path / "lambda.ready").exists() and json.loads((tmp_path / "lambda.ready").read_text())["port"]
            ),
            deadline_s=30,
            what="the ready file",
        )
        assert request(port, "POST", "/2015-03-31/functions/a/invocations", b"{}")[0] == 200
        children = service.children(recursive=True)
        assert children
        parent.stdin.close()
        parent.wait(timeout=10)
        poll(
            lambda: not service.is_running() or service.status() == psutil.STATUS_ZOMBIE,
            deadline_s=15,
            what="the orphaned service to exit",
        )
        poll(
            lambda: all(not c.is_running() or c.status() == psutil.STATUS_ZOMBIE for c in children),
            deadline_s=15,
            what="its environments to exit",
        )
    finally:
        for proc in [service, *children]:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(OSError):
            parent.kill()
        parent.wait(timeout=10)
        parent.stdout.close()


def test_idle_environments_are_reclaimed(tmp_path: Path, moto_endpoint: str) -> None:
    process = start_service(tmp_path, moto_endpoint, {"a": _fn("crash")}, idle_timeout_s=0.5)
    children: list[psutil.Process] = []
    try:
        port = wait_ready(tmp_path, process)
        status, _, body = request(port, "POST", "/2015-03-31/functions/a/invocations", b"{}")
        assert status == 200
        env = psutil.Process(body["pid"])
        children = [env]
        poll(lambda: not env.is_running() or env.status() == psutil.STATUS_ZOMBIE, what="the idle environment's exit")
        status, _, body = request(port, "POST", "/2015-03-31/functions/a/invocations", b"{}")
        assert status == 200 and body["pid"] != env.pid, "the next invocation cold-starts a new environment"
        children = psutil.Process(process.pid).children(recursive=True)
    finally:
        assert stop_and_check(process, children) == 0
