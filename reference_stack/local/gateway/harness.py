"""Helpers to run the gateway on its own: identities, a Lambda Invoke seam, its config and its
process. Used by the gateway's integration tests and by ``loadcheck bench gateway``; the stack
supervisor does the same work for the whole stack. Certificates come from
:mod:`reference_stack.local.common.tls`, the config from :mod:`reference_stack.local.common.configs`
and the process from :mod:`reference_stack.local.common.launcher`, as for the supervisor.

``InvokeServer`` is a real HTTP server implementing the Lambda Invoke API contract of
docs/internals.md ("lambda") with functions written in Python in the test or bench; it is the
seam the gateway calls through, not a stand-in for the gateway.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final, Literal

from loadcheck.core.description import load_description
from loadcheck.core.iam import route_arn
from loadcheck.core.state import ACCOUNT_ID, Identity, write_identities
from reference_stack.local.common import configs
from reference_stack.local.common.launcher import ServiceProcess
from reference_stack.local.common.tls import TlsFiles


class _Default(Enum):
    """A one-member enum so the sentinel has a type of its own that ``is`` narrows away."""

    FROM_DESCRIPTION = "from-description"


FROM_DESCRIPTION: Final = _Default.FROM_DESCRIPTION  # gateway_config: take the value from the stack description


def _user(name: str, policies: list[dict[str, Any]], account_id: str) -> Identity:
    return Identity(
        name=name,
        arn=f"arn:aws:iam::{account_id}:user/loadcheck-{name}",
        principal_arn=f"arn:aws:iam::{account_id}:user/loadcheck-{name}",
        user_id="AIDA" + secrets.token_hex(8).upper(),
        access_key_id="AKIA" + secrets.token_hex(8).upper(),
        secret_access_key=secrets.token_urlsafe(30),
        policies=policies,
    )


def _role(name: str, function_name: str, account_id: str) -> Identity:
    return Identity(
        name=name,
        arn=f"arn:aws:sts::{account_id}:assumed-role/{name}/{function_name}",
        principal_arn=f"arn:aws:iam::{account_id}:role/{name}",
        user_id="AROA" + secrets.token_hex(8).upper() + ":" + function_name,
        access_key_id="ASIA" + secrets.token_hex(8).upper(),
        secret_access_key=secrets.token_urlsafe(30),
        session_token=secrets.token_urlsafe(40),
    )


def make_identities(
    path: Path,
    *,
    region: str,
    api_id: str,
    routes: list[str],
    account_id: str = ACCOUNT_ID,
    roles: dict[str, str] | None = None,
) -> dict[str, Identity]:
    """``admin`` (``*``), ``requester`` (execute-api:Invoke on exactly ``routes``), ``denied`` (none),
    and one role identity per ``roles`` entry (role name -> function name) for Lambda functions."""
    allow_routes = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": [route_arn(region, account_id, api_id, r) for r in routes],
            }
        ],
    }
    admin_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    identities = {
        "admin": _user("admin", [admin_all], account_id),
        "requester": _user("requester", [allow_routes], account_id),
        "denied": _user("denied", [], account_id),
    }
    for role, function_name in (roles or {}).items():
        identities[role] = _role(role, function_name, account_id)
    write_identities(path, identities, account_id)
    return identities


# ------------------------------------------------------------------------------------------------
# The Lambda Invoke API seam


@dataclass
class InvokeAnswer:
    """What the Invoke API answers: status, payload (JSON-able or bytes), extra headers."""

    payload: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


LambdaFunction = Callable[[dict[str, Any]], InvokeAnswer]


def noop_function(event: dict[str, Any]) -> InvokeAnswer:
    return InvokeAnswer({"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"})


class InvokeServer:
    """``POST /2015-03-31/functions/<name>/invocations`` on 127.0.0.1, HTTP/1.1 keep-alive."""

    def __init__(self, functions: dict[str, LambdaFunction]) -> None:
        self.functions = functions
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in two writes

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                parts = self.path.split("/")
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                request_id = str(uuid.uuid4())
                if len(parts) != 5 or parts[1:3] != ["2015-03-31", "functions"] or parts[4] != "invocations":
                    answer = InvokeAnswer({"message": f"unknown path {self.path}"}, 404)
                elif parts[3] not in outer.functions:
                    answer = InvokeAnswer(
                        {"Type": "User", "message": f"Function not found: {parts[3]}"},
                        404,
                        {"x-amzn-ErrorType": "ResourceNotFoundException"},
                    )
                else:
                    event = json.loads(body)
                    outer.invocations.append((parts[3], event))
                    try:
                        answer = outer.functions[parts[3]](event)
                    except Exception as exc:  # a function error, shaped as Lambda shapes it
                        answer = InvokeAnswer(
                            {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []},
                            200,
                            {"X-Amz-Function-Error": "Unhandled"},
                        )
                data = answer.payload if isinstance(answer.payload, bytes) else json.dumps(answer.payload).encode()
                self.send_response(answer.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("x-amzn-RequestId", request_id)
                for k, v in answer.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> InvokeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# ------------------------------------------------------------------------------------------------
# The gateway process


def gateway_config(
    *,
    directory: Path,
    tls: TlsFiles,
    identities_file: Path,
    lambda_endpoint: str,
    routes: dict[str, str],
    aws_endpoint_url: str | None,
    api_id: str = "a1b2c3d4e5",
    domain: str = "events.loadcheck.test",
    region: str = "us-east-1",
    log_group: str = "/aws/vendedlogs/apigateway/loadcheck-http-api",
    access_log_format: dict[str, str] | None = None,
    access_log_batch_s: float = 0.2,
    ready_file: str | None = None,
    throttle: dict[str, float] | None | Literal[_Default.FROM_DESCRIPTION] = FROM_DESCRIPTION,
    route_throttle: dict[str, dict[str, float]] | None = None,
    cors: dict[str, Any] | None | Literal[_Default.FROM_DESCRIPTION] = FROM_DESCRIPTION,
    payload_limit_bytes: int | None = None,
    integration_timeout_s: float | None = None,
    log_level: str = "INFO",
) -> dict[str, Any]:
    """A gateway on its own, for tests and the benchmark, built by
    :func:`reference_stack.local.common.configs.gateway_config`: the stack description's
    throttle, CORS, access-log format, payload limit and integration timeout unless given
    (``throttle=None``/``cors=None`` turn them off)."""
    desc = load_description()
    base = configs.ServiceBase(region=region, identities_file=identities_file, log_level=log_level)
    return configs.gateway_config(
        base,
        ready_file=Path(ready_file) if ready_file else directory / "gateway.ready",
        api_id=api_id,
        domain=domain,
        tls=tls,
        routes=routes,
        lambda_endpoint=lambda_endpoint,
        aws_endpoint_url=aws_endpoint_url,
        throttle=configs.limits_json(desc.throttle) if throttle is FROM_DESCRIPTION else throttle,
        route_throttle=route_throttle or {},
        cors=configs.cors_json(desc.cors) if cors is FROM_DESCRIPTION else cors,
        access_log=configs.access_log_json(
            log_group, access_log_format or dict(desc.access_log.format), batch_interval_s=access_log_batch_s
        ),
        payload_limit_bytes=desc.payload_limit_bytes if payload_limit_bytes is None else payload_limit_bytes,
        integration_timeout_s=desc.integration_timeout_s if integration_timeout_s is None else integration_timeout_s,
    )


def start_gateway(config: dict[str, Any], config_path: Path, timeout_s: float = 30.0) -> ServiceProcess:
    """``python -m reference_stack.local.gateway`` with ``config``, started and ready (its log is
    ``config_path`` with ``.log``); stop it with ``.stop()``."""
    proc = ServiceProcess.for_service("gateway", config, config_path=config_path)
    proc.launch(timeout_s)
    return proc
