"""reference_stack.testing.schema: requests for every route drawn from openapi.yaml, valid ones that
the schemas accept and invalid ones with exactly the named thing wrong; a route added to a copy of
the API is drawn with no new strategy code; a document that disagrees with the description is refused."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from jsonschema import Draft202012Validator, FormatChecker

from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError
from reference_stack.handlers import events
from reference_stack.testing import (
    EventLogTable,
    LambdaContext,
    RouteRequest,
    check_v2_response,
    load_api,
    route_requests,
)
from reference_stack.testing.schema import _read_text
from tests.e2e.test_changed_stack import NEW_ROUTE, release_copy

REPO = Path(__file__).resolve().parents[2]
API = load_api(REPO / "reference_stack" / "openapi.yaml", load_description())


def _accepts(schema: dict, value: object) -> bool:
    return Draft202012Validator(schema, format_checker=FormatChecker()).is_valid(value)


def _sent_body(req: RouteRequest) -> bytes | None:
    raw = req.event.get("body")
    if raw is None:
        return None
    return base64.b64decode(raw) if req.event["isBase64Encoded"] else raw.encode()


def _params_ok(req: RouteRequest) -> bool:
    op = API.operations[req.route]
    sent = {**req.path_parameters, **req.query, **req.headers}
    for p in op.parameters:
        text = sent.get(p.name if p.location != "header" else p.name.lower())
        if text is None:
            if p.required:
                return False
        elif not _accepts(p.schema, _read_text(text, p.schema)):
            return False
    return True


@given(req=route_requests(API, valid=True))
def test_valid_requests_are_what_the_schemas_accept(req: RouteRequest) -> None:
    op = API.operations[req.route]
    assert req.event["routeKey"] == req.route and req.event["requestContext"]["http"]["method"] == op.method
    assert _params_ok(req)
    assert req.event.get("queryStringParameters") in (None, {}) or req.event["queryStringParameters"] == req.query
    if op.body_schema is not None:
        assert json.loads(_sent_body(req) or b"null") == req.body and _accepts(op.body_schema, req.body)
    assert req.function == load_description().routes[req.route]


@given(req=route_requests(API, valid=False))
def test_invalid_requests_break_exactly_what_they_name(req: RouteRequest) -> None:
    op = API.operations[req.route]
    assert req.reason
    body_ok = op.body_schema is None or (
        req.body is not None and not isinstance(req.body, bytes) and _accepts(op.body_schema, req.body)
    )
    # One thing is wrong: the parameters or the body, never both.
    assert _params_ok(req) != body_ok, (req.reason, req.query, req.body)
    if req.field is not None and not _params_ok(req):
        assert req.field in {p.name for p in op.parameters}
    if req.field is not None and not body_ok:
        assert isinstance(req.body, dict)


def test_a_new_route_is_drawn_without_new_strategy_code(tmp_path: Path) -> None:
    description = release_copy(tmp_path / "stack")
    api = load_api(tmp_path / "stack" / "openapi.yaml", load_description(description))
    assert NEW_ROUTE in api.routes
    seen: list[RouteRequest] = []

    @given(req=route_requests(api, NEW_ROUTE, valid=True))
    def draw(req: RouteRequest) -> None:
        seen.append(req)

    draw()
    assert seen
    for req in seen:
        date = req.path_parameters["date"]
        assert req.event["pathParameters"] == {"date": date} and req.event["rawPath"] == f"/events/{date}"
        assert _accepts({"type": "string", "format": "date"}, date)


def test_a_document_that_disagrees_with_the_description_is_refused(tmp_path: Path) -> None:
    spec = yaml.safe_load((REPO / "reference_stack" / "openapi.yaml").read_text())
    del spec["paths"]["/search"]["post"]
    (tmp_path / "openapi.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match=r"only in the description \['POST /search'\]"):
        load_api(tmp_path / "openapi.yaml", load_description())
    spec["paths"]["/events"]["get"]["parameters"].append({"name": "session", "in": "cookie", "schema": {}})
    (tmp_path / "openapi.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(ConfigError, match="'session' is in 'cookie'"):
        load_api(tmp_path / "openapi.yaml")
    with pytest.raises(ConfigError, match="route 'GET /nope' is not in"):
        route_requests(API, "GET /nope")


@pytest.fixture(scope="module")
def table(module_table: EventLogTable) -> Iterator[EventLogTable]:
    events.set_client(module_table.client)
    yield module_table
    events.set_client(None)


@given(req=route_requests(API, "POST /events", valid=None) | route_requests(API, "GET /events", valid=None))
def test_the_reference_events_handler_answers_every_drawn_request_without_a_5xx(
    table: EventLogTable, req: RouteRequest
) -> None:
    """The reference handler, driven by the strategies alone: a valid POST stores its body, an
    invalid request is a 4xx naming the field, nothing is ever a 5xx."""
    table.reset()
    response = check_v2_response(events.handler(req.event, LambdaContext()))
    assert response.status < 500, (response, req.reason)
    if req.valid and req.route == "POST /events":
        assert response.status == 201 and table.items() == [req.body]
    if not req.valid:
        assert 400 <= response.status < 500, (response, req.reason)
        if req.field is not None:
            assert req.field in response.json["message"], (response.json, req.reason)
