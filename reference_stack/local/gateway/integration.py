"""The Lambda proxy integration: call the Lambda Invoke API and classify what came back.

Wire contract (docs/internals.md, "lambda"): ``POST {lambda_endpoint}/2015-03-31/functions/<name>/invocations``
answers 200 with the function's payload, ``X-Amz-Function-Error`` on a function error, 429
``TooManyRequestsException`` over reserved concurrency, and ``x-amzn-RequestId`` always.

Each gateway thread keeps one keep-alive connection to the Lambda service (as API Gateway
keeps connections to Lambda); a request on a connection the server closed meanwhile is retried
once on a fresh one. The integration timeout is the socket timeout (at most 30 s, §3.3); on
expiry the connection is dropped and the function keeps running, as on AWS.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit


# json.dumps with separators builds a new encoder per call; this one is built once.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


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


class LambdaInvoker:
    def __init__(self, *, endpoint: str, timeout_s: float) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"lambda_endpoint must be http://HOST:PORT, got {endpoint!r}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._timeout = timeout_s
        self._local = threading.local()

    def _connection(self, fresh: bool) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
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
        headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"}
        start = time.monotonic()
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt == 1)
            reused = getattr(conn, "sock", None) is not None
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
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
            if resp.getheader("connection", "").lower() == "close":
                self._drop()
            return InvokeResult(
                resp.status,
                payload,
                resp.getheader("x-amz-function-error"),
                resp.getheader("x-amzn-requestid"),
                _ms(start),
            )
        raise AssertionError("unreachable")


def _ms(start: float) -> int:
    return int(round((time.monotonic() - start) * 1000))
