"""Raw HTTP/1.1 over TLS at the gateway, for test_gateway_hostile.py: one exchange on a fresh
connection with the request cut into TLS records where the caller says, what came back (an
answer, a close, or nothing by the deadline), the Hypothesis strategy of hostile requests, and
the gateway process's thread count and RSS.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from dataclasses import dataclass

import psutil
from hypothesis import strategies as st

DOMAIN = "events.loadcheck.test"
WIRE_REFUSALS = (400, 431)  # the wire's own answers: they never reach routing (server.py)


@dataclass
class Outcome:
    status: int | None  # None: the gateway closed (or the deadline passed) without an answer
    headers: dict[str, str]
    body: bytes
    closed: bool  # the gateway closed the connection (after its answer, or instead of one)
    elapsed_s: float

    @property
    def request_id(self) -> str:
        return self.headers.get("apigw-requestid", "")


def client_context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


def connect(port: int, ctx: ssl.SSLContext, timeout_s: float) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    try:
        return ctx.wrap_socket(raw, server_hostname=DOMAIN)
    except BaseException:
        raw.close()
        raise


def _parse(buf: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """The first complete response in ``buf``, or None if it is not all there yet."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    return (status, headers, rest[:length]) if len(rest) >= length else None


def exchange(port: int, ctx: ssl.SSLContext, records: list[bytes], *, deadline_s: float) -> Outcome:
    """Send ``records`` (each ``sendall`` is its own TLS record or records) on a new connection
    and read until a whole answer, a close, or ``deadline_s``."""
    start = time.monotonic()
    with connect(port, ctx, deadline_s) as tls:
        try:
            for piece in records:
                tls.sendall(piece)
        except OSError:
            pass  # the gateway may refuse and close before the client has sent everything
        buf = b""
        closed = False
        while (parsed := _parse(buf)) is None:
            left = deadline_s - (time.monotonic() - start)
            if left <= 0:
                break
            tls.settimeout(left)
            try:
                got = tls.recv(65536)
            except TimeoutError:
                break
            except OSError:
                got = b""
            if not got:
                closed = True
                break
            buf += got
        elapsed = time.monotonic() - start
        if parsed is None:
            return Outcome(None, {}, buf, closed, elapsed)
        status, headers, body = parsed
        return Outcome(status, headers, body, closed or headers.get("connection") == "close", elapsed)


def problem(out: Outcome, deadline_s: float) -> str | None:
    """Why ``out`` is not an AWS-shaped answer or a close within the deadline (None: it is)."""
    if out.status is None:
        if not out.closed:
            return f"no answer and no close within {deadline_s} s (got {out.body[:80]!r})"
        return None
    if out.status >= 500:
        return f"{out.status} on client input: {out.body[:200]!r}"
    if out.body:
        if out.headers.get("content-type") != "application/json":
            return f"{out.status} with content-type {out.headers.get('content-type')!r}: {out.body[:120]!r}"
        try:
            json.loads(out.body)
        except ValueError:
            return f"{out.status} with a body that is not JSON: {out.body[:120]!r}"
    if out.status in WIRE_REFUSALS and not out.closed:
        return f"{out.status} left the connection open"
    return None


# -- the strategy ---------------------------------------------------------------------------

_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE", "CONNECT", "BREW"])
_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
_NASTY = st.binary(min_size=1, max_size=24)
_TARGETS = st.one_of(
    st.sampled_from(["/events", "/events?limit=3", "/search?q=a", "/", "*", "/_loadcheck/faults", "/%ZZ", "//x"]),
    _TEXT.map(lambda t: "/" + t),
    st.builds(lambda n: "/" + "a" * n, st.integers(0, 12000)),
)
_VERSIONS = st.sampled_from(
    ["HTTP/1.1"] * 8 + ["HTTP/1.0", "HTTP/9.9", "HTTP/2.0", "HTTP/1", "HTTX/1.1", "http/1.1", ""]
)
_KNOWN_NAMES = st.sampled_from(
    ["Content-Type", "Expect", "X-Amz-Date", "Authorization", "Origin", "Connection", "Cookie"]
)
_HEADER_NAMES = st.one_of(_KNOWN_NAMES, _KNOWN_NAMES, _TEXT, _NASTY)
_HEADER_VALUES = st.one_of(_TEXT, _TEXT, _NASTY, st.builds(lambda n: "v" * n, st.integers(0, 20000)))
_LENGTHS = st.sampled_from(["-5", "0", "+3", "0x10", "1e3", " 7 ", "99999999999999999999", "3, 4", "abc"])


def _chunked(body: bytes, sizes: list[int], bad: bytes | None) -> bytes:
    out = b""
    rest = body
    for n in sizes:
        piece, rest = rest[:n], rest[n:]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    out += (bad or b"") + b"0\r\n\r\n"
    return out


@st.composite
def hostile_requests(draw: st.DrawFn) -> bytes:
    """Bytes on the wire: one request for the API's Host, malformed anywhere, or noise."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(min_size=1, max_size=2048))
    eol = b"\r\n" if draw(st.integers(0, 7)) else b"\n"
    method = draw(st.one_of(_METHODS, _METHODS, _METHODS, _TEXT, _NASTY.map(lambda b: b.decode("latin-1"))))
    target, version = draw(_TARGETS), draw(_VERSIONS)
    headers: list[tuple[bytes, bytes]] = [(b"Host", DOMAIN.encode())]
    for name, value in draw(st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=4)):
        name_b = name if isinstance(name, bytes) else name.encode()
        value_b = value if isinstance(value, bytes) else value.encode()
        if name_b.strip().lower() in (b"host", b"content-length", b"transfer-encoding"):
            continue
        headers.append((name_b, value_b))
    body = draw(st.binary(max_size=256))
    framing = draw(st.sampled_from(["none", "length", "length", "odd-length", "chunked", "bad-chunked"]))
    if framing == "length":
        headers.append((b"Content-Length", str(len(body)).encode()))
    elif framing == "odd-length":
        headers.append((b"Content-Length", str(draw(_LENGTHS)).encode()))
    elif framing in ("chunked", "bad-chunked"):
        headers.append((b"Transfer-Encoding", b"chunked"))
        sizes = draw(st.lists(st.integers(1, 64), max_size=5))
        bad = (
            draw(st.sampled_from([b"zz\r\n", b"5\r\nab\r\n", b"-1\r\n", b"\r\n"])) if framing == "bad-chunked" else None
        )
        body = _chunked(body, sizes, bad)
    else:
        body = b""
    line = f"{method} {target} {version}".encode("latin-1", "replace")
    head = eol.join([line, *(n + b": " + v for n, v in headers)]) + eol + eol
    return head + body


def cut(data: bytes, points: list[int]) -> list[bytes]:
    """``data`` cut at ``points`` (fractions of its length in thousandths): TLS record boundaries."""
    edges = sorted({min(len(data), p * len(data) // 1000) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False) if b > a]


# -- the process ----------------------------------------------------------------------------


def threads_and_rss(pid: int) -> tuple[int, int]:
    proc = psutil.Process(pid)
    return proc.num_threads(), proc.memory_info().rss


def wait_for_threads(pid: int, at_most: int, timeout_s: float) -> int:
    """The process's thread count once it is ``<= at_most``, or its count at ``timeout_s``."""
    end = time.monotonic() + timeout_s
    while True:
        n = psutil.Process(pid).num_threads()
        if n <= at_most or time.monotonic() > end:
            return n
        time.sleep(0.1)  # polling the process's thread count against a deadline


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
