"""One HTTPS request the way a client of the custom domain sends it, with the TCP connection
going where the target says (curl's ``--resolve DOMAIN:PORT:ADDR``): Host header and TLS SNI
name the domain, the certificate is verified against the target's CA bundle, and nothing
touches /etc/hosts or DNS for the local stack.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    tls_version: str | None = None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("apigw-requestid")


class _Conn(http.client.HTTPSConnection):
    """HTTPSConnection whose TCP peer differs from the name it speaks TLS and HTTP to."""

    def __init__(self, server_name: str, address: str, port: int, *, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(server_name, port, context=context, timeout=timeout)
        self._address = address
        self._server_name = server_name
        self._tls_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self._server_name)


def tls_context(ca_bundle: str | None, *, check_hostname: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
    ctx.check_hostname = check_hostname
    return ctx


def send(
    *,
    server_name: str,
    address: str,
    port: int,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes = b"",
    context: ssl.SSLContext,
    timeout: float = 30.0,
) -> Answer:
    """Send one request; a server that answers before reading a large body and closes is fine."""
    conn = _Conn(server_name, address, port, context=context, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body or method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        try:
            view = memoryview(body)
            for i in range(0, len(body), 1 << 16):
                conn.send(view[i : i + (1 << 16)])
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            pass  # answered early (e.g. 413) and closed: read what it said
        resp = conn.getresponse()
        data = resp.read()
        tls = conn.sock.version() if isinstance(conn.sock, ssl.SSLSocket) else None
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, tls)
    finally:
        conn.close()


def handshake(
    *, server_name: str, address: str, port: int, context: ssl.SSLContext, timeout: float = 10.0
) -> str | None:
    """A bare TLS handshake; returns the negotiated version (raises ssl.SSLError if refused)."""
    with (
        socket.create_connection((address, port), timeout) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        return tls.version()


def resolve(host: str, port: int) -> str:
    """The address DNS gives for ``host`` (AWS targets without a connect address)."""
    info: list[Any] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return str(info[0][4][0])
