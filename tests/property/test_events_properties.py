"""Properties of the events handler, against moto's DynamoDB, with Hypothesis.

One mocked table per module, emptied per example (``EventLogTable.reset``). The state
machine at the end holds the handler against an in-memory model of the table.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from reference_stack.handlers import events
from reference_stack.testing import (
    EventLogTable,
    InvalidBody,
    LambdaContext,
    check_v2_response,
    event_items,
    http_api_v2_event,
    http_api_v2_events,
    invalid_event_bodies,
    mocked_eventlog_table,
)

ITEM = {"date": "2024-05-01", "time": "13:45:07.123", "userId": "u-1", "eventType": "click"}


@pytest.fixture(scope="module")
def table() -> Iterator[EventLogTable]:
    with mocked_eventlog_table() as t:
        events.set_client(t.client)
        try:
            yield t
        finally:
            events.set_client(None)


def invoke(event: dict[str, Any]) -> Any:
    return check_v2_response(events.handler(event, LambdaContext()))


def post(item: Any) -> Any:
    return invoke(http_api_v2_event("POST", "/events", item))


def get(**query: str) -> Any:
    return invoke(http_api_v2_event("GET", "/events", query={k: [v] for k, v in query.items()}))


_queries = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            "date": st.sampled_from(["2024-05-01", "2024-02-30", "x"]).map(lambda v: [v]),
            "limit": st.sampled_from(["1", "25", "100", "0", "abc", ""]).map(lambda v: [v]),
            "nextToken": st.text(max_size=20).map(lambda v: [v]),
        },
    ),
    st.dictionaries(st.text(min_size=1, max_size=6), st.lists(st.text(max_size=6), min_size=1, max_size=2), max_size=2),
)
_bodies = st.one_of(
    st.none(),
    event_items(),
    st.binary(max_size=64),
    st.text(max_size=64),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=5),
)


@given(
    event=http_api_v2_events(
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
        path=st.sampled_from(["/events", "/events/", "/search", "/", "/events/x"]),
        body=_bodies,
        query=_queries,
        content_type=st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "text/plain", "application/octet-stream", None]
        ),
    )
)
@example(event=http_api_v2_event("POST", "/events", "\x00", content_type="application/json"))
@example(event=http_api_v2_event("GET", "/events", query={"limit": ["1", "2"]}))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_any_event_gets_a_well_formed_response_and_never_a_5xx(table: EventLogTable, event: dict[str, Any]) -> None:
    parsed = invoke(event)
    note(f"{parsed.status} {parsed.json}")
    assert parsed.status < 500
    if parsed.status >= 400:
        assert set(parsed.json) == {"message"} and parsed.json["message"]


@given(
    bad=invalid_event_bodies(), content_type=st.sampled_from(["application/json", "application/json; charset=utf-8"])
)
@example(
    bad=InvalidBody(
        b'{"date": "2024-02-30", "time": "00:00:00.000", "userId": "u", "eventType": "e"}', "date", "not a real date"
    ),
    content_type="application/json",
)
def test_invalid_bodies_are_refused_naming_the_field_and_leave_the_table_unchanged(
    table: EventLogTable, bad: InvalidBody, content_type: str
) -> None:
    table.reset()
    assert post(ITEM).status == 201
    before = table.items()
    event = http_api_v2_event("POST", "/events", bad.body, content_type=content_type)
    parsed = invoke(event)
    note(f"{bad.reason}: {parsed.json}")
    assert parsed.status == bad.status
    if bad.field is not None:
        assert repr(bad.field) in parsed.json["message"]
    assert table.items() == before


@given(item=event_items(), base64_body=st.booleans())
def test_post_then_get_by_date_returns_the_item(table: EventLogTable, item: dict[str, str], base64_body: bool) -> None:
    table.reset()
    # JSON arrives as text from API Gateway; a base64 body must decode to the same thing
    event = http_api_v2_event("POST", "/events", item)
    if base64_body:
        event = {**event, "body": base64.b64encode(event["body"].encode()).decode(), "isBase64Encoded": True}
    created = invoke(event)
    assert (created.status, created.json) == (201, item)
    page = get(date=item["date"])
    assert page.status == 200
    assert page.json["items"] == [item]
    assert table.items() == [item]


@given(first=event_items(), second=event_items())
def test_duplicate_key_is_409_and_the_original_is_unchanged(
    table: EventLogTable, first: dict[str, str], second: dict[str, str]
) -> None:
    table.reset()
    clash = {**second, "date": first["date"], "time": first["time"]}
    assert post(first).status == 201
    again = post(clash)
    assert again.status == 409
    assert first["date"] in again.json["message"]
    assert table.items() == [first]


@given(item=event_items(), code=st.sampled_from(sorted(events.THROTTLE_CODES)), read=st.booleans())
def test_throttling_that_survives_retries_is_429_with_retry_after(
    table: EventLogTable, item: dict[str, str], code: str, read: bool
) -> None:
    with Stubber(table.client) as stub:
        stub.add_client_error(
            "query" if read else "put_item",
            service_error_code=code,
            service_message="The level of configured provisioned throughput for the table was exceeded.",
            http_status_code=400,
        )
        parsed = get(date=item["date"]) if read else post(item)
        stub.assert_no_pending_responses()
    assert parsed.status == 429
    assert parsed.headers["retry-after"].isdigit()
    assert parsed.json["message"]


# ----------------------------------------------------------------------------------------
# The handler against a model of the table


_DATES = ["2024-05-01", "2024-05-02", "2024-12-31"]
_TIMES = [f"00:00:0{n}.000" for n in range(6)]


class EventLogMachine(RuleBasedStateMachine):
    """Random POSTs (with frequent key collisions) and paged GETs; the model is a dict by key."""

    table: EventLogTable

    @initialize()
    def start(self) -> None:
        self.table.reset()
        self.model: dict[tuple[str, str], dict[str, str]] = {}

    @rule(date=st.sampled_from(_DATES), time=st.sampled_from(_TIMES), user=st.text(min_size=1, max_size=5))
    def post(self, date: str, time: str, user: str) -> None:
        item = {"date": date, "time": time, "userId": user, "eventType": "e"}
        parsed = post(item)
        if (date, time) in self.model:
            assert parsed.status == 409
        else:
            assert (parsed.status, parsed.json) == (201, item)
            self.model[(date, time)] = item

    @rule(date=st.sampled_from(_DATES), limit=st.integers(1, 4))
    def get_partition(self, date: str, limit: int) -> None:
        got = self._pages(limit, date=date)
        assert got == [v for k, v in sorted(self.model.items()) if k[0] == date]

    @rule(limit=st.integers(1, 7))
    def scan(self, limit: int) -> None:
        got = self._pages(limit)
        assert sorted(got, key=lambda i: (i["date"], i["time"])) == [v for _, v in sorted(self.model.items())]

    def _pages(self, limit: int, **query: str) -> list[dict[str, str]]:
        items: list[dict[str, str]] = []
        token = None
        for _ in range(len(self.model) + 2):
            parsed = get(limit=str(limit), **query, **({"nextToken": token} if token else {}))
            assert parsed.status == 200
            assert len(parsed.json["items"]) <= limit
            items.extend(parsed.json["items"])
            token = parsed.json["nextToken"]
            if token is None:
                return items
        raise AssertionError(f"pagination did not end after {len(self.model) + 2} pages")

    @invariant()
    def table_equals_model(self) -> None:
        if hasattr(self, "model"):
            assert self.table.items() == [v for _, v in sorted(self.model.items())]


def test_handler_agrees_with_a_model_of_the_table(table: EventLogTable) -> None:
    EventLogMachine.table = table
    run = EventLogMachine.TestCase()
    run.settings = settings(run.settings, stateful_step_count=15)
    run.runTest()


def test_the_model_test_can_fail(table: EventLogTable) -> None:
    """A handler that silently overwrites (the seed's bug) is caught by the state machine."""
    original = events.create_event

    def overwriting(event: dict[str, Any]) -> dict[str, Any]:
        item = json.loads(event["body"])
        table.client.put_item(TableName=table.name, Item={k: {"S": v} for k, v in item.items()})
        return events._http.response(201, item)

    events.create_event = overwriting
    try:
        EventLogMachine.table = table
        run = EventLogMachine.TestCase()
        # no shrinking: we only need to see it fail, not the smallest failure
        run.settings = settings(
            run.settings, stateful_step_count=15, max_examples=200, database=None, phases=[Phase.generate]
        )
        with pytest.raises(AssertionError):
            run.runTest()
    finally:
        events.create_event = original
