"""Payload format 2.0: event building and response mapping (gateway payload.py)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re

import pytest

from loadcheck.core.state import Identity
from reference_stack.local.gateway.payload import (
    MalformedResponse,
    build_event,
    clf_time,
    is_text,
    map_response,
    new_request_id,
    query_parameters,
)
from reference_stack.local.gateway.routing import Request

WHEN = dt.datetime(2026, 3, 7, 9, 5, 3, 123000, tzinfo=dt.UTC)
IDENT = Identity(
    name="requester",
    arn="arn:aws:iam::123456789012:user/loadcheck-requester",
    principal_arn="arn:aws:iam::123456789012:user/loadcheck-requester",
    user_id="AIDAEXAMPLE",
    access_key_id="AKIAEXAMPLE",
    secret_access_key="s",
)  # noqa: S106 - a test key


def _req(
    *,
    method: str = "GET",
    path: str = "/events",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Request:
    return Request(
        method=method,
        raw_path=path,
        raw_query=query,
        headers=[("Host", "events.loadcheck.test"), ("User-Agent", "ua/1"), *(headers or [])],
        body=body,
        source_ip="127.0.0.1",
        server_port=4443,
        request_id="Mc7UVioPPHcEKPA=",
        received_at=WHEN,
        received_mono=0.0,
    )


def _event(req: Request) -> dict:
    return build_event(
        req,
        route_key=f"{req.method} {req.raw_path}",
        api_id="a1b2c3d4e5",
        account_id="123456789012",
        identity=IDENT,
        access_key="AKIAEXAMPLE",
    )


def test_event_shape_for_a_get_without_body_query_or_cookies() -> None:
    ev = _event(_req())
    assert ev["version"] == "2.0"
    assert ev["routeKey"] == "GET /events"
    assert ev["rawPath"] == "/events" and ev["rawQueryString"] == ""
    assert ev["cookies"] is None and ev["queryStringParameters"] is None
    assert ev["pathParameters"] is None and ev["stageVariables"] is None
    assert ev["isBase64Encoded"] is False and "body" not in ev
    rc = ev["requestContext"]
    assert rc["accountId"] == "123456789012" and rc["apiId"] == "a1b2c3d4e5"
    assert rc["domainName"] == "events.loadcheck.test" and rc["domainPrefix"] == "events"
    assert rc["http"] == {
        "method": "GET",
        "path": "/events",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "ua/1",
    }
    assert rc["requestId"] == "Mc7UVioPPHcEKPA=" and rc["routeKey"] == "GET /events" and rc["stage"] == "$default"
    assert rc["time"] == "07/Mar/2026:09:05:03 +0000"
    assert rc["timeEpoch"] == int(WHEN.timestamp() * 1000)
    assert rc["authorizer"] == {
        "iam": {
            "accessKey": "AKIAEXAMPLE",
            "accountId": "123456789012",
            "callerId": "AIDAEXAMPLE",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": IDENT.arn,
            "userId": "AIDAEXAMPLE",
        }
    }
    headers = ev["headers"]
    assert headers["host"] == "events.loadcheck.test" and headers["user-agent"] == "ua/1"
    assert headers["x-forwarded-for"] == "127.0.0.1" and headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-port"] == "4443"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", headers["x-amzn-trace-id"])


def test_headers_lowercased_and_duplicates_comma_joined_cookies_split_out() -> None:
    ev = _event(_req(headers=[("X-Thing", "a"), ("x-thing", "b"), ("Cookie", "c1=1; c2=2"), ("cookie", "c3=3")]))
    assert ev["headers"]["x-thing"] == "a,b"
    assert "cookie" not in ev["headers"]
    assert ev["cookies"] == ["c1=1", "c2=2", "c3=3"]


def test_query_parameters_decoded_and_duplicates_joined() -> None:
    ev = _event(_req(query="parameter1=value1&parameter1=value2&parameter2=a%20b&flag"))
    assert ev["rawQueryString"] == "parameter1=value1&parameter1=value2&parameter2=a%20b&flag"
    assert ev["queryStringParameters"] == {"parameter1": "value1,value2", "parameter2": "a b", "flag": ""}
    assert query_parameters("") is None


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("text/plain", True),
        ("text/csv", True),
        ("application/xml", True),
        ("application/javascript", True),
        ("application/x-www-form-urlencoded", False),
        ("application/octet-stream", False),
        (None, False),
        ("image/png", False),
    ],
)
def test_body_is_text_only_for_text_types(content_type: str | None, text: bool) -> None:
    assert is_text(content_type) is text
    body = b'{"hello": "world"}'
    headers = [("Content-Type", content_type)] if content_type else []
    ev = _event(_req(method="POST", headers=headers, body=body))
    if text:
        assert ev["isBase64Encoded"] is False and ev["body"] == body.decode()
    else:
        assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == body


def test_invalid_utf8_under_a_text_type_goes_base64() -> None:
    ev = _event(_req(method="POST", headers=[("Content-Type", "text/plain")], body=b"\xff\xfe"))
    assert ev["isBase64Encoded"] is True and base64.b64decode(ev["body"]) == b"\xff\xfe"


def test_request_ids_look_like_aws_short_ids() -> None:
    ids = {new_request_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9+/]{15}=", i) for i in ids)


def test_clf_time_uses_english_months() -> None:
    assert clf_time(dt.datetime(2023, 10, 27, 13, 40, 57, tzinfo=dt.UTC)) == "27/Oct/2023:13:40:57 +0000"


# -- response mapping -------------------------------------------------------------------------


def test_full_response_with_headers_cookies_and_body() -> None:
    status, headers, body = map_response(
        json.dumps(
            {
                "statusCode": 201,
                "headers": {"Content-Type": "application/json", "X-N": 5, "Connection": "close"},
                "cookies": ["a=1; Secure", "b=2"],
                "body": '{"ok":true}',
            }
        ).encode()
    )
    assert status == 201 and body == b'{"ok":true}'
    assert ("content-type", "application/json") in headers and ("x-n", "5") in headers
    assert [v for n, v in headers if n == "set-cookie"] == ["a=1; Secure", "b=2"]
    assert not any(n == "connection" for n, _ in headers)


def test_base64_body_is_decoded() -> None:
    status, _, body = map_response(
        json.dumps(
            {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(b"\x00\x01bin").decode()}
        ).encode()
    )
    assert status == 200 and body == b"\x00\x01bin"


@pytest.mark.parametrize(
    ("output", "body"),
    [
        ({"message": "Hello from Lambda!"}, b'{"message": "Hello from Lambda!"}'),
        ("Hello from Lambda!", b"Hello from Lambda!"),
        ([1, 2], b"[1, 2]"),
    ],
)
def test_inferred_response_without_status_code(output: object, body: bytes) -> None:
    status, headers, data = map_response(json.dumps(output).encode())
    assert status == 200 and headers == [("content-type", "application/json")] and data == body


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        json.dumps({"statusCode": "200"}).encode(),
        json.dumps({"statusCode": 99}).encode(),
        json.dumps({"statusCode": 200, "body": {"nested": True}}).encode(),
        json.dumps({"statusCode": 200, "headers": ["x"]}).encode(),
        json.dumps({"statusCode": 200, "cookies": "a=1"}).encode(),
        json.dumps({"statusCode": 200, "isBase64Encoded": True, "body": "***"}).encode(),
        json.dumps({"statusCode": 200, "headers": {"x": "a\r\nset-cookie: evil=1"}}).encode(),
        json.dumps({"statusCode": 200, "cookies": ["a=1\r\nx: y"]}).encode(),
    ],
)
def test_malformed_responses_are_refused(payload: bytes) -> None:
    with pytest.raises(MalformedResponse):
        map_response(payload)


def test_path_parameters_of_a_route_with_variables() -> None:
    req = _req(path="/events/2100-01-02")
    event = build_event(
        req,
        route_key="GET /events/{date}",
        api_id="a1b2c3d4e5",
        account_id="123456789012",
        identity=IDENT,
        access_key="AKIAEXAMPLE",
        path_parameters={"date": "2100-01-02"},
    )
    assert event["pathParameters"] == {"date": "2100-01-02"}
    assert event["routeKey"] == event["requestContext"]["routeKey"] == "GET /events/{date}"
    assert event["rawPath"] == "/events/2100-01-02"
