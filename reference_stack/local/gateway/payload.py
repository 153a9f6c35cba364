"""Payload format 2.0: the event the gateway sends to Lambda and the mapping of its answer.

Sources: docs/aws-behaviour.md §3.1 (event fields, lower-cased comma-joined headers and query
parameters, cookies, null for absent parts as a real capture shows, ``authorizer.iam``,
text-vs-base64 body rule), §3.2 (response: full form with ``statusCode``, inferred form
without it, ``cookies`` -> ``set-cookie``, ``isBase64Encoded`` bodies decoded), §3.3 (what a
malformed answer becomes: 500).

Choices where AWS documents nothing (UNCONFIRMED):
- ``x-forwarded-port`` is the port the local gateway listens on (AWS: 443); ``x-forwarded-for``
  appends the peer address to a client-sent value, as proxies do.
- ``cookie`` headers move into ``cookies`` and are dropped from ``headers``.
- Query parameters are percent-decoded; ``+`` stays ``+`` (no form decoding).
- A request without a body has no ``body`` key and ``isBase64Encoded: false``.
- A full-form response without a ``content-type`` header is sent without one; a non-string
  ``body`` or a non-integer ``statusCode`` is a malformed response (500).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import time
from typing import Any
from urllib.parse import unquote

from loadcheck.core.state import Identity
from reference_stack.local.gateway.routing import Request

TEXT_TYPES = frozenset({"application/json", "application/xml", "application/javascript"})
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Headers the gateway owns on the way out; a function cannot set them.
_CRLF = re.compile(r"[\r\n]")
_HOP_BY_HOP = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive", "upgrade", "te", "trailer"})


# Ids need uniqueness, not secrecy: a PRNG seeded once from os.urandom avoids a system call per
# request (each one is a GIL hand-off between the server's threads).
_ids = random.Random()


class MalformedResponse(Exception):
    """The function's answer is not a payload 2.0 response API Gateway can map."""


def clf_time(when: Any) -> str:
    """``dd/MMM/yyyy:HH:mm:ss +0000`` (CLF; docs/aws-behaviour.md §2.1 requestTime, §3.1 time),
    with English month names whatever the locale."""
    return (
        f"{when.day:02d}/{_MONTHS[when.month - 1]}/{when.year:04d}:"
        f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} +0000"
    )


def epoch_ms(when: Any) -> int:
    return int(when.timestamp() * 1000)


def new_request_id() -> str:
    """A short base64 id like AWS's ``Mc7UVioPPHcEKPA=`` (docs/aws-behaviour.md §1.4): 11 random
    bytes -> 16 characters ending in ``=``."""
    return base64.b64encode(_ids.getrandbits(88).to_bytes(11, "big")).decode()


def trace_id(now: float | None = None) -> str:
    """An X-Ray style ``Root=1-<8 hex epoch>-<24 hex>`` id."""
    return f"Root=1-{int(now or time.time()):08x}-{_ids.getrandbits(96):024x}"


def is_text(content_type: str | None) -> bool:
    """§3.1: only text/*, application/json, application/xml and application/javascript bodies
    reach the function as text; everything else (also no Content-Type) is base64."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_TYPES


def query_parameters(raw_query: str) -> dict[str, str] | None:
    if not raw_query:
        return None
    params: dict[str, list[str]] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        params.setdefault(unquote(key), []).append(unquote(value))
    return {k: ",".join(v) for k, v in params.items()} or None


def event_headers(req: Request, *, trace: str) -> tuple[dict[str, str], list[str] | None]:
    """Lower-cased, comma-joined headers plus the ones API Gateway adds; and the cookies."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in req.headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[lname] = f"{headers[lname]},{value}" if lname in headers else value
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {req.source_ip}" if forwarded else req.source_ip
    headers["x-forwarded-port"] = str(req.server_port)
    headers["x-forwarded-proto"] = "https"
    headers.setdefault("x-amzn-trace-id", trace)
    return headers, (cookies or None)


def iam_authorizer(identity: Identity, access_key: str, account_id: str) -> dict[str, Any]:
    """``requestContext.authorizer.iam`` (§3.1; Powertools' apiGatewayProxyV2IamEvent.json)."""
    return {
        "iam": {
            "accessKey": access_key,
            "accountId": account_id,
            "callerId": identity.user_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": identity.arn,
            "userId": identity.user_id,
        }
    }


def build_event(
    req: Request,
    *,
    route_key: str,
    api_id: str,
    account_id: str,
    identity: Identity,
    access_key: str,
    stage: str = "$default",
    trace: str | None = None,
    path_parameters: dict[str, str] | None = None,
) -> dict[str, Any]:
    headers, cookies = event_headers(req, trace=trace or trace_id())
    domain = req.host
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "cookies": cookies,
        "headers": headers,
        "queryStringParameters": query_parameters(req.raw_query),
        "requestContext": {
            "accountId": account_id,
            "apiId": api_id,
            "authorizer": iam_authorizer(identity, access_key, account_id),
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "http": {
                "method": req.method,
                "path": unquote(req.raw_path),
                "protocol": req.protocol,
                "sourceIp": req.source_ip,
                "userAgent": req.header("user-agent") or "",
            },
            "requestId": req.request_id,
            "routeKey": route_key,
            "stage": stage,
            "time": clf_time(req.received_at),
            "timeEpoch": epoch_ms(req.received_at),
        },
        # The route's path variables, percent-decoded; null for a route without any (§10.9).
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "isBase64Encoded": False,
    }
    if req.body:
        if is_text(headers.get("content-type")):
            try:
                event["body"] = req.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"], event["isBase64Encoded"] = base64.b64encode(req.body).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(req.body).decode(), True
    return event


def map_response(payload: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """The function's output -> (status, headers, body); raises :class:`MalformedResponse`."""
    try:
        output = json.loads(payload) if payload.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"the function's output is not JSON: {exc}") from None
    if not (isinstance(output, dict) and "statusCode" in output):
        # Inferred form (§3.2): 200, application/json; a string is sent as it is, anything else
        # as its JSON text.
        text = output if isinstance(output, str) else json.dumps(output)
        return 200, [("content-type", "application/json")], text.encode("utf-8")
    status = output["statusCode"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode must be an integer 100..599, got {status!r}")
    headers: list[tuple[str, str]] = []
    raw_headers = output.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise MalformedResponse(f"headers must be an object, got {type(raw_headers).__name__}")
    for name, value in raw_headers.items():
        if isinstance(value, (dict, list)) or value is None:
            raise MalformedResponse(f"header {name!r} must be a string, got {value!r}")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if _CRLF.search(name) or _CRLF.search(text):
            raise MalformedResponse(f"header {name!r} contains a line break")
        if name.lower() not in _HOP_BY_HOP:
            headers.append((name.lower(), text))
    cookies = output.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) and not _CRLF.search(c) for c in cookies):
        raise MalformedResponse(f"cookies must be a list of one-line strings, got {cookies!r}")
    headers.extend(("set-cookie", c) for c in cookies)
    body = output.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise MalformedResponse(f"body must be a string, got {type(body).__name__}")
    elif output.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponse("isBase64Encoded is true but body is not valid base64") from None
    else:
        data = body.encode("utf-8")
    return status, headers, data
