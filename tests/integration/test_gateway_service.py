"""The gateway as a real process over real HTTPS: TLS, hosts, SigV4 from three clients, IAM,
payload 2.0, refusals and faults. The shared ``stack`` fixture is in gateway_stack.py; the
integration, throttling, access-log and process-contract tests are in
test_gateway_service_pipeline.py.
"""

# The fixtures imported from gateway_stack.py come back as test arguments (pytest injects them).
# ruff: noqa: F811
from __future__ import annotations

import base64
import datetime as dt
import socket
import ssl
import subprocess
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from requests_aws4auth import AWS4Auth

from loadcheck.core.sigv4 import Signer
from tests.integration.gateway_stack import (  # noqa: F401 - stack and resolve_domain are fixtures
    DEFAULT_HOST,
    DOMAIN,
    REGION,
    Stack,
    _creds,
    resolve_domain,
    signed,
    stack,
)

pytestmark = pytest.mark.integration


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
