"""The lambda service as a real process: Invoke over HTTP, awslambdaric environments, logs in moto.

One service process (with a moto server as its aws endpoint) serves the module; each test
uses its own function so environments from one test do not warm another. The helpers and
fixtures are in lambda_service.py; the lifecycle tests (SIGTERM, parent death, idle
environments) are in test_lambda_service_lifecycle.py.
"""

# The fixtures imported from lambda_service.py come back as test arguments (pytest injects them).
# ruff: noqa: F811
from __future__ import annotations

import base64
import json
import os
import re
import threading
import uuid
from typing import Any

import boto3
import psutil
import pytest

from tests.integration.lambda_service import (  # noqa: F401 - moto_endpoint and service are fixtures
    ACCOUNT,
    HANDLERS,
    KEYS,
    REPORT,
    STREAM,
    Service,
    moto_endpoint,
    poll,
    reports,
    request,
    service,
    stream_with_end,
)

pytestmark = pytest.mark.integration


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
