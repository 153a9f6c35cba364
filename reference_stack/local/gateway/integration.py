"""The Lambda proxy integration: call the Lambda Invoke API and classify what came back.

Wire contract (docs/internals.md, "lambda"): ``POST {lambda_endpoint}/2015-03-31/functions/<name>/invocations``
answers 200 with the function's payload, ``X-Amz-Function-Error`` on a function error, 429
``TooManyRequestsException`` over reserved concurrency, and ``x-amzn-RequestId`` always.

Each gateway thread keeps one keep-alive connection to the Lambda service (as API Gateway
keeps connections to Lambda, :class:`InvokeConnection`); a request on a connection the server
closed meanwhile is retried once on a fresh one. The integration timeout is the socket timeout
(at most 30 s, §3.3); on expiry the connection is dropped and the function keeps running, as
on AWS.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import quote, urlsplit

from reference_stack.local.common import http11

# json.dumps with separators builds a new encoder per call; this one is built once.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_INVOKE_HEADERS = b"Content-Type: application/json\r\nX-Amz-Invocation-Type: RequestResponse\r\n"


@dataclass(frozen=True)
class InvokeResult:
    """What the Invoke API said. ``status`` None means no HTTP answer (``timed_out`` or
    ``error`` tells why)."""

    status: int | None
    payload: bytes
    function_error: str | None
    request_id: str | None
    latency_ms: int
    timed_out: bool = False
    error: str | None = None


class InvokeConnection:
    """One keep-alive HTTP/1.1 connection to the Invoke API.

    What ``http.client.HTTPConnection`` does for this one exchange, with less work per request:
    the request line, headers and body leave in one write (TCP_NODELAY), and the answer's
    headers are read with the services' parser (:mod:`reference_stack.local.common.http11`).
    The body is framed by ``Content-Length``, by chunks, or (neither) by the server closing.
    Errors are ``http.client``'s: ``RemoteDisconnected`` when the server closed the connection
    before answering, ``BadStatusLine``, ``IncompleteRead``; a socket timeout is ``TimeoutError``.
    """

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self._address = (host, port)
        self._timeout = timeout_s
        self._host_header = f"Host: {f'[{host}]' if ':' in host else host}:{port}\r\n".encode("latin-1")
        self._sock: socket.socket | None = None
        self._rfile: Any = None

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def close(self) -> None:
        sock, rfile, self._sock, self._rfile = self._sock, self._rfile, None, None
        if rfile is not None:
            rfile.close()
        if sock is not None:
            sock.close()

    def post(self, path: str, headers: bytes, body: bytes) -> tuple[int, Message, bytes]:
        """(status, headers, body) of ``POST path``; ``headers`` are CRLF-terminated lines."""
        if self._sock is None:
            self._sock = socket.create_connection(self._address, self._timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._rfile = self._sock.makefile("rb")
        head = b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n" % (
            path.encode("ascii"),
            self._host_header,
            headers,
            len(body),
        )
        self._sock.sendall(head + body)
        status, version, msg = self._read_head()
        while 100 <= status < 200:  # interim answers (100 Continue) carry no body; the final one follows
            status, version, msg = self._read_head()
        close = version == "HTTP/1.0" or (msg.get("connection") or "").lower() == "close"
        length = msg.get("content-length")
        if status in (204, 304):
            payload = b""
        elif (msg.get("transfer-encoding") or "").lower() == "chunked":
            payload = self._read_chunked()
        elif length is not None:
            if not length.strip().isdigit():
                raise http.client.HTTPException(f"the Invoke API answered Content-Length {length!r}")
            payload = self._read_exactly(int(length))
        else:
            payload, close = self._rfile.read(), True  # no framing: the body ends with the connection
        if close:
            self.close()
        return status, msg, payload

    def _read_head(self) -> tuple[int, str, Message]:
        line = self._rfile.readline(http11.MAX_LINE + 1)
        if not line:
            raise http.client.RemoteDisconnected("the Lambda service closed the connection without an answer")
        version, _, rest = line.decode("iso-8859-1").rstrip("\r\n").partition(" ")
        code = rest.split(" ", 1)[0]
        if not version.startswith("HTTP/") or len(code) != 3 or not code.isdigit():
            raise http.client.BadStatusLine(line.decode("iso-8859-1"))
        return int(code), version, http11.parse_headers(self._rfile)

    def _read_exactly(self, n: int) -> bytes:
        data = self._rfile.read(n) if n else b""
        if len(data) < n:
            raise http.client.IncompleteRead(data, n - len(data))
        return bytes(data)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self._rfile.readline(http11.MAX_LINE + 1)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise http.client.IncompleteRead(b"".join(chunks)) from None
            if size == 0:
                while self._rfile.readline(http11.MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self._read_exactly(size))
            self._rfile.readline(http11.MAX_LINE + 1)  # the CRLF after the chunk


class LambdaInvoker:
    def __init__(self, *, endpoint: str, timeout_s: float) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"lambda_endpoint must be http://HOST:PORT, got {endpoint!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._timeout = timeout_s
        self._local = threading.local()

    def _connection(self, fresh: bool) -> InvokeConnection:
        conn: InvokeConnection | None = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = InvokeConnection(self._host, self._port, self._timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def invoke(self, function_name: str, event: dict[str, object]) -> InvokeResult:
        body = _ENCODE(event).encode("utf-8")
        path = f"/2015-03-31/functions/{quote(function_name, safe='')}/invocations"
        start = time.monotonic()
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt == 1)
            reused = conn.connected
            try:
                status, headers, payload = conn.post(path, _INVOKE_HEADERS, body)
            except TimeoutError:
                self._drop()
                return InvokeResult(
                    None,
                    b"",
                    None,
                    None,
                    _ms(start),
                    timed_out=True,
                    error=f"integration timed out after {self._timeout:g} s",
                )
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                self._drop()
                if attempt == 0 and reused:
                    continue  # the keep-alive connection went stale; one retry on a new one
                return InvokeResult(None, b"", None, None, _ms(start), error=f"cannot reach the Lambda service: {exc}")
            return InvokeResult(
                status,
                payload,
                _header(headers, "x-amz-function-error"),
                _header(headers, "x-amzn-requestid"),
                _ms(start),
            )
        raise AssertionError("unreachable")


def _header(headers: Message, name: str) -> str | None:
    """A header's value as ``HTTPResponse.getheader`` gives it (repeats comma-joined)."""
    values = headers.get_all(name)
    return ", ".join(values) if values else None


def _ms(start: float) -> int:
    return int(round((time.monotonic() - start) * 1000))
