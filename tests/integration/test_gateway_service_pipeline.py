"""The gateway as a real process over real HTTPS: integration failures, throttling, CORS, 413,
access logs in (moto) CloudWatch Logs, SIGTERM flush and parent death. The shared ``stack``
fixture is in gateway_stack.py.
"""

# The fixtures imported from gateway_stack.py come back as test arguments (pytest injects them).
# ruff: noqa: F811
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from loadcheck.core.sigv4 import Signer
from reference_stack.local.common.launcher import REPO_ROOT
from reference_stack.local.gateway import harness
from tests.integration.gateway_stack import (  # noqa: F401 - stack and resolve_domain are fixtures
    DOMAIN,
    PAYLOAD_LIMIT,
    REGION,
    Stack,
    _creds,
    resolve_domain,
    signed,
    stack,
)

pytestmark = pytest.mark.integration


# -- integration failures, throttling, CORS, 413 -------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "message", "integration_status"),
    [
        ("/boom", 500, "Internal Server Error", "200"),
        ("/malformed", 500, "Internal Server Error", "200"),
        ("/busy", 500, "Internal Server Error", "429"),
        ("/slow", 503, "Service Unavailable", "-"),
    ],
)
def test_integration_failures_map_to_500_and_503(
    stack: Stack, path: str, status: int, message: str, integration_status: str
) -> None:
    resp = signed(stack, "GET", path)
    assert resp.status_code == status and resp.json() == {"message": message}
    record = stack.record_for(resp.headers["apigw-requestid"])
    assert record["status"] == str(status)
    assert record["integrationStatus"] == integration_status
    assert record["integrationErrorMessage"] != "-"
    assert record["errorMessage"] == message


def test_route_throttle_answers_429(stack: Stack) -> None:
    statuses = [signed(stack, "GET", "/limited").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]  # burst 2, rate 0
    resp = signed(stack, "GET", "/limited")
    assert resp.json() == {"message": "Too Many Requests"}
    assert stack.record_for(resp.headers["apigw-requestid"])["errorResponseType"] == "THROTTLED"


def test_throttle_status_fault_rewrites_integration_429(stack: Stack) -> None:
    assert signed(stack, "GET", "/throttled").status_code == 429
    try:
        stack.admin("POST", "/_loadcheck/faults", {"throttle-status": 500})
        assert signed(stack, "GET", "/throttled").status_code == 500
    finally:
        stack.admin("POST", "/_loadcheck/faults", {"throttle-status": None})


def test_cors_preflight_answered_without_auth(stack: Stack) -> None:
    resp = requests.options(
        f"{stack.url}/events",
        headers={
            "Origin": "https://app.loadcheck.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        verify=stack.tls.ca_file,
        timeout=30,
    )
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == "https://app.loadcheck.test"
    assert "POST" in resp.headers["access-control-allow-methods"].split(",")
    assert resp.headers["access-control-max-age"] == "300"
    simple = signed(stack, "GET", "/events", headers={"Origin": "https://app.loadcheck.test"})
    assert simple.headers["access-control-allow-origin"] == "https://app.loadcheck.test"
    assert "apigw-requestid" in simple.headers["access-control-expose-headers"]


def test_body_over_the_payload_limit_gets_413(stack: Stack) -> None:
    resp = signed(stack, "POST", "/events", body=b"x" * (PAYLOAD_LIMIT + 1), headers={"Content-Type": "text/plain"})
    assert resp.status_code == 413 and resp.json() == {"message": "Request Entity Too Large"}
    assert stack.record_for(resp.headers["apigw-requestid"])["status"] == "413"
    assert (
        signed(stack, "POST", "/events", body=b"x" * PAYLOAD_LIMIT, headers={"Content-Type": "text/plain"}).status_code
        == 200
    )


def test_chunked_bodies_are_read_and_limited(stack: Stack) -> None:
    host = f"{DOMAIN}:{stack.port}"
    body = b'{"chunked": true}'

    def chunks(data: bytes) -> Iterator[bytes]:
        yield from (data[i : i + 5] for i in range(0, len(data), 5))

    h = Signer("execute-api", REGION).sign(_creds(stack), "POST", host, "/events", body=body)
    resp = requests.post(
        stack.url + "/events",
        data=chunks(body),
        headers={**h, "Content-Type": "application/json"},
        verify=stack.tls.ca_file,
        timeout=30,
    )
    assert resp.status_code == 200 and resp.json()["body"] == body.decode()
    assert resp.json()["headers"]["transfer-encoding"] == "chunked"
    big = b"z" * (PAYLOAD_LIMIT * 4)
    h = Signer("execute-api", REGION).sign(_creds(stack), "POST", host, "/events", body=big)
    resp = requests.post(
        stack.url + "/events",
        data=chunks(big),
        headers={**h, "Content-Type": "text/plain"},
        verify=stack.tls.ca_file,
        timeout=30,
    )
    assert resp.status_code == 413


def test_a_large_oversize_body_is_drained_so_the_client_reads_its_413(stack: Stack) -> None:
    # 256 times the limit: far more than the socket buffers hold, so the gateway must read it.
    big = b"y" * (PAYLOAD_LIMIT * 256)
    host = f"{DOMAIN}:{stack.port}"
    with requests.Session() as session:
        h = Signer("execute-api", REGION).sign(_creds(stack), "POST", host, "/events", body=big)
        resp = session.post(
            stack.url + "/events",
            data=big,
            headers={**h, "Content-Type": "text/plain"},
            verify=stack.tls.ca_file,
            timeout=30,
        )
        assert resp.status_code == 413 and resp.headers.get("connection") != "close"
        h = Signer("execute-api", REGION).sign(_creds(stack), "GET", host, "/events")
        assert session.get(stack.url + "/events", headers=h, verify=stack.tls.ca_file, timeout=30).status_code == 200


# -- access logs: one complete record per request ------------------------------------------------


def test_every_request_has_exactly_one_complete_access_log_record(stack: Stack) -> None:
    with requests.Session() as session:  # one keep-alive connection for all of them
        responses = [signed(stack, "GET", "/events") for _ in range(5)]
        responses.append(requests.get(stack.url + "/events", verify=stack.tls.ca_file, timeout=30))
        responses.append(signed(stack, "GET", "/nowhere"))
        responses.append(signed(stack, "GET", "/boom"))
        responses.append(signed(stack, "GET", "/events", name="denied"))
        responses.append(session.get(stack.url + "/events", verify=stack.tls.ca_file, timeout=30))
    ids = [r.headers["apigw-requestid"] for r in responses]
    assert len(set(ids)) == len(ids)
    fmt = stack.gateway.config["access_log"]["format"] if stack.gateway else {}
    end = time.monotonic() + 10
    while True:
        records = stack.records()
        if all(i in records for i in ids) or time.monotonic() > end:
            break
        time.sleep(0.1)  # polling CloudWatch Logs against a deadline
    for resp, rid in zip(responses, ids, strict=True):
        found = records.get(rid, [])
        assert len(found) == 1, f"{rid}: {len(found)} records"
        rec = found[0]
        assert set(rec) == set(fmt), f"fields differ: {set(fmt) ^ set(rec)}"
        assert all(isinstance(v, str) and v != "" for v in rec.values())
        assert rec["status"] == str(resp.status_code)
        assert rec["domainName"] == DOMAIN and rec["ip"] == "127.0.0.1" and rec["protocol"] == "HTTP/1.1"
        assert int(rec["requestTimeEpoch"]) > 1_700_000_000_000  # milliseconds
        dt.datetime.strptime(rec["requestTime"], "%d/%b/%Y:%H:%M:%S %z")
        assert rec["responseLength"] == str(len(resp.content))
    by_status = {records[i][0]["status"]: records[i][0] for i in ids}
    assert by_status["404"]["routeKey"] == "-" and by_status["404"]["errorMessage"] == "Not Found"
    assert by_status["200"]["integrationStatus"] == "200" and by_status["200"]["authorizerError"] == "-"


# -- process contract: SIGTERM flushes, parent death ---------------------------------------------


def test_sigterm_flushes_pending_access_logs(stack: Stack) -> None:
    cfg = stack.config(ready_file=str(stack.tmp / "g2.ready"))
    cfg["access_log"] = dict(cfg["access_log"], delivery_delay_s=3600)
    gw = harness.start_gateway(cfg, stack.tmp / "g2.json")
    try:
        host = f"{DOMAIN}:{gw.port}"
        h = Signer("execute-api", REGION).sign(_creds(stack), "GET", host, "/events")
        resp = requests.get(f"https://{host}/events", headers=h, verify=stack.tls.ca_file, timeout=30)
        assert resp.status_code == 200
        rid = resp.headers["apigw-requestid"]
        assert gw.stop() == 0
    finally:
        gw.stop()
    assert len(stack.records(flush=False).get(rid, [])) == 1


def test_sigterm_waits_for_in_flight_requests_and_ships_their_records(stack: Stack) -> None:
    cfg = stack.config(ready_file=str(stack.tmp / "g4.ready"))
    cfg["access_log"] = dict(cfg["access_log"], delivery_delay_s=3600)
    gw = harness.start_gateway(cfg, stack.tmp / "g4.json")
    answers: list[requests.Response] = []
    try:
        host = f"{DOMAIN}:{gw.port}"
        h = Signer("execute-api", REGION).sign(_creds(stack), "GET", host, "/slow")
        before = sum(1 for name, _ in stack.invoke.invocations if name == "slow")

        def call() -> None:
            with contextlib.suppress(requests.RequestException):  # asserted below: no answer, no 503
                answers.append(requests.get(f"https://{host}/slow", headers=h, verify=stack.tls.ca_file, timeout=30))

        client = threading.Thread(target=call)
        client.start()
        end = time.monotonic() + 10
        while sum(1 for name, _ in stack.invoke.invocations if name == "slow") == before:
            assert time.monotonic() < end, "the slow function was never invoked"
            time.sleep(0.02)  # polling the Invoke seam against a deadline
        assert gw.stop() == 0  # SIGTERM while the request waits on its integration
        client.join(30)
    finally:
        gw.stop()
    assert answers and answers[0].status_code == 503
    rid = answers[0].headers["apigw-requestid"]
    assert [r["status"] for r in stack.records(flush=False).get(rid, [])] == ["503"]


PARENT = """
import json, subprocess, sys
cfg = json.load(open(sys.argv[1])); import os; cfg["parent_pid"] = os.getpid()
json.dump(cfg, open(sys.argv[1], "w"))
p = subprocess.Popen([sys.executable, "-m", "reference_stack.local.gateway", "--config", sys.argv[1]],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(p.pid, flush=True)
sys.stdin.read()
"""


def test_gateway_exits_when_its_parent_dies(stack: Stack) -> None:
    cfg_path = stack.tmp / "g3.json"
    cfg_path.write_text(json.dumps(stack.config(ready_file=str(stack.tmp / "g3.ready"))))
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(cfg_path)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child_pid = None
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        end = time.monotonic() + 30
        while not (stack.tmp / "g3.ready").is_file() and time.monotonic() < end:
            time.sleep(0.05)  # polling the ready file against a deadline
        assert (stack.tmp / "g3.ready").is_file()
        parent.kill()
        parent.wait(10)
        end = time.monotonic() + 15
        while psutil.pid_exists(child_pid) and psutil.Process(child_pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < end, "gateway still running 15 s after its parent died"
            time.sleep(0.1)  # polling the process table against a deadline
    finally:
        parent.kill()
        parent.wait(10)
        if child_pid and psutil.pid_exists(child_pid):
            os.kill(child_pid, 9)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["seam", "lambda"])
def test_bench_drives_signed_requests_through_the_gateway(tmp_path: Path, backend: str) -> None:
    from loadcheck.bench.gateway import run_bench

    result = run_bench(connections=2, duration_s=1.0, warmup_s=0.5, backend=backend, work_dir=tmp_path)
    assert result["requests"] > 0 and result["errors"] == 0
    assert result["statuses"] == {"200": result["requests"]}
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"] <= result["latency_ms"]["max"]
