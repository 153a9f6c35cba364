"""The services' header parser (reference_stack/local/common/http11.py) against the stdlib's.

Whatever bytes arrive, ``http11.parse_headers`` must give what ``http.client.parse_headers``
(the email parser) gives: the same headers in the same order, the same payload, the same kinds
of defects, the same errors; and it must leave the stream at the same place.
"""

from __future__ import annotations

import http.client
import io

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reference_stack.local.common import http11

STDLIB = http11._STDLIB_PARSE

_names = st.sampled_from(["Host", "content-type", "X-Amz-Date", "Authorization", "a", "X_y", "From"]) | st.text(
    st.characters(min_codepoint=0, max_codepoint=255), min_size=0, max_size=8
)
_values = st.text(st.sampled_from("abc =;:,/+\t\r\n\x0b\x0c\x1c\x85\xe9\x00-"), max_size=12)
_ends = st.sampled_from(["\r\n", "\n", "\r", ""])


@st.composite
def header_blocks(draw: st.DrawFn) -> bytes:
    lines = draw(
        st.lists(st.tuples(_names, st.sampled_from([":", ": ", ":\t", " : ", ""]), _values, _ends), max_size=6)
    )
    text = "".join(f"{n}{sep}{v}{end}" for n, sep, v, end in lines) + draw(st.sampled_from(["\r\n", "\n", ""]))
    return text.encode("iso-8859-1") + draw(st.sampled_from([b"", b"body", b"\r\nmore"]))


def _parse(parse: object, data: bytes) -> tuple[object, ...]:
    fp = io.BytesIO(data)
    try:
        msg = parse(fp)  # type: ignore[operator]
    except http.client.HTTPException as exc:
        return ("error", type(exc).__name__, str(exc), fp.tell())
    return (msg.items(), msg.get_payload(), [type(d) for d in msg.defects], msg.get_unixfrom(), fp.tell())


@given(header_blocks())
@example(b"Host: a\r\nX:  b \r\n\r\n")
@example(b"Host: a\r\n folded\r\n\r\n")
@example(b"bad line\r\nHost: a\r\n\r\n")
@example(b"H: a\rb\r\n\r\n")
@example(b"From x\r\nA: b\r\n\r\n")
@example(b"H: \xe9\r\n\r\n")
@example(b":x\r\n\r\n")
def test_same_as_stdlib(data: bytes) -> None:
    assert _parse(http11.parse_headers, data) == _parse(STDLIB, data)


@pytest.mark.parametrize(
    "data",
    [b"X: " + b"a" * 70000 + b"\r\n\r\n", b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n"],
    ids=["line too long", "too many headers"],
)
def test_same_limits(data: bytes) -> None:
    assert _parse(http11.parse_headers, data) == _parse(STDLIB, data)
    assert _parse(http11.parse_headers, data)[0] == "error"


def test_install_replaces_the_stdlib_parser() -> None:
    try:
        http11.install()
        assert http11.installed()
        resp = http.client.parse_headers(io.BytesIO(b"Content-Length: 3\r\n\r\n"))
        assert resp.get("content-length") == "3"
    finally:
        http.client.parse_headers = STDLIB  # type: ignore[assignment]
    assert not http11.installed()
