"""DynamoDB JSON protocol on the wire: requests in, responses (ours and moto's) out.

DynamoDB speaks JSON 1.0 over POST: ``X-Amz-Target: DynamoDB_20120810.<Operation>``, body a JSON
object. Errors are HTTP 400 with ``{"__type": "com.amazonaws.dynamodb.v20120810#<Exception>",
"message": ...}`` and an ``x-amzn-RequestId`` header (docs/aws-behaviour.md §7.4,
DDB:Programming.Errors). Responses carry ``x-amz-crc32`` (the CRC32 of the body), which botocore
verifies for DynamoDB: every body we rewrite gets a fresh one.
"""

from __future__ import annotations

import binascii
import io
import json
import re
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

TARGET_PREFIX = "DynamoDB_20120810."
ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
CONTENT_TYPE = "application/x-amz-json-1.0"
THROTTLE_MESSAGE = (
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API."
)  # §7.4: the message DynamoDB sends (botocore service model)
_ID_ALPHABET = string.ascii_uppercase + string.digits

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def new_request_id() -> str:
    """A request id shaped like DynamoDB's (52 upper-case letters and digits)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(52))


@dataclass
class Reply:
    """A complete HTTP response, buffered (DynamoDB bodies are small; we may rewrite them)."""

    status: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def code(self) -> int:
        return int(self.status.split(" ", 1)[0])

    def json(self) -> Any:
        return json.loads(self.body) if self.body else {}

    def error_type(self) -> str | None:
        """The exception's short name for a 4xx/5xx JSON error (e.g. ``ConditionalCheckFailedException``)."""
        if self.code < 400:
            return None
        try:
            kind = str(self.json().get("__type", ""))
        except (ValueError, AttributeError):
            return "UnknownError"
        return kind.rsplit("#", 1)[-1] or "UnknownError"

    def with_json(self, payload: Any) -> Reply:
        """This reply with a new JSON body, Content-Length and CRC32 (other headers kept)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        drop = {"content-length", "x-amz-crc32", "transfer-encoding"}
        headers = [(k, v) for k, v in self.headers if k.lower() not in drop]
        headers += [("Content-Length", str(len(body))), ("x-amz-crc32", str(binascii.crc32(body)))]
        return Reply(self.status, headers, body)

    def send(self, start_response: Callable[..., Any]) -> list[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


def json_reply(code: int, payload: Any, *, request_id: str | None = None) -> Reply:
    reason = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}.get(
        code, ""
    )
    reply = Reply(
        f"{code} {reason}".strip(),
        [
            ("Content-Type", CONTENT_TYPE),
            ("x-amzn-RequestId", request_id or new_request_id()),
        ],
    )
    return reply.with_json(payload)


def throttle_reply(reasons: Iterable[tuple[str, str]]) -> Reply:
    """DynamoDB's answer to a request that does not fit the capacity (§7.4), in shape and text.

    ``reasons`` are ``(reason, table ARN)`` pairs, e.g. ``("TableWriteProvisionedThroughputExceeded",
    "arn:aws:dynamodb:us-east-1:123456789012:table/EventLog")``; duplicates are sent once.
    """
    return json_reply(
        400,
        {
            "__type": ERROR_PREFIX + "ProvisionedThroughputExceededException",
            "message": THROTTLE_MESSAGE,
            "ThrottlingReasons": [{"reason": r, "resource": arn} for r, arn in dict.fromkeys(reasons)],
        },
    )


def read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    return stream.read(length) if length > 0 else b""


def call_app(app: WsgiApp, environ: dict[str, Any], body: bytes | None = None) -> Reply:
    """Run a WSGI app on ``environ`` (with ``body`` in place of its input, if given); buffer the response."""
    env = dict(environ)
    if body is not None:
        env["wsgi.input"] = io.BytesIO(body)
        env["CONTENT_LENGTH"] = str(len(body))
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, list(headers)
        return lambda _data: None

    result = app(env, start_response)
    try:
        body_out = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Reply(captured["status"], captured["headers"], body_out)


_REGION_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


def region_of(environ: dict[str, Any], default: str) -> str:
    """The region moto will use: the SigV4 credential scope's, else the service default."""
    match = _REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else default


def hash_key_condition(request: dict[str, Any], hash_attr: str | None) -> Any | None:
    """The partition-key value a Query names (``KeyConditionExpression`` or legacy ``KeyConditions``)."""
    if hash_attr is None:
        return None
    legacy = request.get("KeyConditions")
    if isinstance(legacy, dict):
        cond = legacy.get(hash_attr) or {}
        values = cond.get("AttributeValueList") or []
        return values[0] if values else None
    expr = request.get("KeyConditionExpression")
    if not isinstance(expr, str):
        return None
    names = request.get("ExpressionAttributeNames") or {}
    values = request.get("ExpressionAttributeValues") or {}
    for left, right in re.findall(r"([#:]?[\w.-]+)\s*=\s*([#:]?[\w.-]+)", expr):
        for attr, placeholder in ((left, right), (right, left)):
            if names.get(attr, attr) == hash_attr and placeholder.startswith(":"):
                return values.get(placeholder)
    return None


def consumed_capacity(mode: str | None, table: str, units: float) -> dict[str, Any] | None:
    """The ``ConsumedCapacity`` entry for ``ReturnConsumedCapacity`` TOTAL / INDEXES (None for NONE)."""
    if mode not in ("TOTAL", "INDEXES"):
        return None
    entry: dict[str, Any] = {"TableName": table, "CapacityUnits": units}
    if mode == "INDEXES":
        entry["Table"] = {"CapacityUnits": units}
    return entry
