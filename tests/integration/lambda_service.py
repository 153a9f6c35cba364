"""The lambda service as a real process, shared by test_lambda_service*.py: functions, the
service config, starting and stopping the process, the module-scoped ``moto_endpoint`` and
``service`` fixtures.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from moto.server import ThreadedMotoServer

from loadcheck.core.state import Identity, write_identities

HANDLERS = Path(__file__).resolve().parent / "lambda_handlers"
ACCOUNT = "123456789012"
REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\tMax Memory Used: (?P<used>\d+) MB\t"
    r"(?:Init Duration: (?P<init>\d+\.\d\d) ms\t)?(?:Status: (?P<status>\w+)\t)?(?:Error Type: (?P<etype>[\w.]+)\t)?\n$"
)
# Generated per run: moto does not check keys, and the test proves they reach the handler.
KEYS = {name: uuid.uuid4().hex for name in ("admin-secret", "role-secret", "role-token")}
STREAM = re.compile(r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")


def _fn(handler: str, *, timeout_s: float = 3, reserved: int | None = 2, memory: int = 128) -> dict[str, Any]:
    return {
        "handler": f"testfns.{handler}",
        "task_root": str(HANDLERS),
        "memory_mb": memory,
        "timeout_s": timeout_s,
        "reserved_concurrency": reserved,
        "role_identity": "test-role",
        "environment": {"TABLE_NAME": "EventLog", "AWS_REGION": "eu-west-1"},
    }


FUNCTIONS = {
    "echo": _fn("echo"),
    "coldwarm": _fn("echo"),
    "environ": _fn("environ", memory=256),
    "print": _fn("print_"),
    "fail": _fn("fail"),
    "slow1": _fn("sleep", timeout_s=10, reserved=1),
    "timeout": _fn("sleep", timeout_s=1),
    "crash": _fn("crash"),
    "noinit": _fn("nothere"),
    "faulty": _fn("noop", timeout_s=1),
    "throttled0": _fn("noop", reserved=0),
    "big": _fn("big"),
}


@dataclass
class Service:
    port: int
    process: subprocess.Popen[bytes]
    aws_endpoint: str
    identities: dict[str, Identity]
    logs: Any

    def invoke(
        self, function: str, payload: Any = None, *, raw: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        return request(self.port, "POST", f"/2015-03-31/functions/{function}/invocations", body, headers)

    def admin(self, method: str, path: str, doc: Any = None) -> tuple[int, dict[str, str], Any]:
        return request(self.port, method, f"/_loadcheck/{path}", json.dumps(doc).encode() if doc is not None else b"")

    def events(self, function: str) -> dict[str, list[str]]:
        """Every log event of the function, per stream, after a flush."""
        self.admin("POST", "flush")
        group = f"/aws/lambda/{function}"
        out: dict[str, list[str]] = {}
        with contextlib.suppress(self.logs.exceptions.ResourceNotFoundException):
            for stream in self.logs.describe_log_streams(logGroupName=group)["logStreams"]:
                name = stream["logStreamName"]
                got = self.logs.get_log_events(logGroupName=group, logStreamName=name, startFromHead=True)
                out[name] = [e["message"] for e in got["events"]]
        return out


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        with contextlib.suppress(ValueError):
            data = json.loads(data) if data else None
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def poll(check: Callable[[], Any], *, deadline_s: float = 15, what: str = "condition") -> Any:
    """Call ``check`` until it returns something truthy; fail after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.05)  # polling interval, not a wait for an event


def _identities() -> dict[str, Identity]:
    return {
        "admin": Identity(
            name="admin",
            arn=f"arn:aws:iam::{ACCOUNT}:user/loadcheck-admin",
            principal_arn=f"arn:aws:iam::{ACCOUNT}:user/loadcheck-admin",
            user_id="AIDAADMIN",
            access_key_id="AKIAADMINTEST",
            secret_access_key=KEYS["admin-secret"],
        ),
        "test-role": Identity(
            name="test-role",
            arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/test-role/fn",
            principal_arn=f"arn:aws:iam::{ACCOUNT}:role/test-role",
            user_id="AROATEST:fn",
            access_key_id="ASIAROLETEST",
            secret_access_key=KEYS["role-secret"],
            session_token=KEYS["role-token"],
        ),
    }


def write_config(tmp: Path, aws_endpoint: str, functions: dict[str, Any], **extra: Any) -> Path:
    write_identities(tmp / "identities.json", _identities())
    config = {
        "service": "lambda",
        "host": "127.0.0.1",
        "port": 0,
        "ready_file": str(tmp / "lambda.ready"),
        "parent_pid": os.getpid(),
        "region": "us-east-1",
        "account_id": ACCOUNT,
        "identities_file": str(tmp / "identities.json"),
        "aws_endpoint_url": aws_endpoint,
        "python": sys.executable,
        "faults": {},
        "log_level": "INFO",
        "log_batch_interval_s": 0.5,
        "functions": {
            name: {**spec, "key": name, "log_group": f"/aws/lambda/{name}"} for name, spec in functions.items()
        },
        **extra,
    }
    (tmp / "lambda.json").write_text(json.dumps(config))
    return tmp / "lambda.json"


def start_service(tmp: Path, aws_endpoint: str, functions: dict[str, Any], **extra: Any) -> subprocess.Popen[bytes]:
    config = write_config(tmp, aws_endpoint, functions, **extra)
    with open(tmp / "lambda.log", "wb") as stderr:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "reference_stack.local.lambda_", "--config", str(config)],
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[2],
        )


def wait_ready(tmp: Path, process: subprocess.Popen[bytes]) -> int:
    def ready() -> int | None:
        if process.poll() is not None:
            raise AssertionError(f"lambda service exited {process.returncode}: {(tmp / 'lambda.log').read_text()}")
        path = tmp / "lambda.ready"
        return json.loads(path.read_text())["port"] if path.exists() else None

    return poll(ready, deadline_s=30, what="the lambda service's ready file")


def stop_and_check(process: subprocess.Popen[bytes], children: list[psutil.Process]) -> int:
    """SIGTERM the service; returns its exit status; fails if any environment outlived it."""
    process.send_signal(signal.SIGTERM)
    try:
        status = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    finally:
        leftovers = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        for c in leftovers:
            with contextlib.suppress(psutil.Error):
                c.kill()
    assert not leftovers, f"environments left running: {[c.pid for c in leftovers]}"
    return status


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("lambda")
    process = start_service(tmp, moto_endpoint, FUNCTIONS)
    seen: dict[int, psutil.Process] = {}
    try:
        port = wait_ready(tmp, process)
        logs = boto3.client(
            "logs",
            endpoint_url=moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="AKIAADMINTEST",
            aws_secret_access_key=KEYS["admin-secret"],
        )
        svc = Service(port=port, process=process, aws_endpoint=moto_endpoint, identities=_identities(), logs=logs)
        watcher = threading.Event()

        def remember_children() -> None:  # every environment ever started, to check teardown
            while not watcher.wait(0.1):
                with contextlib.suppress(psutil.Error):
                    for child in psutil.Process(process.pid).children(recursive=True):
                        seen.setdefault(child.pid, child)

        thread = threading.Thread(target=remember_children, daemon=True)
        thread.start()
        try:
            yield svc
        finally:
            watcher.set()
            thread.join()
    finally:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(process.pid).children(recursive=True):
                seen.setdefault(child.pid, child)
        assert stop_and_check(process, list(seen.values())) == 0


def stream_with_end(service: Service, function: str, request_id: str) -> list[str]:
    """The messages of the stream that logged END for ``request_id`` (polled until shipped)."""

    def find() -> list[str] | None:
        return next((m for m in service.events(function).values() if f"END RequestId: {request_id}\n" in m), None)

    return poll(find, what=f"END RequestId: {request_id} in /aws/lambda/{function}")


def reports(messages: list[str]) -> list[re.Match[str]]:
    return [m for m in (REPORT.match(msg) for msg in messages) if m]
