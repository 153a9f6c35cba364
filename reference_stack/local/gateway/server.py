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

Hostile input (docs/aws-behaviour.md §6.1, §10.14; docs/reliability.md):

- A connection holds its thread for at most ``request_timeout_s`` for the TLS handshake, then
  ``idle_timeout_s`` waiting for a request to start, then ``request_timeout_s`` from the first
  byte of a request to its last body byte (one deadline, not per read: a client trickling a
  byte at a time, slowloris, is cut off like a silent one). A missed deadline closes the
  connection without an answer.
- Malformed requests (request line, HTTP version, method token, ``Content-Length``,
  ``Transfer-Encoding``, chunk framing) get ``400 {"message":"Bad Request"}`` and a close;
  a request line plus header values over 10240 bytes (the HTTP API quota) gets
  ``431 {"message":"Request Header Fields Too Large"}`` and a close. Neither reaches routing,
  so neither has an access-log record. Any method token reaches routing: one no route
  names gets the API's 404.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import logging
import re
import socket
import ssl
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from reference_stack.local.common.http11 import http_date
from reference_stack.local.gateway.app import Gateway
from reference_stack.local.gateway.payload import new_request_id
from reference_stack.local.gateway.routing import Request

log = logging.getLogger("loadcheck.gateway.server")

_CHUNK = 65536
# HTTP API quota: "Total combined size of request line and header values", docs/aws-behaviour.md §6.1.
REQUEST_LINE_AND_HEADERS_LIMIT = 10240
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DIGITS = re.compile(r"[0-9]{1,18}")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(;[^\r\n]*)?\r?\n")


class BadRequest(Exception):
    """The request cannot be framed; it is answered 400 and the connection closed."""


class _DeadlineReader(io.RawIOBase):
    """The socket's reads, bounded by one absolute deadline instead of a per-read timeout."""

    def __init__(self, sock: socket.socket, write_timeout_s: float) -> None:
        self._sock = sock
        self._write_timeout_s = write_timeout_s
        self.deadline = float("inf")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the client missed the gateway's read deadline")
        self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        finally:
            self._sock.settimeout(self._write_timeout_s)  # answers are written under this timeout


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
        self.request_timeout_s = gateway.config.request_timeout_s
        self.idle_timeout_s = gateway.config.idle_timeout_s
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


def _json_error(status: int) -> bytes:
    return json.dumps({"message": _reason(status)}, separators=(",", ":")).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "loadcheck-gateway"
    sys_version = ""
    server: GatewayServer
    _reader: _DeadlineReader
    _buffered: io.BufferedReader

    def setup(self) -> None:
        self.request.settimeout(self.server.request_timeout_s)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake from %s refused: %s", self.client_address, exc)
            raise
        super().setup()
        self.rfile.close()
        self._reader = _DeadlineReader(self.request, self.server.request_timeout_s)
        self._buffered = io.BufferedReader(self._reader, _CHUNK)
        self.rfile = self._buffered

    def handle_one_request(self) -> None:
        self._reader.deadline = time.monotonic() + self.server.idle_timeout_s
        try:
            started = self._buffered.peek(1)
        except (TimeoutError, OSError):
            started = b""
        if not started:
            self.close_connection = True
            return
        self._reader.deadline = time.monotonic() + self.server.request_timeout_s
        super().handle_one_request()
        self._reader.deadline = float("inf")

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if not _TOKEN.fullmatch(self.command) or self.request_version not in ("HTTP/1.0", "HTTP/1.1"):
            self.send_error(400)
            return False
        size = len(self.raw_requestline.rstrip(b"\r\n")) + sum(len(v) for v in self.headers.values())
        if size > REQUEST_LINE_AND_HEADERS_LIMIT:
            self.send_error(431)
            return False
        return True

    def __getattr__(self, name: str) -> Any:
        # The base class dispatches on ``do_<METHOD>``: every method token reaches routing.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every refusal of the wire: API Gateway's JSON shape, then a close. Python's version
        and syntax errors (505, 414) are a 400 here; its header-count and line-length ones a 431."""
        status = {505: 400, 414: 431}.get(code, code if code in (400, 431) else 400)
        body = _json_error(status)
        self.log_request(status)
        head = (
            f"HTTP/1.1 {status} {_reason(status)}\r\ndate: {self.date_time_string()}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            f"apigw-requestid: {new_request_id()}\r\nconnection: close\r\n\r\n"
        )
        self.close_connection = True
        try:
            self.wfile.write(head.encode("latin-1") + body)
        except OSError:
            log.debug("client %s gone before its %d", self.client_address, status)

    def send_response(self, code: int, message: str | None = None) -> None:
        # Like the base class but without a Server header (API Gateway sends none).
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("date", self.date_time_string())

    def date_time_string(self, timestamp: float | None = None) -> str:
        return http_date(timestamp)  # formatted once per second, not per response

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s " + format, self.client_address[0], *args)

    def _discard(self, n: int) -> None:
        while n > 0:
            got = self.rfile.read(min(n, _CHUNK))
            if not got:
                raise ConnectionError("client closed while sending its body")
            n -= len(got)

    def _read_exactly(self, n: int) -> bytes:
        got = self.rfile.read(n)
        if len(got) < n:
            raise ConnectionError("client closed while sending its body")
        return got

    def _read_body(self, limit: int) -> tuple[bytes, bool, bool]:
        """(body, oversize, drained). An oversize body is discarded up to the drain cap; past the
        cap it stays unread (``drained`` False) and the connection must close. Raises
        :class:`BadRequest` for framing no HTTP/1.1 server accepts."""
        cap = 2 * limit + (1 << 20)
        encodings = self.headers.get_all("transfer-encoding") or []
        lengths = self.headers.get_all("content-length") or []
        if encodings:
            if [e.strip().lower() for e in ",".join(encodings).split(",")] != ["chunked"]:
                raise BadRequest(f"Transfer-Encoding {encodings!r}")
            return self._read_chunked(limit, cap)
        if len(set(lengths)) > 1 or (lengths and not _DIGITS.fullmatch(lengths[0].strip())):
            raise BadRequest(f"Content-Length {lengths!r}")
        length = int(lengths[0]) if lengths else 0
        if length > limit:
            if length > cap:
                return b"", True, False
            self._discard(length)
            return b"", True, True
        return (self._read_exactly(length) if length else b""), False, True

    def _read_chunked(self, limit: int, cap: int) -> tuple[bytes, bool, bool]:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                if not line.endswith(b"\n"):
                    raise ConnectionError("client closed while sending its body")
                raise BadRequest(f"chunk size line {line[:40]!r}")
            n = int(match.group(1), 16)
            if n == 0:
                while (trailer := self.rfile.readline(1024)) not in (b"\r\n", b"\n"):
                    if not trailer.endswith(b"\n"):
                        raise ConnectionError("client closed in the chunked trailers")
                return (b"", True, True) if size > limit else (b"".join(chunks), False, True)
            size += n
            if size > cap:
                return b"", True, False
            if size > limit:
                chunks = []
                self._discard(n)
            else:
                chunks.append(self._read_exactly(n))
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("chunk data longer than its size")

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
        except BadRequest as exc:
            log.debug("bad request framing from %s: %s", self.client_address, exc)
            self.send_error(400)
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
