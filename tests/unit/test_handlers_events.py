"""The events handler against moto's DynamoDB (``mock_aws``), through payload-2.0 events."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber

from reference_stack.handlers import events
from reference_stack.testing import (
    EventLogTable,
    LambdaContext,
    check_v2_response,
    http_api_v2_event,
    mocked_eventlog_table,
)

ITEM = {"date": "2024-05-01", "time": "13:45:07.123", "userId": "u-1", "eventType": "click"}


@pytest.fixture
def table() -> Iterator[EventLogTable]:
    with mocked_eventlog_table() as t:
        events.set_client(t.client)
        try:
            yield t
        finally:
            events.set_client(None)


def call(
    method: str,
    path: str = "/events",
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    content_type: str | None = None,
    **kw: Any,
) -> tuple[int, dict[str, str], Any]:
    event = http_api_v2_event(
        method, path, body, content_type=content_type, query={k: [v] for k, v in (query or {}).items()}, **kw
    )
    parsed = check_v2_response(events.handler(event, LambdaContext()))
    return parsed.status, parsed.headers, parsed.json


def post(item: Any, **kw: Any) -> tuple[int, dict[str, str], Any]:
    return call("POST", body=item, **kw)


def test_post_stores_exactly_the_item_and_answers_201(table: EventLogTable) -> None:
    status, _, body = post(ITEM)
    assert (status, body) == (201, ITEM)
    assert table.items() == [ITEM]


def test_post_collision_is_409_and_never_overwrites(table: EventLogTable) -> None:
    assert post(ITEM)[0] == 201
    status, _, body = post({**ITEM, "userId": "someone-else"})
    assert status == 409
    assert "2024-05-01" in body["message"] and "13:45:07.123" in body["message"]
    assert table.items() == [ITEM]


def test_post_accepts_base64_body(table: EventLogTable) -> None:
    event = http_api_v2_event("POST", "/events", json.dumps(ITEM), content_type="application/json")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    parsed = check_v2_response(events.handler(event, LambdaContext()))
    assert parsed.status == 201
    assert table.items() == [ITEM]


def test_post_accepts_json_with_charset(table: EventLogTable) -> None:
    assert post(ITEM, content_type="application/json; charset=UTF-8")[0] == 201


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", None, "application/json; charset=latin-1"]
)
def test_post_other_content_types_are_415(table: EventLogTable, content_type: str | None) -> None:
    status, _, body = post(json.dumps(ITEM), content_type=content_type)
    assert status == 415
    assert "application/json" in body["message"]
    assert table.items() == []


def test_post_over_16kb_is_413(table: EventLogTable) -> None:
    raw = json.dumps(ITEM) + " " * (16 * 1024)
    status, _, body = post(raw, content_type="application/json")
    assert status == 413
    assert "16384" in body["message"]


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"date": "2023-02-29"}, "date", "real calendar date"),
        ({"date": "2023-1-01"}, "date", "YYYY-MM-DD"),
        ({"date": "２０２３-01-01"}, "date", "YYYY-MM-DD"),  # non-ASCII digits are not digits here
        ({"time": "24:00:00.000"}, "time", "HH:MM:SS.mmm"),
        ({"time": "12:00:00"}, "time", "HH:MM:SS.mmm"),
        ({"userId": ""}, "userId", "non-empty"),
        ({"eventType": "x" * 257}, "eventType", "at most 256"),
        ({"userId": 7}, "userId", "a number"),
        ({"extra": "x"}, "extra", "allowed fields"),
    ],
)
def test_post_bad_field_is_400_naming_it(
    table: EventLogTable, change: dict[str, Any], field: str, expected: str
) -> None:
    status, _, body = post({**ITEM, **change})
    assert status == 400
    assert repr(field) in body["message"] and expected in body["message"]
    assert table.items() == []


def test_post_missing_field_names_it(table: EventLogTable) -> None:
    status, _, body = post({k: v for k, v in ITEM.items() if k != "time"})
    assert status == 400
    assert "'time' is missing" in body["message"]


def test_post_256_character_strings_are_accepted(table: EventLogTable) -> None:
    item = {**ITEM, "userId": "é" * 256, "eventType": "💥" * 256}
    assert post(item)[0] == 201
    assert table.items() == [item]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", "empty"),
        ("{", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"date": NaN}', "finite numbers"),
        ('{"date": "a", "date": "b"}', "more than once"),
    ],
)
def test_post_malformed_bodies(table: EventLogTable, raw: str, expected: str) -> None:
    status, _, body = post(raw, content_type="application/json")
    assert status == 400
    assert expected in body["message"]


def test_post_bad_base64_is_400(table: EventLogTable) -> None:
    event = http_api_v2_event("POST", "/events", "{}", content_type="application/json")
    event["body"], event["isBase64Encoded"] = "%%%not-base64", True
    parsed = check_v2_response(events.handler(event, LambdaContext()))
    assert parsed.status == 400 and "base64" in parsed.json["message"]


def _put_many(n: int, date: str = "2024-05-01") -> list[dict[str, str]]:
    items = [{**ITEM, "date": date, "time": f"00:00:{i:02d}.000"} for i in range(n)]
    for item in items:
        assert post(item)[0] == 201
    return items


def test_get_by_date_pages_through_one_partition_in_time_order(table: EventLogTable) -> None:
    mine = _put_many(7)
    _put_many(3, date="2024-05-02")
    seen: list[dict[str, str]] = []
    token = None
    for _ in range(10):
        query = {"date": "2024-05-01", "limit": "3", **({"nextToken": token} if token else {})}
        status, _, body = call("GET", query=query)
        assert status == 200 and len(body["items"]) <= 3
        seen.extend(body["items"])
        token = body["nextToken"]
        if token is None:
            break
    assert seen == mine


def test_get_without_date_scans_everything(table: EventLogTable) -> None:
    everything = _put_many(4) + _put_many(2, date="2024-06-01")
    seen: list[dict[str, str]] = []
    token = None
    for _ in range(10):
        status, _, body = call("GET", query={"limit": "2", **({"nextToken": token} if token else {})})
        assert status == 200
        seen.extend(body["items"])
        token = body["nextToken"]
        if token is None:
            break
    key = lambda i: (i["date"], i["time"])  # noqa: E731
    assert sorted(seen, key=key) == sorted(everything, key=key)


def test_get_default_limit_is_25(table: EventLogTable) -> None:
    _put_many(30)
    status, _, body = call("GET", query={"date": "2024-05-01"})
    assert status == 200 and len(body["items"]) == 25 and body["nextToken"]


def test_get_empty_partition(table: EventLogTable) -> None:
    assert call("GET", query={"date": "1999-01-01"})[2] == {"items": [], "nextToken": None}


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"date": "2024-13-01"}, "date"),
        ({"nextToken": "!!"}, "nextToken"),
        ({"nextToken": base64.urlsafe_b64encode(b'{"date": 1}').decode()}, "nextToken"),
        ({"nextToken": base64.urlsafe_b64encode(b"[]").decode()}, "nextToken"),
        ({"data": "2024-05-01"}, "'data'"),
    ],
)
def test_get_bad_parameters_are_400_naming_them(table: EventLogTable, query: dict[str, str], name: str) -> None:
    status, _, body = call("GET", query=query)
    assert status == 400
    assert name in body["message"]


def test_get_token_of_another_date_is_400(table: EventLogTable) -> None:
    _put_many(3)
    token = call("GET", query={"date": "2024-05-01", "limit": "1"})[2]["nextToken"]
    status, _, body = call("GET", query={"date": "2024-05-02", "nextToken": token})
    assert status == 400 and "another date" in body["message"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(table: EventLogTable, method: str) -> None:
    status, headers, _ = call(method)
    assert status == 405
    assert headers["allow"] == "GET, POST"


def test_unknown_path_is_404(table: EventLogTable) -> None:
    assert call("GET", "/nope")[:1] == (404,)


@pytest.mark.parametrize("code", sorted(events.THROTTLE_CODES))
def test_throttling_after_retries_is_429_with_retry_after(table: EventLogTable, code: str) -> None:
    with Stubber(table.client) as stub:
        stub.add_client_error("put_item", service_error_code=code, service_message="throttled", http_status_code=400)
        status, headers, body = post(ITEM)
        stub.assert_no_pending_responses()
    assert status == 429
    assert headers["retry-after"] == "1"
    assert body["message"]


def test_throttled_read_is_429(table: EventLogTable) -> None:
    with Stubber(table.client) as stub:
        stub.add_client_error(
            "query", service_error_code="ProvisionedThroughputExceededException", http_status_code=400
        )
        status, headers, _ = call("GET", query={"date": "2024-05-01"})
    assert (status, headers["retry-after"]) == (429, "1")


def test_unexpected_error_is_500_without_internals_and_logged_with_request_id(
    table: EventLogTable, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = LambdaContext(aws_request_id="req-1234")
    with Stubber(table.client) as stub, caplog.at_level(logging.ERROR, logger="events"):
        stub.add_client_error(
            "put_item",
            service_error_code="ResourceNotFoundException",
            service_message="Requested resource not found: secret-table-name",
            http_status_code=400,
        )
        event = http_api_v2_event("POST", "/events", ITEM)
        parsed = check_v2_response(events.handler(event, ctx))
    assert parsed.status == 500
    assert parsed.json == {"message": "Internal server error"}
    assert any("req-1234" in r.getMessage() for r in caplog.records)


def test_missing_table_name_is_500_and_logged(
    table: EventLogTable, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TABLE_NAME")
    with caplog.at_level(logging.ERROR, logger="events"):
        status, _, body = post(ITEM)
    assert (status, body) == (500, {"message": "Internal server error"})
    assert "TABLE_NAME is not set" in caplog.text


def test_retry_config_is_explicit_and_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DDB_RETRY_MODE", raising=False)
    monkeypatch.delenv("DDB_MAX_ATTEMPTS", raising=False)
    assert events.retry_config().retries == {"mode": "standard", "max_attempts": 3}
    monkeypatch.setenv("DDB_RETRY_MODE", "adaptive")
    monkeypatch.setenv("DDB_MAX_ATTEMPTS", "5")
    assert events.retry_config().retries == {"mode": "adaptive", "max_attempts": 5}
    monkeypatch.setenv("DDB_MAX_ATTEMPTS", "many")
    with pytest.raises(ValueError, match="DDB_MAX_ATTEMPTS='many'"):
        events.retry_config()


def test_default_client_honours_endpoint_and_retry_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("DDB_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    events.set_client(None)
    try:
        client = events.get_client()
        assert client.meta.endpoint_url == "http://127.0.0.1:4566"
        assert client.meta.region_name == "eu-west-1"
        # botocore counts the first call on top of max_attempts (see the events module docstring)
        assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
        assert events.get_client() is client  # one client per execution environment
    finally:
        events.set_client(None)
