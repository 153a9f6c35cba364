"""Hypothesis strategies for HTTP API payload-2.0 events, and a check of a handler's response.

What the events look like (docs/aws-behaviour.md §3.1): ``version`` "2.0", ``routeKey``,
``rawPath``, ``rawQueryString`` as sent (percent-encoded), ``headers`` with lower-case names
and repeated headers comma-joined, ``queryStringParameters`` decoded with repeated names
comma-joined, ``cookies`` as a list, ``requestContext`` with ``accountId``, ``apiId``,
``domainName``, ``domainPrefix``, ``http{method, path, protocol, sourceIp, userAgent}``,
``requestId`` (the short ``apigw-requestid`` form, §1.4), ``routeKey``, ``stage``, ``time``
(``12/Mar/2020:19:03:58 +0000``), ``timeEpoch`` (ms) and ``authorizer.iam`` (the caller's
access key, account, ARN, user id; IAM-authorized routes). Bodies are text for ``text/*``,
``application/json``, ``application/xml`` and ``application/javascript`` and base64 with
``isBase64Encoded: true`` for everything else, including no content type at all.

Where these events depart from AWS (choices, since AWS documents no more than this):

- Empty ``cookies``/``queryStringParameters``/``pathParameters`` are generated both as
  ``null`` and as absent keys: a real capture shows ``null``, AWS documents neither
  (docs/aws-behaviour.md §10 item 9), so handlers should accept both.
- The text/base64 split follows a third party's measurement against AWS (§3.1), not an AWS
  page; ``application/x-www-form-urlencoded`` is base64 here as measured there.
- ``requestId`` and ``apiId`` are random strings of AWS's shape, not real ids.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from loadcheck.core.state import ACCOUNT_ID

MAX_BODY_BYTES = 16 * 1024

TEXT_MEDIA_TYPES = ("application/json", "application/xml", "application/javascript")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_UNSET: Any = object()


def body_is_text(content_type: str | None) -> bool:
    """Whether API Gateway passes a body of this content type as text (else base64), §3.1."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in TEXT_MEDIA_TYPES


def _strategy(value: Any, default: SearchStrategy[Any]) -> SearchStrategy[Any]:
    if value is _UNSET:
        return default
    if isinstance(value, SearchStrategy):
        return value
    return st.just(value)


# ------------------------------------------------------------------------------------------
# Payload 2.0 events

_TOKEN = st.text(alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12).filter(
    lambda s: s[0] != "-"
)
_HEADER_VALUE = (
    st.text(alphabet=string.ascii_letters + string.digits + " -_.;=/", min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
_QUERY_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), min_size=0, max_size=12)


def _default_body() -> SearchStrategy[Any]:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
        max_leaves=8,
    )
    return st.one_of(st.none(), st.binary(max_size=256), st.text(max_size=256), json_values.map(json.dumps))


def _content_types() -> SearchStrategy[str | None]:
    return st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/xml",
            "application/octet-stream",
            "application/x-www-form-urlencoded",
            "image/png",
            None,
        ]
    )


def _request_ids() -> SearchStrategy[str]:
    # apigw-requestid looks like "Mc7UVioPPHcEKPA=": base64 of 11 bytes (docs/aws-behaviour.md §1.4).
    return st.binary(min_size=11, max_size=11).map(lambda b: base64.b64encode(b).decode("ascii"))


def _api_ids() -> SearchStrategy[str]:
    return st.text(alphabet=string.ascii_lowercase + string.digits, min_size=10, max_size=10)


def _identity(access_key: str, user: str) -> dict[str, Any]:
    """``requestContext.authorizer.iam`` for an IAM user (docs/aws-behaviour.md §3.1)."""
    user_id = "AIDA" + access_key[4:]
    return {
        "accessKey": access_key,
        "accountId": ACCOUNT_ID,
        "callerId": user_id,
        "cognitoIdentity": None,
        "principalOrgId": None,
        "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{user}",
        "userId": user_id,
    }


def _identities() -> SearchStrategy[dict[str, Any]]:
    keys = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16).map(lambda s: "AKIA" + s)
    return st.builds(_identity, keys, st.sampled_from(["loadcheck-requester", "alice", "ci-runner"]))


def _encode_body(body: Any, content_type: str | None) -> tuple[str | None, bool, int]:
    """(body field, isBase64Encoded, length in bytes) as API Gateway hands them over."""
    if body is None:
        return None, False, 0
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    if body_is_text(content_type):
        try:
            return raw.decode("utf-8"), False, len(raw)
        except UnicodeDecodeError:
            pass  # not text after all: base64 keeps the bytes intact
    return base64.b64encode(raw).decode("ascii"), True, len(raw)


def http_api_v2_event(
    method: str,
    path: str,
    body: Any = None,
    *,
    content_type: str | None = None,
    query: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, list[str]] | None = None,
    cookies: list[str] | None = None,
    route_key: str | None = None,
    domain_name: str = "events.loadcheck.test",
    stage: str = "$default",
    when: _dt.datetime | None = None,
    request_id: str = "Mc7UVioPPHcEKPA=",
    api_id: str = "a1b2c3d4e5",
    identity: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    user_agent: str = "python-requests/2.32",
    empty_as_null: bool = True,
    path_parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One payload-2.0 event, built the way API Gateway builds it (see the module docstring).

    ``body`` may be ``None``, ``str``, ``bytes`` or a ``dict``/``list`` (sent as JSON; the
    content type then defaults to ``application/json``). ``query`` and ``headers`` map a name
    to its list of values. ``empty_as_null`` writes empty optional fields as ``null`` rather
    than leaving them out. ``path_parameters`` are the route's ``{name}`` values (``path`` already
    holds them, percent-encoded).
    """
    if content_type is None and isinstance(body, (dict, list)):
        content_type = "application/json"
    when = when or _dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=_dt.UTC)
    identity = identity or _identity("AKIAEXAMPLEEXAMPLE00", "loadcheck-requester")
    query = query or {}
    rk = route_key or f"{method} {path}"
    body_field, is_b64, length = _encode_body(body, content_type)
    raw_query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, vs in query.items() for v in vs)
    hdrs: dict[str, str] = {
        "host": domain_name,
        "user-agent": user_agent,
        "x-amz-date": when.strftime("%Y%m%dT%H%M%SZ"),
        "x-amzn-trace-id": f"Root=1-{int(when.timestamp()):08x}-{request_id.encode().hex()[:24]:0<24}",
        "x-forwarded-for": source_ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if content_type is not None:
        hdrs["content-type"] = content_type
    if body is not None:
        hdrs["content-length"] = str(length)
    for name, values in (headers or {}).items():
        hdrs[name.lower()] = ",".join(values)
    if cookies:
        hdrs["cookie"] = "; ".join(cookies)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": rk,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": hdrs,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "authorizer": {"iam": identity},
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": rk,
            "stage": stage,
            "time": when.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(when.timestamp() * 1000),
        },
        "isBase64Encoded": is_b64,
    }
    optional = {
        "cookies": list(cookies or []) or None,
        "queryStringParameters": {k: ",".join(vs) for k, vs in query.items()} or None,
        "pathParameters": dict(path_parameters or {}) or None,
        "stageVariables": None,
    }
    for key, value in optional.items():
        if value is not None or empty_as_null:
            event[key] = value
    if body_field is not None:
        event["body"] = body_field
    return event


@st.composite
def http_api_v2_events(
    draw: st.DrawFn,
    method: Any = _UNSET,
    path: Any = _UNSET,
    body: Any = _UNSET,
    *,
    content_type: Any = _UNSET,
    query: Any = _UNSET,
    headers: Any = _UNSET,
    cookies: Any = _UNSET,
    route_key: Any = _UNSET,
    domain_name: Any = _UNSET,
    stage: str = "$default",
    path_parameters: Any = _UNSET,
) -> dict[str, Any]:
    """Payload-2.0 events as an HTTP API with IAM authorization sends them to a Lambda.

    Every argument is a value or a strategy; see :func:`http_api_v2_event` for their meaning.
    ``route_key`` defaults to ``"<METHOD> <path>"`` (pass ``"$default"`` for a catch-all route).
    """
    m = draw(_strategy(method, st.sampled_from(METHODS[:5])))
    p = draw(_strategy(path, st.sampled_from(["/events", "/search"])))
    b = draw(_strategy(body, st.none() if m in ("GET", "HEAD", "OPTIONS") else _default_body()))
    default_ct = (
        st.none() if b is None else (st.just("application/json") if isinstance(b, (dict, list)) else _content_types())
    )
    when = draw(
        st.datetimes(
            min_value=_dt.datetime(2020, 1, 1), max_value=_dt.datetime(2035, 12, 31), timezones=st.just(_dt.UTC)
        )
    )
    return http_api_v2_event(
        m,
        p,
        b,
        content_type=draw(_strategy(content_type, default_ct)),
        query=draw(
            _strategy(
                query,
                st.dictionaries(
                    st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=8),
                    st.lists(_QUERY_TEXT, min_size=1, max_size=2),
                    max_size=3,
                ),
            )
        ),
        headers=draw(
            _strategy(
                headers,
                st.dictionaries(
                    _TOKEN.map(lambda s: "x-" + s), st.lists(_HEADER_VALUE, min_size=1, max_size=2), max_size=2
                ),
            )
        ),
        cookies=draw(
            _strategy(
                cookies,
                st.lists(
                    st.builds(
                        "{}={}".format, _TOKEN, st.text(alphabet=string.ascii_letters + string.digits, max_size=10)
                    ),
                    max_size=2,
                ),
            )
        ),
        route_key=draw(_strategy(route_key, st.just(f"{m} {p}"))),
        domain_name=draw(_strategy(domain_name, st.just("events.loadcheck.test"))),
        stage=stage,
        when=when,
        request_id=draw(_request_ids()),
        api_id=draw(_api_ids()),
        identity=draw(_identities()),
        source_ip=draw(st.ip_addresses(v=4).map(str)),
        user_agent=draw(st.sampled_from(["locust/2.43", "python-requests/2.32", "curl/8.5.0", "aws-cli/2.17"])),
        empty_as_null=draw(st.booleans()),  # null or absent: both occur, see the module docstring
        path_parameters=draw(_strategy(path_parameters, st.none())),
    )


# ------------------------------------------------------------------------------------------
# Responses


@dataclass(frozen=True)
class ParsedResponse:
    status: int
    headers: dict[str, str]
    json: Any


def check_v2_response(resp: Any) -> ParsedResponse:
    """Assert ``resp`` is a well-formed payload-2.0 response with a JSON body; return it parsed."""
    assert isinstance(resp, dict), f"the handler returned {type(resp).__name__}, expected a dict"
    status = resp.get("statusCode")
    assert isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599, (
        f"statusCode {status!r} is not an HTTP status"
    )
    headers = resp.get("headers") or {}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()), f"headers {headers!r}"
    lower = {k.lower(): v for k, v in headers.items()}
    assert lower.get("content-type", "").split(";")[0].strip() == "application/json", (
        f"content-type {lower.get('content-type')!r}, expected application/json"
    )
    body = resp.get("body")
    assert isinstance(body, str), f"body {body!r} is not a string"
    raw = base64.b64decode(body) if resp.get("isBase64Encoded") else body.encode("utf-8")
    return ParsedResponse(status, lower, json.loads(raw))
