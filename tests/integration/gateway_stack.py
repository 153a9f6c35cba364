"""The gateway as a real process over real HTTPS, shared by test_gateway_service*.py: the
module-scoped ``stack`` fixture (moto, the Invoke seam, the gateway), DNS for the custom domain,
and signed requests.

Seams: moto's ThreadedMotoServer for CloudWatch Logs; a real HTTP server implementing the Lambda
Invoke API (``harness.InvokeServer``) with functions defined here; name resolution of the
custom domain to 127.0.0.1 (``getaddrinfo`` for Python clients, ``--resolve`` for curl), as a
Route 53 alias would resolve it on AWS.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.state import Identity
from reference_stack.local.common.launcher import ServiceProcess
from reference_stack.local.common.tls import issue_in
from reference_stack.local.gateway import harness

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
        self.tls = issue_in(tmp / "tls", [DOMAIN, DEFAULT_HOST, "127.0.0.1"])
        self.identities: dict[str, Identity] = harness.make_identities(
            tmp / "identities.json", region=REGION, api_id=API, routes=list(ROUTES)
        )
        self.logs = boto3.client(
            "logs", region_name=REGION, endpoint_url=moto_url, aws_access_key_id="admin", aws_secret_access_key="admin"
        )  # noqa: S106 - moto
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=GROUP)  # moto's state is shared within the process
        self.gateway: ServiceProcess | None = None

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
            st.gateway = harness.start_gateway(st.config(), st.tmp / "gateway.json")
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
