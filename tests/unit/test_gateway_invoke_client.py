"""The gateway's Invoke API client (reference_stack/local/gateway/integration.py) against a
loopback server that answers with scripted bytes: framing, keep-alive, stale connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from reference_stack.local.gateway.integration import InvokeConnection, LambdaInvoker

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-amzn-RequestId: r-1\r\n\r\n{}"


class Scripted:
    """Accepts connections; answers the n-th request with ``answers[n]`` (bytes), then closes the
    connection when ``close_after`` says so. Records each request's bytes."""

    def __init__(self, answers: list[bytes], close_after: set[int] | None = None) -> None:
        self.answers = answers
        self.close_after = close_after or set()
        self.requests: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                buf = b""
                while len(self.requests) < len(self.answers):
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        buf += chunk
                    if b"\r\n\r\n" not in buf:
                        break
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    while len(rest) < length:
                        rest += conn.recv(65536)
                    self.requests.append(head + b"\r\n\r\n" + rest[:length])
                    buf = rest[length:]
                    n = len(self.requests) - 1
                    conn.sendall(self.answers[n])
                    if n in self.close_after:
                        break

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def scripted() -> Iterator[list[Scripted]]:
    made: list[Scripted] = []
    yield made
    for s in made:
        s.close()


def _server(scripted: list[Scripted], answers: list[bytes], close_after: set[int] | None = None) -> Scripted:
    s = Scripted(answers, close_after)
    scripted.append(s)
    return s


def test_one_write_request_and_content_length_answer(scripted: list[Scripted]) -> None:
    s = _server(scripted, [OK, OK])
    conn = InvokeConnection("127.0.0.1", s.port, 5)
    for _ in range(2):
        status, headers, body = conn.post("/2015-03-31/functions/f/invocations", b"X-A: 1\r\n", b'{"a":1}')
        assert (status, body, headers["x-amzn-requestid"]) == (200, b"{}", "r-1")
    conn.close()
    assert s.connections == 1  # kept alive
    head = s.requests[0].split(b"\r\n")
    assert head[0] == b"POST /2015-03-31/functions/f/invocations HTTP/1.1"
    assert f"Host: 127.0.0.1:{s.port}".encode() in head and b"X-A: 1" in head and b"Content-Length: 7" in head
    assert s.requests[0].endswith(b'\r\n\r\n{"a":1}')


def test_chunked_interim_and_unframed_answers(scripted: list[Scripted]) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n"
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    unframed = b"HTTP/1.0 502 Bad Gateway\r\n\r\nno length"
    s = _server(scripted, [chunked, interim, unframed], close_after={2})
    conn = InvokeConnection("127.0.0.1", s.port, 5)
    assert conn.post("/p", b"", b"{}")[::2] == (200, b"abcde")
    assert conn.post("/p", b"", b"{}")[::2] == (200, b"{}")
    assert conn.post("/p", b"", b"{}")[::2] == (502, b"no length")
    assert not conn.connected  # read to the close: the connection is gone


def test_connection_close_answer_drops_the_connection(scripted: list[Scripted]) -> None:
    s = _server(scripted, [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", OK], close_after={0})
    conn = InvokeConnection("127.0.0.1", s.port, 5)
    assert conn.post("/p", b"", b"{}")[0] == 200 and not conn.connected
    assert conn.post("/p", b"", b"{}")[0] == 200
    assert s.connections == 2


def test_invoker_retries_once_on_a_connection_the_server_closed(scripted: list[Scripted]) -> None:
    s = _server(scripted, [OK, OK], close_after={0})  # closes after the first answer, without saying so
    invoker = LambdaInvoker(endpoint=f"http://127.0.0.1:{s.port}", timeout_s=5)
    first = invoker.invoke("f", {"a": 1})
    second = invoker.invoke("f", {"a": 2})
    assert (first.status, second.status) == (200, 200) and second.request_id == "r-1"
    assert s.connections == 2


def test_invoker_reports_a_bad_answer_and_a_timeout(scripted: list[Scripted]) -> None:
    bad = _server(scripted, [b"garbage\r\n\r\n"], close_after={0})
    r = LambdaInvoker(endpoint=f"http://127.0.0.1:{bad.port}", timeout_s=5).invoke("f", {})
    assert r.status is None and r.error is not None and "cannot reach the Lambda service" in r.error
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) and never answers
    try:
        r = LambdaInvoker(endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.3).invoke("f", {})
    finally:
        silent.close()
    assert r.timed_out and r.status is None
