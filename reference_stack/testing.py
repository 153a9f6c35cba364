"""Test your own Lambda handlers the way API Gateway and DynamoDB will treat them.

Hypothesis strategies for HTTP API payload-2.0 events and EventLog items, and pytest fixtures
for a mocked EventLog table and a Lambda context. Use it from your test suite::

    # conftest.py
    pytest_plugins = ["reference_stack.testing"]

    # test_my_handler.py
    from hypothesis import given
    from reference_stack.testing import check_v2_response, event_items, http_api_v2_events

    @given(event=http_api_v2_events(method="POST", path="/events", body=event_items()))
    def test_never_500(event, lambda_context):
        ...

    def test_roundtrip(eventlog_table, lambda_context):
        # inside moto's mock_aws(): TABLE_NAME, AWS_REGION set; AWS_ENDPOINT_URL removed
        response = my_handler(event, lambda_context)
        assert eventlog_table.items() == [...]

Hypothesis refuses function-scoped fixtures in ``@given`` tests (they would not be reset
between examples); share one table per module and empty it per example instead::

    @pytest.fixture(scope="module")
    def table():
        with mocked_eventlog_table() as t:
            yield t

    @given(item=event_items())
    def test_post_then_get(table, item):
        table.reset()
        ...

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
import os
import string
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import quote

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from loadcheck.core.description import StackDescription, load_description
from loadcheck.core.state import ACCOUNT_ID

__all__ = [
    "EventLogTable",
    "InvalidBody",
    "LambdaContext",
    "ParsedResponse",
    "body_is_text",
    "check_v2_response",
    "create_eventlog_table",
    "event_items",
    "eventlog_table",
    "http_api_v2_event",
    "http_api_v2_events",
    "invalid_event_bodies",
    "lambda_context",
    "mocked_eventlog_table",
]

# The EventLog item contract; reference_stack/openapi.yaml and handlers/events.py say the same
# (tests/unit/test_openapi.py holds the three together).
EVENT_FIELDS = ("date", "time", "userId", "eventType")
MAX_STRING_LENGTH = 256
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
) -> dict[str, Any]:
    """One payload-2.0 event, built the way API Gateway builds it (see the module docstring).

    ``body`` may be ``None``, ``str``, ``bytes`` or a ``dict``/``list`` (sent as JSON; the
    content type then defaults to ``application/json``). ``query`` and ``headers`` map a name
    to its list of values. ``empty_as_null`` writes empty optional fields as ``null`` rather
    than leaving them out.
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
        "pathParameters": None,
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
    )


# ------------------------------------------------------------------------------------------
# EventLog items and bodies

_ITEM_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=MAX_STRING_LENGTH)


def _times() -> SearchStrategy[str]:
    return st.builds(
        "{:02d}:{:02d}:{:02d}.{:03d}".format,
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.integers(0, 999),
    )


def event_items(*, dates: SearchStrategy[_dt.date] | None = None) -> SearchStrategy[dict[str, str]]:
    """Valid EventLog items: ``date`` YYYY-MM-DD, ``time`` HH:MM:SS.mmm, ``userId``, ``eventType``."""
    date_st = dates if dates is not None else st.dates(_dt.date(1970, 1, 1), _dt.date(2099, 12, 31))
    return st.fixed_dictionaries(
        {
            "date": date_st.map(_dt.date.isoformat),
            "time": _times(),
            "userId": _ITEM_TEXT,
            "eventType": _ITEM_TEXT,
        }
    )


@dataclass(frozen=True)
class InvalidBody:
    """A POST /events body the handler must refuse: ``status`` 400 (or 413), naming ``field``."""

    body: bytes
    field: str | None  # the field the message must name, or None when the body as a whole is bad
    reason: str
    status: int = 400


def _dump(obj: Any) -> bytes:
    return json.dumps(obj).encode("utf-8")


def _bad_dates() -> SearchStrategy[str]:
    impossible = st.sampled_from(["2023-02-29", "2024-02-30", "2023-13-01", "2023-00-10", "2023-04-31", "0000-01-01"])
    shaped_wrong = st.sampled_from(
        ["2023-1-01", "20230101", "2023/01/01", "01-02-2023", " 2023-01-01", "2023-01-01T00:00"]
    )
    return impossible | shaped_wrong | st.text(max_size=12).filter(lambda s: not _looks_like_date(s))


def _looks_like_date(s: str) -> bool:
    try:
        return len(s) == 10 and s[4] == "-" and s[7] == "-" and s.isascii() and _dt.date.fromisoformat(s) is not None
    except ValueError:
        return False


def _bad_times() -> SearchStrategy[str]:
    fixed = st.sampled_from(
        [
            "24:00:00.000",
            "12:60:00.000",
            "12:00:60.000",
            "12:00:00",
            "12:00:00.1234",
            "12:00:00,123",
            "1:00:00.000",
            "12:00:00.12",
        ]
    )
    return fixed | st.text(max_size=12).filter(
        lambda s: not (len(s) == 12 and s[2] == ":" and s[5] == ":" and s[8] == ".")
    )


def _non_strings() -> SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


@st.composite
def invalid_event_bodies(draw: st.DrawFn) -> InvalidBody:
    """POST /events bodies that break exactly one rule, with the field the error must name."""
    item = draw(event_items())
    kind = draw(
        st.sampled_from(
            [
                "missing",
                "unknown",
                "type",
                "date",
                "time",
                "empty",
                "long",
                "not-object",
                "not-json",
                "duplicate",
                "too-large",
            ]
        )
    )
    name = draw(st.sampled_from(EVENT_FIELDS))
    if kind == "missing":
        del item[name]
        return InvalidBody(_dump(item), name, f"{name} is missing")
    if kind == "unknown":
        extra = draw(st.text(min_size=1, max_size=10).filter(lambda s: s not in EVENT_FIELDS))
        return InvalidBody(_dump({**item, extra: "x"}), extra, f"unknown field {extra!r}")
    if kind == "type":
        return InvalidBody(_dump({**item, name: draw(_non_strings())}), name, f"{name} is not a string")
    if kind == "date":
        return InvalidBody(_dump({**item, "date": draw(_bad_dates())}), "date", "date is not YYYY-MM-DD")
    if kind == "time":
        return InvalidBody(_dump({**item, "time": draw(_bad_times())}), "time", "time is not HH:MM:SS.mmm")
    text_field = draw(st.sampled_from(["userId", "eventType"]))
    if kind == "empty":
        return InvalidBody(_dump({**item, text_field: ""}), text_field, f"{text_field} is empty")
    if kind == "long":
        long_value = draw(st.text(alphabet="abc", min_size=MAX_STRING_LENGTH + 1, max_size=MAX_STRING_LENGTH + 50))
        return InvalidBody(_dump({**item, text_field: long_value}), text_field, f"{text_field} is too long")
    if kind == "not-object":
        value: Any = draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=5), st.integers(), st.none()))
        return InvalidBody(_dump(value), None, "body is not a JSON object")
    if kind == "not-json":
        raw = draw(
            st.sampled_from([b"{", b"not json", b"{'date': '2024-01-01'}", b"\xff\xfe", b"", b'{"date": NaN}', b"[1,]"])
        )
        return InvalidBody(raw, None, "body is not JSON")
    if kind == "duplicate":
        text = _dump(item).decode()
        return InvalidBody(
            text[:-1].encode() + f', "{name}": {json.dumps(item[name])}}}'.encode(), name, f"{name} appears twice"
        )
    padding = " " * (MAX_BODY_BYTES + 1 - len(_dump(item)))
    return InvalidBody(_dump(item) + padding.encode(), None, "body over 16 KB", 413)


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


# ------------------------------------------------------------------------------------------
# Fixtures


@dataclass
class EventLogTable:
    """The mocked EventLog table: low-level ``client``, resource ``table``, and its ``name``."""

    name: str
    client: Any
    table: Any
    description: StackDescription = field(repr=False)

    def items(self) -> list[dict[str, Any]]:
        """Every item (a full, strongly consistent scan), sorted by key."""
        out: list[dict[str, Any]] = []
        deserialize = TypeDeserializer().deserialize
        kwargs: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            out.extend({k: deserialize(v) for k, v in item.items()} for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        spec = self.description.table
        return sorted(out, key=lambda i: (str(i.get(spec.hash_key)), str(i.get(spec.range_key))))

    def reset(self) -> None:
        """Delete and re-create the table: an empty table for the next Hypothesis example.

        About 10 ms under moto, where a fresh ``mocked_eventlog_table()`` costs ~300 ms; so
        share one table per module and reset it per example.
        """
        self.client.delete_table(TableName=self.name)
        create_eventlog_table(self.client, self.description)


def create_eventlog_table(client: Any, description: StackDescription | None = None) -> str:
    """Create the table the stack description defines (keys, billing, capacity); return its name."""
    spec = (description or load_description()).table
    kwargs: dict[str, Any] = {
        "TableName": spec.name,
        "KeySchema": [
            {"AttributeName": spec.hash_key, "KeyType": "HASH"},
            {"AttributeName": spec.range_key, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": spec.hash_key, "AttributeType": "S"},
            {"AttributeName": spec.range_key, "AttributeType": "S"},
        ],
        "BillingMode": spec.billing_mode,
    }
    if spec.billing_mode == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = {
            "ReadCapacityUnits": spec.read_capacity,
            "WriteCapacityUnits": spec.write_capacity,
        }
    client.create_table(**kwargs)
    client.get_waiter("table_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 0.01, "MaxAttempts": 50})
    return spec.name


@contextmanager
def mocked_eventlog_table(description: StackDescription | None = None) -> Iterator[EventLogTable]:
    """The EventLog table inside moto's ``mock_aws()``, with the environment a handler expects.

    Sets ``TABLE_NAME``, ``AWS_REGION`` and ``AWS_DEFAULT_REGION`` and removes
    ``AWS_ENDPOINT_URL``/``AWS_PROFILE`` (so clients made inside reach moto, not a real
    endpoint) for the duration; moto supplies fake credentials.
    """
    from moto import mock_aws  # imported here: moto is slow to import and only fixtures need it

    desc = description or load_description()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "AWS_DEFAULT_PROFILE")
    }
    env.update({"TABLE_NAME": desc.table.name, "AWS_REGION": desc.region, "AWS_DEFAULT_REGION": desc.region})
    with mock.patch.dict(os.environ, env, clear=True), mock_aws():
        client = boto3.client("dynamodb", region_name=desc.region)
        name = create_eventlog_table(client, desc)
        table = boto3.resource("dynamodb", region_name=desc.region).Table(name)
        yield EventLogTable(name=name, client=client, table=table, description=desc)


@pytest.fixture
def eventlog_table() -> Iterator[EventLogTable]:
    """The EventLog table from the stack description, inside ``moto.mock_aws()``."""
    with mocked_eventlog_table() as t:
        yield t


@dataclass
class LambdaContext:
    """The attributes and method of the Lambda context object handlers use."""

    function_name: str = "loadcheck-events"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    timeout_s: float = 10.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        # A fixed budget: tests never depend on wall-clock time.
        return int(self.timeout_s * 1000)


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context with a fresh ``aws_request_id``."""
    return LambdaContext()
