"""The strategies users test with are themselves right: events shaped as API Gateway sends them,
items the contract accepts, invalid bodies it refuses."""

from __future__ import annotations

import base64
import datetime as _dt
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jsonschema
import yaml
from hypothesis import given
from hypothesis import strategies as st

from reference_stack.testing import (
    InvalidBody,
    body_is_text,
    event_items,
    http_api_v2_events,
    invalid_event_bodies,
)

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "reference_stack" / "openapi.yaml").read_text("utf-8"))
_props = SPEC["components"]["schemas"]
EVENT_INPUT = jsonschema.Draft202012Validator(
    {
        **_props["EventInput"],
        "properties": {
            "date": _props["Date"],
            "time": _props["Time"],
            "userId": _props["Label"],
            "eventType": _props["Label"],
        },
    },
    format_checker=jsonschema.FormatChecker(),
)


@given(event=http_api_v2_events())
def test_events_have_the_payload_2_0_shape(event: dict[str, Any]) -> None:
    assert event["version"] == "2.0"
    ctx = event["requestContext"]
    method, path = ctx["http"]["method"], ctx["http"]["path"]
    assert event["routeKey"] == ctx["routeKey"] == f"{method} {path}"
    assert event["rawPath"] == path
    assert all(name == name.lower() for name in event["headers"])
    assert set(ctx) >= {
        "accountId",
        "apiId",
        "authorizer",
        "domainName",
        "domainPrefix",
        "http",
        "requestId",
        "routeKey",
        "stage",
        "time",
        "timeEpoch",
    }
    assert set(ctx["authorizer"]["iam"]) >= {"accessKey", "accountId", "callerId", "userArn", "userId"}
    assert ctx["domainName"].startswith(ctx["domainPrefix"] + ".")
    when = _dt.datetime.strptime(ctx["time"], "%d/%b/%Y:%H:%M:%S %z")
    assert ctx["timeEpoch"] // 1000 == int(when.timestamp())  # time has seconds, timeEpoch ms
    assert re.fullmatch(r"[A-Za-z0-9+/]{15}=", ctx["requestId"])


@given(event=http_api_v2_events(method="POST"))
def test_bodies_are_text_or_base64_by_content_type(event: dict[str, Any]) -> None:
    if "body" not in event:
        assert event["isBase64Encoded"] is False
        return
    raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event["body"].encode()
    assert int(event["headers"]["content-length"]) == len(raw)
    if not event["isBase64Encoded"]:
        assert body_is_text(event["headers"].get("content-type"))
    elif body_is_text(event["headers"].get("content-type")):
        # a text content type with bytes that are not UTF-8: kept intact as base64
        try:
            raw.decode("utf-8")
            raise AssertionError("valid UTF-8 text was base64-encoded")
        except UnicodeDecodeError:
            pass


@given(event=http_api_v2_events(method="GET"))
def test_query_string_parameters_are_the_raw_query_decoded_and_comma_joined(event: dict[str, Any]) -> None:
    grouped: dict[str, list[str]] = defaultdict(list)
    for key, value in parse_qsl(event["rawQueryString"], keep_blank_values=True):
        grouped[key].append(value)
    expected = {k: ",".join(v) for k, v in grouped.items()} or None
    assert event.get("queryStringParameters") == expected


@given(item=event_items())
def test_event_items_satisfy_the_contract(item: dict[str, str]) -> None:
    EVENT_INPUT.validate(item)


@given(bad=invalid_event_bodies())
def test_invalid_bodies_break_the_contract(bad: InvalidBody) -> None:
    if bad.status == 413 or "twice" in bad.reason:
        return  # too large, or a duplicate key: a JSON Schema cannot see either
    try:
        body = json.loads(bad.body)
    except ValueError:
        return  # not JSON at all
    assert not EVENT_INPUT.is_valid(body), bad


@given(data=st.data())
def test_strategy_arguments_take_values_or_strategies(data: st.DataObject) -> None:
    event = data.draw(http_api_v2_events(method="PUT", path=st.just("/x"), body={"a": 1}, query={"k": ["v", "w"]}))
    assert event["routeKey"] == "PUT /x"
    assert json.loads(event["body"]) == {"a": 1} and event["headers"]["content-type"] == "application/json"
    assert event["rawQueryString"] == "k=v&k=w"
    assert event["queryStringParameters"] == {"k": "v,w"}
