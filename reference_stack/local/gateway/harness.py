"""Helpers to run the gateway on its own: certificates, identities, a Lambda Invoke seam, the
process. Used by the gateway's integration tests and by ``loadcheck bench gateway``; the stack
supervisor does the same work for the whole stack.

``InvokeServer`` is a real HTTP server implementing the Lambda Invoke API contract of
docs/internals.md ("lambda") with functions written in Python in the test or bench; it is the
seam the gateway calls through, not a stand-in for the gateway.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from loadcheck.core.errors import StackError
from loadcheck.core.iam import route_arn
from loadcheck.core.state import ACCOUNT_ID, Identity, write_identities, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str
    cert_file: str
    key_file: str


def make_tls_files(directory: Path, names: list[str]) -> TlsFiles:
    """A trustme CA and a server certificate for ``names`` (PEM files in ``directory``)."""
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*names)
    out = TlsFiles(str(directory / "ca.pem"), str(directory / "gateway-cert.pem"), str(directory / "gateway-key.pem"))
    ca.cert_pem.write_to_path(out.ca_file)
    Path(out.cert_file).write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(out.key_file)
    os.chmod(out.key_file, 0o600)
    return out


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
    log_group: str = "/aws/apigateway/loadcheck-http-api",
    access_log_format: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    from loadcheck.core.description import load_description

    desc = load_description()
    cfg: dict[str, Any] = {
        "service": "gateway",
        "host": "127.0.0.1",
        "port": 0,
        "ready_file": str(directory / "gateway.ready"),
        "parent_pid": os.getpid(),
        "region": region,
        "account_id": ACCOUNT_ID,
        "identities_file": str(identities_file),
        "faults": {},
        "log_level": "INFO",
        "api_id": api_id,
        "domain": domain,
        "cert_file": tls.cert_file,
        "key_file": tls.key_file,
        "default_endpoint_host": f"{api_id}.execute-api.{region}.amazonaws.com",
        "disable_execute_api_endpoint": True,
        "routes": routes,
        "lambda_endpoint": lambda_endpoint,
        "aws_endpoint_url": aws_endpoint_url,
        "throttle": {"rate_limit": desc.throttle.rate_limit, "burst_limit": desc.throttle.burst_limit},
        "route_throttle": {},
        "cors": desc.raw.get("cors"),
        "access_log": {
            "log_group": log_group,
            "format": access_log_format or dict(desc.access_log.format),
            "batch_interval_s": 0.2,
            "delivery_delay_s": 0.0,
        },
        "payload_limit_bytes": desc.payload_limit_bytes,
        "integration_timeout_s": desc.integration_timeout_s,
    }
    cfg.update(overrides)
    return cfg


class ServiceProcess:
    """Another local-stack service (``python -m <module> --config``) in its own process group."""

    def __init__(self, module: str, config: dict[str, Any], config_path: Path) -> None:
        self.module = module
        self.config = config
        self.config_path = config_path
        self.log_path = config_path.with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout_s: float = 30.0) -> ServiceProcess:
        ready = Path(self.config["ready_file"])
        ready.unlink(missing_ok=True)
        write_json_atomic(self.config_path, self.config)
        with open(self.log_path, "ab") as log_fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", self.module, "--config", str(self.config_path)],
                cwd=REPO_ROOT,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready.is_file():
                self.port = json.loads(ready.read_text())["port"]
                return self
            if self.proc.poll() is not None:
                raise StackError(
                    f"{self.module} exited with status {self.proc.returncode} before it was ready",
                    value=self.proc.returncode,
                    hint=f"read {self.log_path}",
                )
            time.sleep(0.05)  # polling the ready file against a deadline
        self.stop()
        raise StackError(f"{self.module} not ready within {timeout_s} s", value=timeout_s, hint=f"read {self.log_path}")

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            return None
        except ProcessLookupError:
            return self.proc.wait(5)


class GatewayProcess(ServiceProcess):
    """``python -m reference_stack.local.gateway`` in its own process group; stop() always kills it."""

    def __init__(self, config: dict[str, Any], config_path: Path) -> None:
        super().__init__("reference_stack.local.gateway", config, config_path)

    def start(self, timeout_s: float = 30.0) -> GatewayProcess:
        super().start(timeout_s)
        return self

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.is_file() else ""
