"""The Lambda Runtime API (version 2018-06-01) on the wire, one listener per environment.

Endpoints (docs/aws-behaviour.md §8.1, LAM:runtimes-api; what awslambdaric 4.x calls, read in
RIC:awslambdaric/lambda_runtime_client.py and its native ``runtime_client``):

    GET  /2018-06-01/runtime/invocation/next          blocks until an invocation is assigned
    POST /2018-06-01/runtime/invocation/{id}/response 202; 400 unknown id; 413 over 6 MB
    POST /2018-06-01/runtime/invocation/{id}/error    202; 400 unknown id
    POST /2018-06-01/runtime/init/error               202; 403 after init
    GET  /2018-06-01/runtime/restore/next             403 (no SnapStart here)

Each environment gets its own listener on 127.0.0.1 and its own ``AWS_LAMBDA_RUNTIME_API``
host:port. That is how the service knows which environment is asking: awslambdaric builds
every URL from that host:port, so a path prefix cannot carry an identity, and on AWS each
sandbox likewise has its own Runtime API endpoint. (Departure from docs/internals.md's
"Runtime API on the same port": the Invoke port serves no Runtime API paths.)

Departures from AWS (also in docs/fidelity.md, section lambda):

- ``Lambda-Runtime-Client-Context`` and ``Lambda-Runtime-Cognito-Identity`` are never sent
  (mobile SDK only); ``Lambda-Runtime-Trace-Id`` carries the caller's ``X-Amzn-Trace-Id`` or
  a generated root with ``Sampled=0`` (no X-Ray here).
- SnapStart's ``restore/next`` answers 403: environments are always ``on-demand``.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reference_stack.local.common.http11 import write_response
from reference_stack.local.lambda_.environments import MAX_RESPONSE_BYTES, Environment, Outcome

log = logging.getLogger("loadcheck.lambda.runtime_api")

PREFIX = "/2018-06-01/runtime"
_RESULT = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


class RuntimeApiServer(ThreadingHTTPServer):
    """One environment's Runtime API listener on 127.0.0.1 (port picked by the OS)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *, environment: Environment, stop: threading.Event) -> None:
        super().__init__(("127.0.0.1", 0), RuntimeApiHandler)
        self.environment = environment
        self.stop_event = stop
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.5},
            name=f"runtime-api-{environment.env_id[:8]}",
            daemon=True,
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class RuntimeApiHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keep-alive: the runtime's libcurl handle reuses its connection.
    protocol_version = "HTTP/1.1"
    server: RuntimeApiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("runtime api %s: " + format, self.server.environment.env_id[:8], *args)

    # -- routing --------------------------------------------------------------------------
    def do_GET(self) -> None:
        env = self.server.environment
        if self.path == f"{PREFIX}/invocation/next":
            invocation = env.next_invocation(stop=self.server.stop_event)
            if invocation is None:
                # The environment is being torn down; its process is killed right after.
                self._json(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    {"errorMessage": "environment is shutting down", "errorType": "Runtime.Shutdown"},
                )
                self.close_connection = True
                return
            headers = {
                "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                "Lambda-Runtime-Trace-Id": invocation.trace_id,
                "Content-Type": "application/json",
            }
            self._send(HTTPStatus.OK, invocation.payload, headers)
        elif self.path == f"{PREFIX}/restore/next":
            self._json(
                HTTPStatus.FORBIDDEN,
                {"errorMessage": "SnapStart is not enabled for this function", "errorType": "InvalidStateTransition"},
            )
        else:
            self._not_found()

    def do_POST(self) -> None:
        env = self.server.environment
        body = self._read_body()
        match = _RESULT.match(self.path)
        if match:
            request_id, kind = match.groups()
            outcome = self._outcome(kind, request_id, body)
            if outcome.kind == "too_large":
                env.post_result(request_id, outcome)
                self._json(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    {
                        "errorMessage": f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                        "errorType": "RequestEntityTooLarge",
                    },
                )
            elif env.post_result(request_id, outcome):
                self._json(HTTPStatus.ACCEPTED, {"status": "OK"})
            else:
                self._json(
                    HTTPStatus.BAD_REQUEST,
                    {"errorMessage": f"Invalid request ID: {request_id}", "errorType": "InvalidRequestID"},
                )
        elif self.path == f"{PREFIX}/init/error":
            error_type = self.headers.get(ERROR_TYPE_HEADER) or _error_type(body) or "Runtime.Unknown"
            if env.post_init_error(Outcome(kind="init_error", body=body, error_type=error_type)):
                self._json(HTTPStatus.ACCEPTED, {"status": "OK"})
            else:
                self._json(
                    HTTPStatus.FORBIDDEN,
                    {
                        "errorMessage": "init is over: the runtime already took an invocation",
                        "errorType": "InvalidStateTransition",
                    },
                )
        else:
            self._not_found()

    def _outcome(self, kind: str, request_id: str, body: bytes) -> Outcome:
        if kind == "response":
            if len(body) > MAX_RESPONSE_BYTES:
                message = (
                    f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                    f"({MAX_RESPONSE_BYTES} bytes)."
                )
                return Outcome(
                    kind="too_large",
                    error_type="Function.ResponseSizeTooLarge",
                    body=json.dumps({"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}).encode(),
                )
            return Outcome(
                kind="response", body=body, content_type=self.headers.get("Content-Type") or "application/json"
            )
        # The runtime's JSON names the error type; the header is the fallback (§8.1).
        error_type = _error_type(body) or self.headers.get(ERROR_TYPE_HEADER) or "Unhandled"
        return Outcome(kind="error", body=body or b"{}", error_type=error_type)

    # -- wire helpers ---------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: HTTPStatus, doc: dict[str, Any]) -> None:
        self._send(status, json.dumps(doc).encode(), {"Content-Type": "application/json"})

    def setup(self) -> None:
        super().setup()
        # Error answers of http.server itself are two writes: without TCP_NODELAY, Nagle's
        # algorithm holds the second until the peer's delayed ACK (a 40 ms stall).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
        write_response(self, status, headers.items(), body)

    def _not_found(self) -> None:
        self._json(
            HTTPStatus.NOT_FOUND, {"errorMessage": f"unknown Runtime API path {self.path}", "errorType": "UnknownPath"}
        )


def _error_type(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    value = doc.get("errorType") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and value else None
