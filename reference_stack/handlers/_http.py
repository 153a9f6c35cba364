"""Reading API Gateway HTTP API payload 2.0 events and writing 2.0 responses.

Shared by ``events.py`` and ``search.py``. Standard library only: this directory is zipped
and deployed to Lambda as it is, where only the standard library and boto3/botocore exist.

What the event looks like (docs/aws-behaviour.md §3.1): header names are lower-cased and repeated
headers comma-joined; repeated query parameters are comma-joined in
``queryStringParameters`` (``null`` when there are none); ``body`` is text for ``text/*``,
``application/json``, ``application/xml`` and ``application/javascript`` and base64 with
``isBase64Encoded: true`` for everything else. Events built by hand (tests, direct invokes)
may have mixed-case header names or omit keys, so every reader here tolerates both.

The response (docs/aws-behaviour.md §3.2) is always the full form, ``statusCode`` + ``headers`` +
``body`` + ``isBase64Encoded``, so API Gateway never has to infer anything.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import json
from typing import Any

JSON_TYPE = "application/json"


class HttpError(Exception):
    """A client error to answer with ``{"message": ...}`` and the given status."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _json_default(value: Any) -> Any:
    # DynamoDB numbers come back as Decimal, binaries as bytes, sets as set.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), (bytes, bytearray)):
        return base64.b64encode(bytes(value.value)).decode("ascii")  # boto3 Binary
    raise TypeError(f"cannot serialise {type(value).__name__}")


def response(status: int, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A payload-2.0 response with a JSON body."""
    out_headers = {"content-type": JSON_TYPE}
    out_headers.update(headers or {})
    return {
        "statusCode": status,
        "headers": out_headers,
        "body": json.dumps(payload, default=_json_default, ensure_ascii=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(err: HttpError) -> dict[str, Any]:
    return response(err.status, {"message": err.message}, err.headers)


def method_of(event: dict[str, Any]) -> str:
    http = (event.get("requestContext") or {}).get("http") or {}
    method = http.get("method")
    if not method and isinstance(event.get("routeKey"), str) and " " in event["routeKey"]:
        method = event["routeKey"].split(" ", 1)[0]
    return str(method or "").upper()


def path_of(event: dict[str, Any]) -> str:
    http = (event.get("requestContext") or {}).get("http") or {}
    path = event.get("rawPath") or http.get("path") or ""
    if not path and isinstance(event.get("routeKey"), str) and " " in event["routeKey"]:
        path = event["routeKey"].split(" ", 1)[1]
    # A custom domain's API mapping may leave a trailing slash; /events/ is /events.
    return path.rstrip("/") or "/"


def header(event: dict[str, Any], name: str) -> str | None:
    """A request header by case-insensitive name (2.0 events already lower-case them)."""
    headers = event.get("headers") or {}
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def query_params(event: dict[str, Any]) -> dict[str, str]:
    return dict(event.get("queryStringParameters") or {})


def body_bytes(event: dict[str, Any]) -> bytes:
    """The request body as bytes, decoding base64 when ``isBase64Encoded`` says so."""
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise HttpError(400, "body: isBase64Encoded is true but the body is not valid base64") from None
    if isinstance(body, bytes):
        return body
    return str(body).encode("utf-8")


def require_json_content_type(event: dict[str, Any]) -> None:
    """415 unless the request says ``application/json`` (optionally ``; charset=utf-8``)."""
    value = header(event, "content-type")
    if value is None:
        raise HttpError(
            415, "content-type header is missing; send the body as JSON with content-type: application/json"
        )
    media, _, params = value.partition(";")
    if media.strip().lower() != JSON_TYPE:
        raise HttpError(
            415,
            f"content-type {value.strip()!r} is not supported; send the body as JSON with "
            "content-type: application/json",
        )
    for param in params.split(";"):
        key, _, val = param.strip().partition("=")
        if key.lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise HttpError(
                415,
                f"charset {val.strip()!r} is not supported; encode the body as UTF-8 "
                "(content-type: application/json; charset=utf-8)",
            )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise HttpError(400, f"body: field {key!r} appears more than once; send each field once")
        out[key] = value
    return out


def _no_constants(value: str) -> Any:
    raise HttpError(400, f"body: {value} is not valid JSON; send finite numbers only")


def parse_json_body(raw: bytes, *, limit: int) -> Any:
    """Decode a JSON body of at most ``limit`` bytes; 413/400 name what is wrong."""
    if len(raw) > limit:
        raise HttpError(413, f"body is {len(raw)} bytes; the limit is {limit} bytes")
    if not raw.strip():
        raise HttpError(400, "body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, f"body is not valid UTF-8 (byte {exc.start}); encode the body as UTF-8") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise HttpError(400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise HttpError(400, "body is nested too deeply; flatten the JSON") from None


def request_id(context: Any) -> str:
    return str(getattr(context, "aws_request_id", None) or "-")
