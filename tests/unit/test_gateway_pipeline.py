"""The gateway pipeline without sockets (gateway app.py): host, size, CORS, route, throttle, IAM,
integration mapping, access-log context. The Lambda Invoke API is the seam: a recorded invoker."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest

from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.state import Identity, write_identities
from reference_stack.local.gateway import cors as cors_mod
from reference_stack.local.gateway.app import Gateway
from reference_stack.local.gateway.auth import Authorizer, IdentityStore
from reference_stack.local.gateway.config import Cors, parse_config
from reference_stack.local.gateway.faults import Faults
from reference_stack.local.gateway.integration import InvokeResult
from reference_stack.local.gateway.routing import Request
from reference_stack.local.gateway.throttle import Throttler

DOMAIN = "events.loadcheck.test"
API = "a1b2c3d4e5"
ARN = f"arn:aws:execute-api:us-east-1:123456789012:{API}/$default"


class Invoker:
    """The Lambda Invoke seam: answers what the test queued, records what it was sent."""

    def __init__(self) -> None:
        self.answer = InvokeResult(200, json.dumps({"statusCode": 200, "body": "ok"}).encode(), None, "inv-1", 3)
        self.events: list[dict[str, Any]] = []

    def invoke(self, function_name: str, event: dict[str, Any]) -> InvokeResult:
        self.events.append(event)
        return self.answer


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Gateway, Invoker]:
    ids = tmp_path / "identities.json"
    write_identities(
        ids,
        {
            "requester": Identity(
                name="requester",
                arn="arn:aws:iam::123456789012:user/loadcheck-requester",
                principal_arn="p",
                user_id="AIDAREQ",
                access_key_id="AKIAREQ",
                secret_access_key="sec",  # noqa: S106 - a test key
                policies=[
                    {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": f"{ARN}/*/events"}]}
                ],
            )
        },
    )
    cfg = parse_config(
        {
            "region": "us-east-1",
            "account_id": "123456789012",
            "api_id": API,
            "domain": DOMAIN,
            "cert_file": "c",
            "key_file": "k",
            "identities_file": str(ids),
            "lambda_endpoint": "http://127.0.0.1:1",
            "routes": {"GET /events": "fn", "POST /events": "fn"},
            "payload_limit_bytes": 100,
            "throttle": {"rate_limit": 0, "burst_limit": 3},
            "cors": {
                "allow_origins": ["https://app.loadcheck.test"],
                "allow_methods": ["GET", "POST"],
                "allow_headers": ["authorization"],
                "expose_headers": ["apigw-requestid"],
                "max_age": 300,
            },
            "access_log": {"log_group": "g", "format": {"requestId": "$context.requestId"}},
        }
    )
    faults = Faults(log_fields=("requestId",))
    invoker = Invoker()
    gw = Gateway(
        config=cfg,
        faults=faults,
        authorizer=Authorizer(store=IdentityStore(str(ids)), region="us-east-1", account_id="123456789012", api_id=API),
        invoker=invoker,  # type: ignore[arg-type]
        throttler=Throttler(routes=list(cfg.routes), stage=cfg.throttle, route_limits={}),
        shipper=None,
    )
    return gw, invoker


def _req(
    method: str = "GET",
    path: str = "/events",
    *,
    host: str = DOMAIN,
    sign: bool = True,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    oversize: bool = False,
) -> Request:
    hdrs = [("Host", host), *(headers or [])]
    if sign:
        signed = Signer("execute-api", "us-east-1").sign(
            Credentials("AKIAREQ", "sec"), method, host, path, "", dict(hdrs[1:]), body=body
        )
        hdrs += list(signed.items())
    return Request(
        method=method,
        raw_path=path,
        raw_query="",
        headers=hdrs,
        body=body,
        source_ip="127.0.0.1",
        server_port=443,
        request_id="Mc7UVioPPHcEKPA=",
        received_at=dt.datetime.now(dt.UTC),
        received_mono=time.monotonic(),
        oversize=oversize,
    )


def test_signed_request_reaches_the_function_and_logs_integration_fields(setup: tuple[Gateway, Invoker]) -> None:
    gw, invoker = setup
    resp = gw.handle(_req())
    assert resp.status == 200 and resp.body == b"ok"
    assert ("apigw-requestid", "Mc7UVioPPHcEKPA=") in resp.headers
    ctx = resp.log_context
    assert ctx is not None
    assert ctx["routeKey"] == "GET /events" and ctx["status"] == "200"
    assert ctx["integrationStatus"] == "200" and ctx["integration.status"] == "200"
    assert ctx["integration.requestId"] == "inv-1" and ctx["integrationLatency"] == "3"
    assert ctx["identity.userArn"].endswith("user/loadcheck-requester")
    assert ctx["customDomain.basePathMatched"] == "(none)"
    assert "error.message" not in ctx and "authorizer.error" not in ctx
    assert invoker.events[0]["requestContext"]["authorizer"]["iam"]["userId"] == "AIDAREQ"


@pytest.mark.parametrize(
    ("host", "status", "body", "logged"),
    [
        ("127.0.0.1:4443", 403, {"message": "Forbidden"}, False),
        ("elsewhere.example", 403, {"message": "Forbidden"}, False),
        (f"{API}.execute-api.us-east-1.amazonaws.com", 404, {"message": "Not Found"}, False),
    ],
)
def test_hosts_other_than_the_domain(
    setup: tuple[Gateway, Invoker], host: str, status: int, body: dict, logged: bool
) -> None:
    gw, _ = setup
    resp = gw.handle(_req(host=host))
    assert resp.status == status and json.loads(resp.body) == body
    assert (resp.log_context is not None) is logged
    assert any(n == "apigw-requestid" for n, _ in resp.headers)


def test_unknown_route_404_and_oversize_413(setup: tuple[Gateway, Invoker]) -> None:
    gw, invoker = setup
    resp = gw.handle(_req(path="/nope"))
    assert resp.status == 404 and json.loads(resp.body) == {"message": "Not Found"}
    assert resp.log_context is not None and resp.log_context.get("routeKey") is None
    resp = gw.handle(_req("POST", oversize=True))
    assert resp.status == 413 and json.loads(resp.body) == {"message": "Request Entity Too Large"}
    assert resp.log_context is not None and resp.log_context["error.responseType"] == "REQUEST_TOO_LARGE"
    assert invoker.events == []


def test_throttle_429_after_the_burst(setup: tuple[Gateway, Invoker]) -> None:
    gw, _ = setup
    statuses = [gw.handle(_req()).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    resp = gw.handle(_req())
    assert json.loads(resp.body) == {"message": "Too Many Requests"}
    assert resp.log_context is not None and resp.log_context["error.responseType"] == "THROTTLED"


def test_unsigned_403_with_authorizer_error(setup: tuple[Gateway, Invoker]) -> None:
    gw, _ = setup
    resp = gw.handle(_req(sign=False))
    assert resp.status == 403 and json.loads(resp.body) == {"message": "Forbidden"}
    assert ("x-amzn-ErrorType", "MissingAuthenticationTokenException") in resp.headers
    assert resp.log_context is not None and "IAM Authorizer" in resp.log_context["authorizer.error"]
    assert resp.log_context["error.messageString"] == '"Forbidden"'


@pytest.mark.parametrize(
    ("answer", "status", "message", "integration_status"),
    [
        (
            InvokeResult(200, b'{"errorMessage":"boom","errorType":"ValueError"}', "Unhandled", "i", 5),
            500,
            "Internal Server Error",
            "200",
        ),
        (InvokeResult(200, b"not json", None, "i", 5), 500, "Internal Server Error", "200"),
        (
            InvokeResult(
                429,
                b'{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}',
                None,
                "i",
                5,
            ),
            500,
            "Internal Server Error",
            "429",
        ),
        (
            InvokeResult(None, b"", None, None, 30000, timed_out=True, error="timed out"),
            503,
            "Service Unavailable",
            None,
        ),
        (InvokeResult(None, b"", None, None, 1, error="refused"), 500, "Internal Server Error", None),
    ],
)
def test_integration_failures(
    setup: tuple[Gateway, Invoker], answer: InvokeResult, status: int, message: str, integration_status: str | None
) -> None:
    gw, invoker = setup
    invoker.answer = answer
    resp = gw.handle(_req())
    assert resp.status == status and json.loads(resp.body) == {"message": message}
    ctx = resp.log_context
    assert ctx is not None and ctx.get("integrationStatus") == integration_status
    assert ctx["integrationErrorMessage"] and ctx["integration.error"] == ctx["integrationErrorMessage"]
    if answer.status == 429:
        assert "ReservedFunctionConcurrentInvocationLimitExceeded" in ctx["integrationErrorMessage"]


def test_throttle_status_fault_rewrites_integration_429(setup: tuple[Gateway, Invoker]) -> None:
    gw, invoker = setup
    invoker.answer = InvokeResult(200, json.dumps({"statusCode": 429, "body": "slow down"}).encode(), None, "i", 1)
    assert gw.handle(_req()).status == 429
    gw.faults.update({"throttle-status": 500})
    resp = gw.handle(_req())
    assert resp.status == 500 and resp.body == b"slow down"
    assert resp.log_context is not None and resp.log_context["integration.status"] == "429"


def test_cors_preflight_and_response_headers(setup: tuple[Gateway, Invoker]) -> None:
    gw, invoker = setup
    pre = gw.handle(
        _req(
            "OPTIONS",
            sign=False,
            headers=[("Origin", "https://app.loadcheck.test"), ("Access-Control-Request-Method", "POST")],
        )
    )
    assert pre.status == 204 and pre.body == b""
    h = dict(pre.headers)
    assert h["access-control-allow-origin"] == "https://app.loadcheck.test"
    assert h["access-control-allow-methods"] == "GET,POST" and h["access-control-max-age"] == "300"
    bad = gw.handle(
        _req(
            "OPTIONS", sign=False, headers=[("Origin", "https://evil.test"), ("Access-Control-Request-Method", "POST")]
        )
    )
    assert bad.status == 204 and not any(n.startswith("access-control-") for n, _ in bad.headers)
    invoker.answer = InvokeResult(
        200,
        json.dumps({"statusCode": 200, "body": "x", "headers": {"Access-Control-Allow-Origin": "*"}}).encode(),
        None,
        "i",
        1,
    )
    resp = gw.handle(_req(headers=[("Origin", "https://app.loadcheck.test")]))
    h = dict(resp.headers)
    assert h["access-control-allow-origin"] == "https://app.loadcheck.test"  # backend's "*" ignored
    assert h["access-control-expose-headers"] == "apigw-requestid"
    resp = gw.handle(_req(headers=[("Origin", "https://evil.test")]))
    assert not any(n.startswith("access-control-") for n, _ in resp.headers)


def test_cors_origin_wildcards() -> None:
    cors = Cors(allow_origins=("https://*",))
    assert cors_mod.origin_allowed(cors, "https://a.example")
    assert not cors_mod.origin_allowed(cors, "http://a.example")
    assert cors_mod.response_headers(Cors(allow_origins=("*",)), "http://x") == [("access-control-allow-origin", "*")]


def test_admin_faults_endpoint(setup: tuple[Gateway, Invoker]) -> None:
    gw, _ = setup
    ok = gw.handle(_req("POST", "/_loadcheck/faults", host="127.0.0.1:1", sign=False, body=b'{"throttle-status": 500}'))
    assert ok.status == 200 and json.loads(ok.body) == {"throttle-status": 500}
    bad = gw.handle(_req("POST", "/_loadcheck/faults", host="127.0.0.1:1", sign=False, body=b'{"nope": 1}'))
    assert bad.status == 400 and "nope" in json.loads(bad.body)["message"]
    hidden = gw.handle(_req("GET", "/_loadcheck/health", sign=False))
    assert hidden.status == 404  # not on the custom domain


def test_config_errors_name_key_and_fix() -> None:
    from loadcheck.core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_config({"region": "us-east-1", "routes": {"GET /x": "f"}, "integration_timeout_s": 31})
    assert "integration_timeout_s" in str(err.value) and "fix:" in str(err.value)
    for key in ("request_timeout_s", "idle_timeout_s"):
        with pytest.raises(ConfigError) as err:
            parse_config({"region": "us-east-1", "routes": {"GET /x": "f"}, key: 0})
        assert key in str(err.value) and "fix:" in str(err.value)
    with pytest.raises(ConfigError) as err:
        parse_config({"routes": {"FETCH /x": "f"}})
    assert "FETCH /x" in str(err.value)


def test_a_success_sets_every_variable_aws_sets_for_it(setup: tuple[Gateway, Invoker]) -> None:
    from reference_stack.local.gateway.access_log import VARIABLES

    gw, _ = setup
    resp = gw.handle(_req(headers=[("User-Agent", "ua/1")]))
    assert resp.status == 200 and resp.log_context is not None
    unset_on_success = {
        "error.message",
        "error.messageString",
        "error.responseType",
        "authorizer.error",
        "integrationErrorMessage",
        "integration.error",
    }
    missing = [v for v in VARIABLES if v not in unset_on_success and not resp.log_context.get(v)]
    assert missing == []
    assert not unset_on_success & set(resp.log_context)


def test_default_endpoint_serves_the_api_when_enabled(setup: tuple[Gateway, Invoker]) -> None:
    import dataclasses

    gw, _ = setup
    gw.config = dataclasses.replace(gw.config, disable_execute_api_endpoint=False)
    host = f"{API}.execute-api.us-east-1.amazonaws.com"
    resp = gw.handle(_req(host=host))
    assert resp.status == 200
    assert resp.log_context is not None and resp.log_context["domainName"] == host
    assert resp.log_context["domainPrefix"] == API and "customDomain.basePathMatched" not in resp.log_context
