"""The lambda service as a real process: Invoke over HTTP, awslambdaric environments, logs in moto.

One service process (with a moto server as its aws endpoint) serves the module; each test
uses its own function so environments from one test do not warm another. A separate test
starts its own service to prove SIGTERM stops every environment it started.
"""

from __future__ import annotations

import base64
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

pytestmark = pytest.mark.integration

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


# -- Invoke API -------------------------------------------------------------------------------
def test_echo_returns_the_event_with_lambda_headers(service: Service) -> None:
    event = {"hello": "world", "n": [1, 2, 3], "nested": {"ok": True}}
    status, headers, body = service.invoke("echo", event)
    assert status == 200
    assert body == event
    assert uuid.UUID(headers["x-amzn-requestid"])
    assert headers["x-amz-executed-version"] == "$LATEST"
    assert "x-amz-function-error" not in headers


def test_invoke_by_arn_and_qualifier(service: Service) -> None:
    arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:echo"
    assert service.invoke(arn, {"a": 1})[2] == {"a": 1}
    status, _, body = request(
        service.port, "POST", "/2015-03-31/functions/echo/invocations?Qualifier=%24LATEST", b'{"a": 2}'
    )
    assert (status, body) == (200, {"a": 2})
    status, headers, body = service.invoke("echo:7", {})
    assert status == 404 and headers["x-amzn-errortype"] == "ResourceNotFoundException"


def test_log_tail_is_the_invocations_log_via_boto3(service: Service) -> None:
    client = boto3.client(
        "lambda",
        endpoint_url=f"http://127.0.0.1:{service.port}",
        region_name="us-east-1",
        aws_access_key_id="AKIAADMINTEST",
        aws_secret_access_key=KEYS["admin-secret"],
    )
    answer = client.invoke(FunctionName="print", Payload=b'{"tag": "tail"}', LogType="Tail")
    assert answer["StatusCode"] == 200 and answer["ExecutedVersion"] == "$LATEST"
    assert json.loads(answer["Payload"].read())["printed"] == 2
    rid = answer["ResponseMetadata"]["RequestId"]
    tail = base64.b64decode(answer["LogResult"]).decode()
    assert f"START RequestId: {rid} Version: $LATEST\n" in tail
    assert "testfns: to stdout tail\n" in tail and f"END RequestId: {rid}\n" in tail
    assert REPORT.match(tail.splitlines(keepends=True)[-1])
    failed = client.invoke(FunctionName="fail", Payload=b"{}")
    assert failed["FunctionError"] == "Unhandled"
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="nope", Payload=b"{}")


def test_unknown_function_is_404_resource_not_found(service: Service) -> None:
    status, headers, body = service.invoke("nope", {})
    assert status == 404
    assert headers["x-amzn-errortype"] == "ResourceNotFoundException"
    assert body == {"Type": "User", "message": f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:nope"}
    assert headers["x-amzn-requestid"]


def test_invalid_json_payload_is_rejected(service: Service) -> None:
    status, headers, body = service.invoke("echo", raw=b"{not json")
    assert status == 400
    assert headers["x-amzn-errortype"] == "InvalidRequestContentException"


def test_payload_limits_are_six_megabytes(service: Service) -> None:
    status, headers, _ = service.invoke("echo", raw=b'"' + b"x" * 6_291_456 + b'"')
    assert status == 413 and headers["x-amzn-errortype"] == "RequestTooLargeException"
    status, headers, body = service.invoke("big", {"bytes": 1_000_000})
    assert status == 200 and len(body) == 1_000_000
    status, headers, body = service.invoke("big", {"bytes": 6_400_000})
    assert status == 200 and headers["x-amz-function-error"] == "Unhandled"
    assert body["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291556 bytes" in body["errorMessage"]


def test_event_invocation_type_is_refused_with_the_fix(service: Service) -> None:
    status, headers, body = service.invoke("echo", {}, headers={"X-Amz-Invocation-Type": "Event"})
    assert status == 400 and "RequestResponse" in body["message"] and "'Event'" in body["message"]


def test_health(service: Service) -> None:
    assert service.admin("GET", "health")[2] == {"status": "ok", "service": "lambda"}


# -- logs, cold and warm starts ---------------------------------------------------------------
def test_cold_start_reports_init_duration_once_and_reuses_the_environment(service: Service) -> None:
    _, h1, _ = service.invoke("coldwarm", {"n": 1})
    _, h2, _ = service.invoke("coldwarm", {"n": 2})
    first, second = h1["x-amzn-requestid"], h2["x-amzn-requestid"]

    def both_reported() -> dict[str, list[str]] | None:
        streams = service.events("coldwarm")
        ids = {m["id"] for msgs in streams.values() for m in reports(msgs)}
        return streams if {first, second} <= ids else None

    streams = poll(both_reported, what="REPORT lines of both invocations")
    assert len(streams) == 1, "the second invocation must reuse the first environment"
    ((name, messages),) = streams.items()
    assert STREAM.match(name)
    assert f"START RequestId: {first} Version: $LATEST\n" in messages
    assert f"END RequestId: {second}\n" in messages
    order = [
        messages.index(f"START RequestId: {first} Version: $LATEST\n"),
        messages.index(f"END RequestId: {first}\n"),
        messages.index(f"START RequestId: {second} Version: $LATEST\n"),
        messages.index(f"END RequestId: {second}\n"),
    ]
    assert order == sorted(order)
    by_id = {m["id"]: m for m in reports(messages)}
    cold, warm = by_id[first], by_id[second]
    assert cold["init"] is not None and float(cold["init"]) > 0
    assert warm["init"] is None
    for rep in (cold, warm):
        assert rep["memory"] == "128"
        assert int(rep["used"]) > 0
        assert int(rep["billed"]) == max(1, -(-float(rep["duration"]) // 1))  # ceil, 1 ms granularity
        assert rep["status"] is None


def test_handler_output_lands_between_start_and_end(service: Service) -> None:
    tag = uuid.uuid4().hex[:8]
    _, headers, body = service.invoke("print", {"tag": tag})
    rid = headers["x-amzn-requestid"]
    messages = stream_with_end(service, "print", rid)
    start = messages.index(f"START RequestId: {rid} Version: $LATEST\n")
    end = messages.index(f"END RequestId: {rid}\n")
    between = messages[start + 1 : end]
    assert f"testfns: to stdout {tag}\n" in between
    assert f"testfns: to stderr {tag}\n" in between
    assert "testfns: init\n" in messages[:start], "module-level output belongs to the init phase"


def test_environment_variables_match_lambda(service: Service) -> None:
    status, headers, body = service.invoke("environ", {})
    assert status == 200, body
    env = body["env"]
    role = service.identities["test-role"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "environ"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1", "reserved names win over the function's"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/environ"
    assert STREAM.match(env["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert env["AWS_LAMBDA_LOG_STREAM_NAME"] == body["log_stream"]
    assert env["_HANDLER"] == "testfns.environ"
    assert env["LAMBDA_TASK_ROOT"] == str(HANDLERS) == body["cwd"]
    assert str(HANDLERS) in env["PYTHONPATH"].split(os.pathsep)
    assert re.match(r"^127\.0\.0\.1:\d+$", env["AWS_LAMBDA_RUNTIME_API"])
    assert int(env["AWS_LAMBDA_RUNTIME_API"].split(":")[1]) != service.port, "one Runtime API per environment"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["TZ"] == "UTC" and env["LANG"] == "en_US.UTF-8"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]) == (
        role.access_key_id,
        role.secret_access_key,
        role.session_token,
    )
    assert env["AWS_ENDPOINT_URL"] == service.aws_endpoint
    assert env["TABLE_NAME"] == "EventLog"
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert body["request_id"] == headers["x-amzn-requestid"]
    assert body["function_arn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:environ"
    assert 0 < body["remaining_ms"] <= 3000
    assert body["memory"] == "256"


# -- failures -------------------------------------------------------------------------------
def test_handler_exception_is_an_unhandled_function_error(service: Service) -> None:
    status, headers, body = service.invoke("fail", {"why": "test"})
    assert status == 200
    assert headers["x-amz-function-error"] == "Unhandled"
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "failing on purpose: test"
    assert isinstance(body["stackTrace"], list) and body["stackTrace"]
    messages = stream_with_end(service, "fail", headers["x-amzn-requestid"])
    assert any(m.startswith("[ERROR] ValueError: failing on purpose: test") for m in messages)


def test_reserved_concurrency_throttles_at_once(service: Service) -> None:
    results: list[tuple[int, dict[str, str], Any]] = []
    slow = threading.Thread(target=lambda: results.append(service.invoke("slow1", {"seconds": 3})))
    slow.start()
    try:

        def busy() -> bool:
            envs = service.admin("GET", "environments")[2]["slow1"]["environments"]
            return any(e["busy"] for e in envs)

        poll(busy, what="slow1's environment to be busy")
        status, headers, body = service.invoke("slow1", {"seconds": 0})
    finally:
        slow.join(timeout=30)
    assert status == 429
    assert headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert body == {
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
        "Type": "User",
        "message": "Rate Exceeded.",
    }
    assert headers["x-amzn-requestid"]
    assert results and results[0][0] == 200 and "x-amz-function-error" not in results[0][1]
    # The slot is free again once the slow invocation is done.
    assert service.invoke("slow1", {"seconds": 0})[0] == 200


def test_zero_reserved_concurrency_always_throttles(service: Service) -> None:
    assert service.invoke("throttled0", {})[0] == 429


def test_timeout_kills_the_environment_and_the_next_invoke_cold_starts(service: Service) -> None:
    status, _, body = service.invoke("timeout", {"seconds": 0})
    assert status == 200
    first_pid = body["pid"]
    status, headers, body = service.invoke("timeout", {"seconds": 30})
    rid = headers["x-amzn-requestid"]
    assert status == 200
    assert headers["x-amz-function-error"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(rf"RequestId: {rid} Error: Task timed out after 1\.\d\d seconds", body["errorMessage"])
    poll(
        lambda: not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE,
        what="the timed-out environment's process to be gone",
    )
    status, headers2, body = service.invoke("timeout", {"seconds": 0})
    assert status == 200 and body["pid"] != first_pid
    rid2 = headers2["x-amzn-requestid"]

    def both() -> dict[str, list[str]] | None:
        streams = service.events("timeout")
        ids = {m["id"] for msgs in streams.values() for m in reports(msgs)}
        return streams if {rid, rid2} <= ids else None

    streams = poll(both, what="REPORT lines of the timed-out and the next invocation")
    assert len(streams) == 2, "the invocation after a timeout runs in a new environment"
    all_messages = [m for msgs in streams.values() for m in msgs]
    by_id = {m["id"]: m for m in reports(all_messages)}
    assert by_id[rid]["status"] == "timeout"
    assert float(by_id[rid]["duration"]) >= 1000
    assert by_id[rid2]["init"] is not None, "a new environment reports Init Duration"
    assert any(
        re.fullmatch(rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{{3}}Z {rid} Task timed out after 1\.\d\d seconds\n", m)
        for m in all_messages
    )


def test_crash_is_runtime_exit_error_and_the_environment_is_replaced(service: Service) -> None:
    first_pid = service.invoke("crash", {})[2]["pid"]
    status, headers, body = service.invoke("crash", {"crash": True, "status": 3})
    rid = headers["x-amzn-requestid"]
    assert status == 200 and headers["x-amz-function-error"] == "Unhandled"
    assert body == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 3",
    }
    status, _, body = service.invoke("crash", {})
    assert status == 200 and body["pid"] != first_pid
    streams = poll(lambda: (s := service.events("crash")) and len(s) == 2 and s, what="two crash streams")
    crashed = next(msgs for msgs in streams.values() if f"END RequestId: {rid}\n" in msgs)
    assert "testfns: crashing now\n" in crashed
    assert f"RequestId: {rid} Error: Runtime exited with error: exit status 3\nRuntime.ExitError\n" in crashed
    rep = next(m for m in reports(crashed) if m["id"] == rid)
    assert (rep["status"], rep["etype"]) == ("error", "Runtime.ExitError")


def test_init_error_fails_the_invocation_with_the_runtime_error(service: Service) -> None:
    status, headers, body = service.invoke("noinit", {})
    assert status == 200 and headers["x-amz-function-error"] == "Unhandled"
    assert body["errorType"] == "Runtime.HandlerNotFound"
    assert body["errorMessage"] == "Handler 'nothere' missing on module 'testfns'"
    messages = stream_with_end(service, "noinit", headers["x-amzn-requestid"])
    assert any(
        m.startswith("INIT_REPORT Init Duration: ") and "Status: error\tError Type: Runtime.HandlerNotFound" in m
        for m in messages
    )
    # The failed environment is discarded: the next invocation tries a fresh one.
    assert service.invoke("noinit", {})[2]["errorType"] == "Runtime.HandlerNotFound"
    poll(lambda: len(service.events("noinit")) == 2, what="a second environment for noinit")


# -- faults ---------------------------------------------------------------------------------
def test_faults_inject_errors_and_timeouts(service: Service) -> None:
    try:
        status, _, active = service.admin("POST", "faults", {"lambda-error": 1})
        assert status == 200 and active == {"lambda-error": 1.0}
        assert service.admin("GET", "faults")[2] == {"lambda-error": 1.0}
        status, headers, body = service.invoke("faulty", {})
        assert status == 200 and headers["x-amz-function-error"] == "Unhandled"
        assert body["errorType"] == "LoadcheckInjectedError"
        assert body["requestId"] == headers["x-amzn-requestid"]

        service.admin("POST", "faults", {"lambda-error": None, "lambda-timeout": 1})
        status, headers, body = service.invoke("faulty", {})
        assert status == 200 and body["errorType"] == "Sandbox.Timedout"
        rid = headers["x-amzn-requestid"]
        assert re.fullmatch(rf"RequestId: {rid} Error: Task timed out after 1\.\d\d seconds", body["errorMessage"])
        messages = stream_with_end(service, "faulty", rid)
        assert next(m for m in reports(messages) if m["id"] == rid)["status"] == "timeout"
    finally:
        service.admin("POST", "faults", {"lambda-error": None, "lambda-timeout": None})
    assert service.admin("GET", "faults")[2] == {}
    assert service.invoke("faulty", {})[0] == 200 and "x-amz-function-error" not in service.invoke("faulty", {})[1]


@pytest.mark.parametrize(
    ("doc", "named"),
    [({"lambda-eror": 1}, "lambda-eror"), ({"lambda-error": 2}, "2"), ({"lambda-error": "x"}, "'x'"), ([1], "object")],
)
def test_bad_faults_are_400_naming_the_value(service: Service, doc: Any, named: str) -> None:
    status, _, body = service.admin("POST", "faults", doc)
    assert status == 400
    assert named in body["message"] and body["fix"]


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
