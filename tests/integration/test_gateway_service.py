"""The gateway as a real process over real HTTPS: TLS, hosts, SigV4 from three clients, IAM,
payload 2.0, integration failures, throttling, CORS, 413, access logs in (moto) CloudWatch Logs,
faults, SIGTERM flush and parent death.

Seams: moto's ThreadedMotoServer for CloudWatch Logs; a real HTTP server implementing the Lambda
Invoke API (``harness.InvokeServer``) with functions defined here; name resolution of the
custom domain to 127.0.0.1 (``getaddrinfo`` for Python clients, ``--resolve`` for curl), as a
Route 53 alias would resolve it on AWS.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from moto.server import ThreadedMotoServer
from requests_aws4auth import AWS4Auth

from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.state import Identity
from reference_stack.local.gateway import harness

pytestmark = pytest.mark.integration

DOMAIN = "events.loadcheck.test"
API = "a1b2c3d4e5"
REGION = "us-east-1"
DEFAULT_HOST = f"{API}.execute-api.{REGION}.amazonaws.com"
GROUP = "/aws/apigateway/loadcheck-http-api"
PAYLOAD_LIMIT = 4096
ROUTES = {
    "GET /events": "echo",
    "POST /events": "echo",
    "GET /boom": "boom",
    "GET /malformed": "malformed",
    "GET /slow": "slow",
    "GET /busy": "busy",
    "GET /inferred": "inferred",
    "GET /limited": "echo",
    "GET /throttled": "throttled",
}


def _echo(event: dict[str, Any]) -> harness.InvokeAnswer:
    return harness.InvokeAnswer(
        {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "cookies": ["session=1; Secure"],
            "body": json.dumps(event),
        }
    )


class Functions:
    def __init__(self) -> None:
        self.release = threading.Event()

    def table(self) -> dict[str, harness.LambdaFunction]:
        def boom(event: dict[str, Any]) -> harness.InvokeAnswer:
            raise ValueError("boom from the handler")

        def slow(event: dict[str, Any]) -> harness.InvokeAnswer:
            self.release.wait(30)  # runs past the integration timeout until the test ends
            return _echo(event)

        return {
            "echo": _echo,
            "boom": boom,
            "slow": slow,
            "malformed": lambda e: harness.InvokeAnswer(b"this is not json"),
            "busy": lambda e: harness.InvokeAnswer(
                {
                    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                    "Type": "User",
                    "message": "Rate Exceeded.",
                },
                429,
                {"x-amzn-ErrorType": "TooManyRequestsException"},
            ),
            "inferred": lambda e: harness.InvokeAnswer({"message": "Hello from Lambda!"}),
            "throttled": lambda e: harness.InvokeAnswer(
                {"statusCode": 429, "headers": {"retry-after": "1"}, "body": '{"message":"throttled"}'}
            ),
        }


class Stack:
    """Everything one module's tests share."""

    def __init__(self, tmp: Path, moto_url: str, invoke: harness.InvokeServer, functions: Functions) -> None:
        self.tmp = tmp
        self.moto_url = moto_url
        self.invoke = invoke
        self.functions = functions
        self.tls = harness.make_tls_files(tmp / "tls", [DOMAIN, DEFAULT_HOST, "127.0.0.1"])
        self.identities: dict[str, Identity] = harness.make_identities(
            tmp / "identities.json", region=REGION, api_id=API, routes=list(ROUTES)
        )
        self.logs = boto3.client(
            "logs", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="admin", aws_secret_access_key="admin"
        )  # noqa: S106 - moto
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=GROUP)  # moto's state is shared within the process
        self.gateway: harness.GatewayProcess | None = None

    def config(self, **overrides: Any) -> dict[str, Any]:
        return harness.gateway_config(
            directory=self.tmp,
            tls=self.tls,
            identities_file=self.tmp / "identities.json",
            lambda_endpoint=self.invoke.endpoint,
            routes=ROUTES,
            aws_endpoint_url=self.moto_url,
            api_id=API,
            domain=DOMAIN,
            region=REGION,
            log_group=GROUP,
            payload_limit_bytes=PAYLOAD_LIMIT,
            integration_timeout_s=1.0,
            route_throttle={"GET /limited": {"rate_limit": 0, "burst_limit": 2}},
            **overrides,
        )

    @property
    def port(self) -> int:
        assert self.gateway is not None
        return self.gateway.port

    @property
    def url(self) -> str:
        return f"https://{DOMAIN}:{self.port}"

    def admin(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"https://127.0.0.1:{self.port}{path}", json=body, verify=self.tls.ca_file, timeout=30
        )

    def records(self, *, flush: bool = True) -> dict[str, list[dict[str, str]]]:
        """Flush the gateway (unless told not to) and read every access-log record, by request id."""
        if flush:
            assert self.admin("POST", "/_loadcheck/flush").status_code == 200
        out: dict[str, list[dict[str, str]]] = {}
        for stream in self.logs.describe_log_streams(logGroupName=GROUP)["logStreams"]:
            kwargs: dict[str, Any] = {
                "logGroupName": GROUP,
                "logStreamName": stream["logStreamName"],
                "startFromHead": True,
            }
            while True:
                page = self.logs.get_log_events(**kwargs)
                for event in page["events"]:
                    rec = json.loads(event["message"])
                    out.setdefault(rec["requestId"], []).append(rec)
                if not page["events"] or page["nextForwardToken"] == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextForwardToken"]
        return out

    def record_for(self, request_id: str, deadline_s: float = 10.0) -> dict[str, str]:
        end = time.monotonic() + deadline_s
        while True:
            found = self.records().get(request_id, [])
            if found or time.monotonic() > end:
                assert len(found) == 1, f"{len(found)} access-log records for {request_id}"
                return found[0]
            time.sleep(0.1)  # polling CloudWatch Logs against a deadline


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    functions = Functions()
    try:
        host, port = moto.get_host_and_port()
        with harness.InvokeServer(functions.table()) as invoke:
            st = Stack(tmp_path_factory.mktemp("gateway"), f"http://{host}:{port}", invoke, functions)
            st.gateway = harness.GatewayProcess(st.config(), st.tmp / "gateway.json").start()
            try:
                yield st
            finally:
                functions.release.set()
                st.gateway.stop()
    finally:
        moto.stop()


@pytest.fixture(autouse=True)
def resolve_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS for the custom domain and the default endpoint host: 127.0.0.1 (Route 53's job on AWS)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host in (DOMAIN, DEFAULT_HOST) else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _creds(stack: Stack, name: str = "requester") -> Credentials:
    ident = stack.identities[name]
    return Credentials(ident.access_key_id, ident.secret_access_key, ident.session_token)


def signed(
    stack: Stack,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    name: str = "requester",
    headers: dict[str, str] | None = None,
    region: str = REGION,
    service: str = "execute-api",
    amz_date: str | None = None,
) -> requests.Response:
    raw_path, _, query = path.partition("?")
    host = f"{DOMAIN}:{stack.port}"
    h = dict(headers or {})
    h.update(
        Signer(service, region).sign(
            _creds(stack, name), method, host, raw_path, query, h, body=body, amz_date=amz_date
        )
    )
    return requests.request(method, stack.url + path, data=body, headers=h, verify=stack.tls.ca_file, timeout=30)


# -- success paths, three independent signers --------------------------------------------------


def test_signed_get_reaches_the_function_with_a_2_0_event(stack: Stack) -> None:
    resp = signed(stack, "GET", "/events?date=2026-11-21&date=2026-11-22", headers={"Cookie": "a=1; b=2"})
    assert resp.status_code == 200, resp.text
    event = resp.json()
    assert event["routeKey"] == "GET /events" and event["rawQueryString"] == "date=2026-11-21&date=2026-11-22"
    assert event["queryStringParameters"] == {"date": "2026-11-21,2026-11-22"}
    assert event["cookies"] == ["a=1", "b=2"]
    rc = event["requestContext"]
    assert rc["requestId"] == resp.headers["apigw-requestid"]
    assert rc["domainName"] == DOMAIN and rc["stage"] == "$default"
    assert rc["authorizer"]["iam"]["userArn"] == stack.identities["requester"].arn
    assert resp.headers["set-cookie"] == "session=1; Secure"


def test_signed_post_with_json_and_binary_bodies(stack: Stack) -> None:
    resp = signed(stack, "POST", "/events", body=b'{"date":"2026-11-21"}', headers={"Content-Type": "application/json"})
    assert resp.status_code == 200
    assert resp.json()["body"] == '{"date":"2026-11-21"}' and resp.json()["isBase64Encoded"] is False
    resp = signed(stack, "POST", "/events", body=b"\x00\x01", headers={"Content-Type": "application/octet-stream"})
    assert resp.status_code == 200
    assert resp.json()["isBase64Encoded"] is True and base64.b64decode(resp.json()["body"]) == b"\x00\x01"


def test_botocore_sigv4auth_is_accepted(stack: Stack) -> None:
    ident = stack.identities["requester"]
    req = AWSRequest(
        method="POST",
        url=f"{stack.url}/events?x=1&a=b%20c",
        data=b'{"k":"v"}',
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(BotoCredentials(ident.access_key_id, ident.secret_access_key), "execute-api", REGION).add_auth(req)
    resp = requests.post(
        req.url, data=req.body, headers=dict(req.headers.items()), verify=stack.tls.ca_file, timeout=30
    )
    assert resp.status_code == 200, resp.text


def test_requests_aws4auth_is_accepted(stack: Stack) -> None:
    ident = stack.identities["requester"]
    auth = AWS4Auth(ident.access_key_id, ident.secret_access_key, REGION, "execute-api")
    resp = requests.get(
        f"{stack.url}/events",
        params={"date": "2026-11-21", "q": "a b"},
        auth=auth,
        verify=stack.tls.ca_file,
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    resp = requests.post(f"{stack.url}/events", json={"k": "v"}, auth=auth, verify=stack.tls.ca_file, timeout=30)
    assert resp.status_code == 200, resp.text


def test_curl_aws_sigv4_is_accepted(stack: Stack) -> None:
    version = subprocess.run(["/usr/bin/curl", "--version"], capture_output=True, text=True, check=True).stdout
    assert "7.88" in version or "8." in version  # --aws-sigv4 exists since 7.75
    ident = stack.identities["requester"]
    base = [
        "/usr/bin/curl",
        "-sS",
        "--cacert",
        stack.tls.ca_file,
        "--resolve",
        f"{DOMAIN}:{stack.port}:127.0.0.1",
        "--aws-sigv4",
        f"aws:amz:{REGION}:execute-api",
        "--user",
        f"{ident.access_key_id}:{ident.secret_access_key}",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    ]
    get = subprocess.run([*base, f"{stack.url}/events?date=2026-11-21"], capture_output=True, text=True, timeout=30)
    assert get.stdout == "200", get.stderr
    post = subprocess.run(
        [*base, "-H", "content-type: application/json", "--data", '{"k":"v"}', f"{stack.url}/events"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert post.stdout == "200", post.stderr


def test_inferred_response_form(stack: Stack) -> None:
    resp = signed(stack, "GET", "/inferred")
    assert resp.status_code == 200 and resp.json() == {"message": "Hello from Lambda!"}
    assert resp.headers["content-type"] == "application/json"


# -- refusals ------------------------------------------------------------------------------------


def _tamper(stack: Stack) -> requests.Response:
    h = Signer("execute-api", REGION).sign(
        _creds(stack), "POST", f"{DOMAIN}:{stack.port}", "/events", "", body=b"original"
    )
    return requests.post(stack.url + "/events", data=b"tampered", headers=h, verify=stack.tls.ca_file, timeout=30)


@pytest.mark.parametrize(
    ("case", "send", "body_message", "error_type", "detail"),
    [
        (
            "unsigned",
            lambda s: requests.get(s.url + "/events", verify=s.tls.ca_file, timeout=30),
            "Forbidden",
            "MissingAuthenticationTokenException",
            "doesn't match the format",
        ),
        (
            "tampered",
            _tamper,
            "The request signature we calculated does not match",
            "InvalidSignatureException",
            "signature we calculated does not match",
        ),
        (
            "expired",
            lambda s: signed(
                s, "GET", "/events", amz_date=f"{dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6):%Y%m%dT%H%M%SZ}"
            ),
            "Signature expired",
            "InvalidSignatureException",
            "Signature expired",
        ),
        (
            "wrong-region",
            lambda s: signed(s, "GET", "/events", region="eu-west-1"),
            "Credential should be scoped to a valid region",
            "InvalidSignatureException",
            "eu-west-1",
        ),
        (
            "wrong-service",
            lambda s: signed(s, "GET", "/events", service="es"),
            "Credential should be scoped to correct service",
            "InvalidSignatureException",
            "execute-api",
        ),
        (
            "denied",
            lambda s: signed(s, "GET", "/events", name="denied"),
            "Forbidden",
            "AccessDeniedException",
            "is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/$default/GET/events",
        ),
    ],
)
def test_refused_requests_get_403_and_an_authorizer_error(
    stack: Stack, case: str, send: Any, body_message: str, error_type: str, detail: str
) -> None:
    resp = send(stack)
    assert resp.status_code == 403, (case, resp.text)
    assert resp.json()["message"].startswith(body_message)
    assert resp.headers["x-amzn-errortype"] == error_type
    record = stack.record_for(resp.headers["apigw-requestid"])
    assert record["status"] == "403"
    assert detail in record["authorizerError"]
    if case == "denied":
        assert record["userArn"] == stack.identities["denied"].arn


def test_allow_denied_fault_and_unknown_faults(stack: Stack) -> None:
    try:
        assert stack.admin("POST", "/_loadcheck/faults", {"allow-denied": 1}).json() == {"allow-denied": 1}
        assert signed(stack, "GET", "/events", name="denied").status_code == 200
    finally:
        stack.admin("POST", "/_loadcheck/faults", {"allow-denied": None})
    assert signed(stack, "GET", "/events", name="denied").status_code == 403
    unknown = stack.admin("POST", "/_loadcheck/faults", {"drop-everything": 1})
    assert unknown.status_code == 400 and "drop-everything" in unknown.json()["message"]


# -- TLS and hosts -------------------------------------------------------------------------------


def _tls11_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that is the point
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    return ctx


def test_tls_1_1_handshake_is_refused(stack: Stack, tmp_path: Path) -> None:
    # Control: this client really speaks TLS 1.1 (a permissive server accepts it).
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server.minimum_version = ssl.TLSVersion.TLSv1
    server.load_cert_chain(stack.tls.cert_file, stack.tls.key_file)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        accepted: list[str] = []

        def accept() -> None:
            conn, _ = listener.accept()
            with server.wrap_socket(conn, server_side=True) as tls:
                accepted.append(str(tls.version()))

        t = threading.Thread(target=accept)
        t.start()
        with (
            socket.create_connection(listener.getsockname()) as raw,
            _tls11_context().wrap_socket(raw, server_hostname=DOMAIN) as tls,
        ):
            assert tls.version() == "TLSv1.1"
        t.join(10)
        assert accepted == ["TLSv1.1"]
    # The gateway refuses the same client.
    with socket.create_connection(("127.0.0.1", stack.port)) as raw, pytest.raises(ssl.SSLError) as err:
        _tls11_context().wrap_socket(raw, server_hostname=DOMAIN)
    assert "PROTOCOL_VERSION" in str(err.value).upper() or "UNSUPPORTED_PROTOCOL" in str(err.value).upper()
    # TLS 1.2 is accepted.
    ctx = ssl.create_default_context(cafile=stack.tls.ca_file)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", stack.port)) as raw,
        ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls,
    ):
        assert tls.version() == "TLSv1.2"


def test_sni_for_another_name_is_refused(stack: Stack) -> None:
    ctx = ssl.create_default_context(cafile=stack.tls.ca_file)
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", stack.port)) as raw, pytest.raises(ssl.SSLError) as err:
        ctx.wrap_socket(raw, server_hostname="other.example")
    assert "UNRECOGNIZED_NAME" in str(err.value).upper()


def test_default_endpoint_is_disabled(stack: Stack) -> None:
    resp = requests.get(f"https://{DEFAULT_HOST}:{stack.port}/events", verify=stack.tls.ca_file, timeout=30)
    assert resp.status_code == 404 and resp.json() == {"message": "Not Found"}
    assert resp.headers["apigw-requestid"]


def test_admin_paths_only_on_loopback_host(stack: Stack) -> None:
    assert stack.admin("GET", "/_loadcheck/health").json() == {"status": "ok", "service": "gateway"}
    assert requests.get(f"{stack.url}/_loadcheck/health", verify=stack.tls.ca_file, timeout=30).status_code == 404
    unknown = requests.get(f"https://127.0.0.1:{stack.port}/events", verify=stack.tls.ca_file, timeout=30)
    assert unknown.status_code == 403 and unknown.headers["x-amzn-errortype"] == "ForbiddenException"


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
    gw = harness.GatewayProcess(cfg, stack.tmp / "g2.json").start()
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
    gw = harness.GatewayProcess(cfg, stack.tmp / "g4.json").start()
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
        cwd=harness.REPO_ROOT,
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
