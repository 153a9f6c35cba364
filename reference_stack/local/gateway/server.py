"""The wire: a threaded HTTPS/1.1 server with keep-alive that turns bytes into a
:class:`~reference_stack.local.gateway.routing.Request` and a
:class:`~reference_stack.local.gateway.app.Response` back into bytes.

One thread per connection (load generators hold connections open and reuse them); the TLS
handshake runs in that thread, so a slow or refused handshake never blocks ``accept``.
Request bodies are read by ``Content-Length`` or ``Transfer-Encoding: chunked``; a body over
``payload_limit_bytes`` is not kept: it is read and discarded (up to ``2 x limit + 1 MB``, so the
client can finish sending and read the 413 instead of a connection reset), then the gateway
answers 413 and keeps the connection; a body beyond that cap gets the 413 and the connection
is closed.
Idle keep-alive connections are closed after ``IDLE_TIMEOUT_S`` (AWS: undocumented for HTTP
APIs; a choice).
"""

from __future__ import annotations

import datetime as _dt
import logging
import socket
import ssl
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from reference_stack.local.gateway.app import Gateway
from reference_stack.local.gateway.payload import new_request_id
from reference_stack.local.gateway.routing import Request

log = logging.getLogger("loadcheck.gateway.server")

IDLE_TIMEOUT_S = 60.0
HANDSHAKE_TIMEOUT_S = 10.0
_CHUNK = 65536


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], *, gateway: Gateway, ssl_context: ssl.SSLContext) -> None:
        self.gateway = gateway
        self.ssl_context = ssl_context
        self._in_flight = 0
        self._idle = threading.Condition()
        super().__init__(address, _Handler)

    def request_started(self) -> None:
        with self._idle:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """After ``shutdown()``: wait for requests being handled to finish (so their access-log
        records are queued before the final flush). False if some are still running."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout_s)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "loadcheck-gateway"
    sys_version = ""
    server: GatewayServer

    def setup(self) -> None:
        self.request.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake from %s refused: %s", self.client_address, exc)
            raise
        self.request.settimeout(IDLE_TIMEOUT_S)
        super().setup()

    def send_response(self, code: int, message: str | None = None) -> None:
        # Like the base class but without a Server header (API Gateway sends none).
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("date", self.date_time_string())

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.client_address[0], *args)

    def _discard(self, n: int) -> None:
        while n > 0:
            got = self.rfile.read(min(n, _CHUNK))
            if not got:
                raise ConnectionError("client closed while sending its body")
            n -= len(got)

    def _read_body(self, limit: int) -> tuple[bytes, bool, bool]:
        """(body, oversize, drained). An oversize body is discarded up to the drain cap; past the
        cap it stays unread (``drained`` False) and the connection must close."""
        cap = 2 * limit + (1 << 20)
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks: list[bytes] = []
            size = 0
            while True:
                line = self.rfile.readline(1024)
                n = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return (b"", True, True) if size > limit else (b"".join(chunks), False, True)
                size += n
                if size > cap:
                    return b"", True, False
                if size > limit:
                    chunks = []
                    self._discard(n)
                else:
                    chunks.append(self.rfile.read(n))
                self.rfile.readline(1024)
        length = int(self.headers.get("content-length") or 0)
        if length > limit:
            if length > cap:
                return b"", True, False
            self._discard(length)
            return b"", True, True
        return (self.rfile.read(length) if length else b""), False, True

    def _handle(self) -> None:
        self.server.request_started()
        try:
            self._handle_one()
        finally:
            self.server.request_finished()

    def _handle_one(self) -> None:
        received_at = _dt.datetime.now(_dt.UTC)
        received_mono = time.monotonic()
        gateway = self.server.gateway
        target = self.path if self.path.startswith("/") else (urlsplit(self.path).path or "/")
        raw_path, _, raw_query = target.partition("?")
        if not self.path.startswith("/"):
            raw_query = urlsplit(self.path).query
        try:
            body, oversize, drained = self._read_body(gateway.config.payload_limit_bytes)
        except ValueError:
            self.send_error(400, "bad chunked body")
            return
        req = Request(
            method=self.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            server_port=self.server.server_address[1],
            request_id=new_request_id(),
            received_at=received_at,
            received_mono=received_mono,
            protocol="HTTP/1.1",
            oversize=oversize,
        )
        try:
            resp = gateway.handle(req)
        except Exception:
            log.exception("unhandled error for %s %s", self.command, raw_path)
            self.send_response(500)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", "35")
            self.send_header("apigw-requestid", req.request_id)
            self.end_headers()
            self.wfile.write(b'{"message":"Internal Server Error"}')
            return
        if not drained:
            resp.close = True  # the rest of the body is still on the wire
        # Queue the access-log record before the answer leaves: a client that flushes right after
        # reading its response must find the record.
        gateway.record(req, resp)
        self.log_request(resp.status)
        # Status line, headers and body in one write: one TLS record and one system call.
        lines = [f"HTTP/1.1 {resp.status} {_reason(resp.status)}", f"date: {self.date_time_string()}"]
        lines.extend(f"{name}: {value}" for name, value in resp.headers)
        if resp.status not in (204, 304):
            lines.append(f"content-length: {len(resp.body)}")
        if resp.close or self.close_connection:
            lines.append("connection: close")
            self.close_connection = True
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        with_body = self.command != "HEAD" and resp.status not in (204, 304)
        self.wfile.write(head + resp.body if with_body else head)

    # BaseHTTPRequestHandler dispatches on do_<METHOD>.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle
