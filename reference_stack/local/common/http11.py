"""HTTP/1.1 header parsing without the ``email`` package, for the local services' stdlib servers
and clients.

``http.client.parse_headers`` (which ``http.server`` uses for every request and ``http.client``
for every response) reads the header lines, then hands them to ``email.parser``: a general
MIME parser that costs about six times the reading. On the local stack every invocation crosses
four such parses (the gateway's request and the Invoke answer, the Invoke request, the runtime's
``/next`` and ``/response``), so :func:`install` replaces ``http.client.parse_headers`` in a
service process with :func:`parse_headers`, which gives the same result:

- the lines are read with the same limits and errors (``LineTooLong`` over 65,536 bytes,
  ``HTTPException("got more than 100 headers")``);
- a block whose every line is plain (ASCII, ``token: value``, no folding, no other line break
  than the final ``\\r\\n``/``\\n``) becomes a message of the requested class through
  ``Message.set_raw``, with the value as ``email``'s compat32 policy keeps it (leading spaces
  and tabs stripped, trailing ones kept);
- any other block (obsolete line folding, a line without a colon, non-ASCII bytes, a bare
  ``\\r``...) goes to the original ``email`` parser, so unusual and hostile input is parsed
  exactly as before.

A property test (``tests/property/test_http11_headers.py``) holds the two parsers to the same
headers, in order, on generated blocks. Installing is idempotent and only done by the service
processes' entry points (gateway, lambda), never at import.
"""

from __future__ import annotations

import email.parser
import email.utils
import http.client
import re
import time
from collections.abc import Callable, Iterable
from email.message import Message
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from typing import IO, Any

# http.client's own limits (http.client._MAXLINE, http.client._MAXHEADERS).
MAX_LINE = 65536
MAX_HEADERS = 100
# A header line the fast path takes: a token name, a colon, a value of printable ASCII, spaces
# or tabs, and one line end. Everything else goes to the email parser.
_PLAIN = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t]*?)\r?\n\Z")
_STDLIB_PARSE: Callable[..., Any] = http.client.parse_headers


def read_header_lines(fp: IO[bytes]) -> list[bytes]:
    """The header lines and the blank (or empty, at EOF) line that ends them, as ``http.client`` reads them."""
    headers = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        headers.append(line)
        if len(headers) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return headers


def parse_header_lines(lines: list[bytes], message_class: type[Message] = http.client.HTTPMessage) -> Message:
    """``lines`` (from :func:`read_header_lines`) as ``http.client.parse_headers`` would parse them."""
    msg = message_class()
    for raw in lines[:-1]:
        match = _PLAIN.match(raw.decode("iso-8859-1"))
        if match is None:
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=message_class).parsestr(text)
        msg.set_raw(match.group(1), match.group(2))
    msg.set_payload("")  # what the email parser leaves on a header-only block
    return msg


def parse_headers(fp: IO[bytes], _class: type[Message] = http.client.HTTPMessage) -> Message:
    """Drop-in for ``http.client.parse_headers`` (same signature, same result)."""
    return parse_header_lines(read_header_lines(fp), _class)


@lru_cache(maxsize=4)
def _http_date(second: int) -> str:
    return email.utils.formatdate(second, usegmt=True)


def http_date(now: float | None = None) -> str:
    """The ``Date`` header value (RFC 9110 IMF-fixdate), formatted once per second."""
    return _http_date(int(time.time() if now is None else now))


def write_response(
    handler: BaseHTTPRequestHandler, status: int, headers: Iterable[tuple[str, str]], body: bytes
) -> None:
    """``send_response`` + ``send_header``s + ``end_headers`` + the body, as ``http.server`` sends
    them (``Server`` and ``Date`` first, ``Content-Length`` last), in one write: one system call
    and one TCP segment instead of two."""
    handler.log_request(status)
    phrase = handler.responses[status][0] if status in handler.responses else ""
    lines = [
        f"{handler.protocol_version} {status} {phrase}",
        f"Server: {handler.version_string()}",
        f"Date: {http_date()}",
    ]
    for name, value in headers:
        lines.append(f"{name}: {value}")
        if name.lower() == "connection":
            handler.close_connection = value.lower() == "close" or (
                handler.close_connection and value.lower() != "keep-alive"
            )
    lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "strict")
    handler.wfile.write(head + body)


def install() -> None:
    """Make ``http.server`` and ``http.client`` in this process parse headers with :func:`parse_headers`."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]


def installed() -> bool:
    return http.client.parse_headers is parse_headers


__all__ = [
    "MAX_HEADERS",
    "MAX_LINE",
    "http_date",
    "install",
    "installed",
    "parse_header_lines",
    "parse_headers",
    "read_header_lines",
    "write_response",
]
