"""The search service process: a threaded HTTP server on 127.0.0.1 run under the service
contract (:mod:`reference_stack.local.common.contract`: ready file, SIGTERM/SIGINT, exit when
the parent dies), answering ``/_loadcheck/health|faults|flush``, with SigV4 + access policy in
front of the OpenSearch API.

Bodies over ``max_payload_bytes`` (10 MiB by default, the limit of small instance types) are
refused without being parsed: 413 ``{"Message": "Request size exceeded <n> bytes"}`` (the body
AWS answers with is UNCONFIRMED here; the status and the limit are AWS's "network limits").

Request path: ``/_loadcheck/...`` (reserved, unauthenticated; a documented departure: AWS has
no such paths) → :class:`~.auth.Authorizer` (403 bodies of the AWS front end) →
:class:`~.api.Api` (OpenSearch responses). A background ticker refreshes indices whose
refresh interval has passed (see :mod:`.engine`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from loadcheck.core.errors import ConfigError
from loadcheck.core.state import IdentityStore
from reference_stack.local.common.admin_token import ADMIN_TOKEN_HEADER, admin_refusal
from reference_stack.local.common.contract import Lifecycle, run_service

from .api import Api, Request, Response
from .auth import AuthFailure, Authorizer
from .config import FAULTS, SearchConfig, parse_config
from .engine import Engine

log = logging.getLogger("loadcheck.search")
SERVICE_NAME = "search"
REFRESH_TICK_S = 0.1


class SearchService:
    """Everything one search process holds; built once from its :class:`SearchConfig`."""

    def __init__(self, *, config: SearchConfig, admin_token: str | None = None) -> None:
        self.config = config
        self.admin_token = admin_token
        self.authorizer = Authorizer(
            domain_arn=config.domain_arn,
            access_policy=config.access_policy,
            identities=IdentityStore(config.identities_file),
            region=config.region,
            window=_dt.timedelta(seconds=config.signature_window_s),
        )
        self.engine = Engine(data_dir=config.data_dir)
        self.api = Api(
            engine=self.engine,
            domain_name=self.authorizer.domain_name,
            account_id=config.account_id,
            engine_version=config.engine_version,
            allow_explicit_index=config.allow_explicit_index,
        )
        self.stopping = threading.Event()
        try:
            self.httpd = _Server((config.host, config.port), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"search cannot listen on {config.host}:{config.port}: {exc.strerror}",
                value=config.port,
                hint="free the port or set port 0 to pick a free one",
            ) from None
        self.httpd.service = self

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def admin(self, method: str, path: str, body: bytes, *, token: str | None = None) -> Response:
        refused = admin_refusal(self.admin_token, token)
        if refused:
            return Response(*refused)
        if path == "/_loadcheck/health" and method == "GET":
            return Response(200, {"status": "ok", "service": SERVICE_NAME})
        if path == "/_loadcheck/faults" and method == "GET":
            return Response(200, {})
        if path == "/_loadcheck/faults" and method == "POST":
            try:
                wanted = json.loads(body or b"{}")
            except ValueError:
                return Response(400, {"error": 'faults body must be a JSON object, e.g. {"name": value}'})
            if not isinstance(wanted, dict):
                return Response(400, {"error": 'faults body must be a JSON object, e.g. {"name": value}'})
            unknown = sorted(set(wanted) - set(FAULTS))
            if unknown:
                return Response(400, {"error": f"unknown fault {unknown[0]!r}: the search service has no faults"})
            return Response(200, {})
        if path == "/_loadcheck/flush" and method == "POST":
            self.engine.flush()
            return Response(200, {"flushed": True})
        return Response(404, {"error": f"no admin endpoint {method} {path}; see docs/internals.md"})

    def run(self, lifecycle: Lifecycle) -> int:
        """Serve until the contract's stop (SIGTERM/SIGINT, parent death), then close the engine."""
        threads = [
            threading.Thread(
                target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="search-http", daemon=True
            ),
            threading.Thread(target=self._refresh_loop, name="search-refresh", daemon=True),
        ]
        for t in threads:
            t.start()
        lifecycle.ready(self.port)
        log.info(
            "search service listening on http://%s:%d (domain %s)",
            self.config.host,
            self.port,
            self.authorizer.domain_name,
        )
        lifecycle.stop.wait()
        log.info("search service stopping")
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.engine.close()
        return 0

    def _refresh_loop(self) -> None:
        while not self.stopping.wait(REFRESH_TICK_S):
            try:
                self.engine.refresh_due()
            except Exception:  # a failed refresh must not stop later ones
                log.exception("scheduled refresh failed")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    service: SearchService


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "loadcheck-search"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY, Nagle's algorithm and
        # the client's delayed ACK add ~40 ms to every keep-alive response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        log.debug("%s " + format, self.client_address[0], *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        service = self.server.service
        method = self.command
        raw_path, _, raw_query = self.path.partition("?")
        limit = service.config.max_payload_bytes
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            # Drain the body (not parsed, not kept) so the client sees the answer, not a reset.
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            self._send(Response(413, {"Message": f"Request size exceeded {limit} bytes"}), pretty=False)
            return
        body = self._read_body()
        try:
            if raw_path.startswith("/_loadcheck/"):
                response = service.admin(method, raw_path, body, token=self.headers.get(ADMIN_TOKEN_HEADER))
            else:
                service.authorizer.check(
                    method=method,
                    raw_path=raw_path,
                    raw_query=raw_query,
                    headers=list(self.headers.items()),
                    body=body,
                    source_ip=self.client_address[0],
                )
                response = service.api.handle(Request(method=method, path=raw_path, query=raw_query, body=body))
        except AuthFailure as exc:
            response = Response(exc.status, exc.body)
        except Exception as exc:  # answer like OpenSearch does for an internal error, and keep serving
            log.exception("internal error on %s %s", method, raw_path)
            response = Response(
                500,
                {
                    "error": {
                        "root_cause": [{"type": "exception", "reason": str(exc)}],
                        "type": "exception",
                        "reason": str(exc),
                    },
                    "status": 500,
                },
            )
        self._send(response, pretty="pretty" in raw_query.split("&") or "pretty=true" in raw_query)

    def _send(self, response: Response, *, pretty: bool) -> None:
        payload = b""
        if isinstance(response.body, str):  # _cat text
            payload = response.body.encode()
        elif response.body is not None:
            payload = json.dumps(
                response.body, indent=2 if pretty else None, separators=None if pretty else (",", ":")
            ).encode()
        headers = {"Content-Type": "application/json; charset=UTF-8", **response.headers}
        self.send_response(response.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle


def serve(config: SearchConfig, lifecycle: Lifecycle) -> int:
    """The contract's ``serve``: build the service from its config and run it."""
    return SearchService(config=config, admin_token=lifecycle.admin_token).run(lifecycle)


def main(argv: list[str] | None = None) -> int:
    return run_service(
        name=SERVICE_NAME,
        description="Local OpenSearch-compatible service (SigV4 es, domain access policy)",
        parse=parse_config,
        serve=serve,
        argv=argv,
    )
