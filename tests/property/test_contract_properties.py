"""Differential: the events handler accepts a POST body exactly when openapi.yaml's schema does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import example, given, note
from hypothesis import strategies as st

from reference_stack.handlers import events
from reference_stack.testing import (
    EventLogTable,
    LambdaContext,
    check_v2_response,
    event_items,
    http_api_v2_event,
    mocked_eventlog_table,
)

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "reference_stack" / "openapi.yaml").read_text("utf-8"))


def _resolve(node: Any) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = SPEC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return {**_resolve(target), **{k: _resolve(v) for k, v in node.items() if k != "$ref"}}
        return {k: _resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v) for v in node]
    return node


EVENT_INPUT = jsonschema.Draft202012Validator(
    _resolve(SPEC["components"]["schemas"]["EventInput"]), format_checker=jsonschema.FormatChecker()
)


@pytest.fixture(scope="module")
def table() -> Iterator[EventLogTable]:
    with mocked_eventlog_table() as t:
        events.set_client(t.client)
        try:
            yield t
        finally:
            events.set_client(None)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=5), inner, max_size=2),
    max_leaves=4,
)
_near_values = {
    "date": st.sampled_from(["2024-02-29", "2023-02-29", "2024-13-01", "2024-1-01", "999-01-01", "2024-05-01 "]),
    "time": st.sampled_from(["23:59:59.999", "24:00:00.000", "00:00:00.00", "00:00:00.0000", "9:00:00.000"]),
    "userId": st.sampled_from(["", "x", "x" * 256, "x" * 257, "é" * 256, "\U0001f4a5" * 257]),
    "eventType": st.sampled_from(["", " ", "e" * 256, "e" * 257]),
}


@st.composite
def bodies(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = draw(event_items())
    how = draw(st.sampled_from(["valid", "near", "any-value", "drop", "extra", "anything"]))
    name = draw(st.sampled_from(events.FIELDS))
    if how == "near":
        item[name] = draw(_near_values[name])
    elif how == "any-value":
        item[name] = draw(_json)
    elif how == "drop":
        del item[name]
    elif how == "extra":
        item[draw(st.text(max_size=10))] = draw(_json)
    elif how == "anything":
        return draw(_json)
    return item


@given(body=bodies())
@example(body={"date": "2024-02-29", "time": "23:59:59.999", "userId": "x" * 256, "eventType": "e"})
@example(body={"date": "2023-02-29", "time": "23:59:59.999", "userId": "x", "eventType": "e"})
def test_handler_and_schema_agree_on_post_bodies(table: EventLogTable, body: Any) -> None:
    spec_accepts = EVENT_INPUT.is_valid(body)
    parsed = check_v2_response(
        events.handler(
            http_api_v2_event("POST", "/events", json.dumps(body), content_type="application/json"), LambdaContext()
        )
    )
    note(f"spec_accepts={spec_accepts} handler={parsed.status} {parsed.json}")
    assert parsed.status in (201, 400, 409)
    assert (parsed.status != 400) == spec_accepts
