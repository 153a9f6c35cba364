"""reference_stack/openapi.yaml is a valid OpenAPI document and agrees with the handlers.

Agreement means: the same four routes as the stack description; the same fields, patterns and
limits as the handlers' validation; every status a handler returns (both found in its source
and seen when driving it) is documented for that operation, and every body it returns
validates against the documented schema.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from botocore.credentials import Credentials
from botocore.stub import Stubber
from openapi_spec_validator import validate

from loadcheck.core.description import load_description
from reference_stack.handlers import events, search
from reference_stack.testing import LambdaContext, check_v2_response, http_api_v2_event, mocked_eventlog_table

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "reference_stack" / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
ITEM = {"date": "2024-05-01", "time": "13:45:07.123", "userId": "u-1", "eventType": "click"}
GATEWAY_HEADERS = {"apigw-requestid"}  # added by API Gateway, not by the handler
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def resolve(node: Any) -> Any:
    """``node`` with every local ``$ref`` inlined (the spec has no recursive schemas)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = SPEC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            merged = {**resolve(copy.deepcopy(target)), **{k: resolve(v) for k, v in node.items() if k != "$ref"}}
            return merged
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v) for v in node]
    return node


def operation(route_key: str) -> dict[str, Any]:
    method, path = route_key.split(" ", 1)
    return resolve(SPEC["paths"][path][method.lower()])


def param(route_key: str, name: str) -> dict[str, Any]:
    (found,) = [p for p in operation(route_key)["parameters"] if p["name"] == name]
    return found


def schema(name: str) -> dict[str, Any]:
    return resolve(SPEC["components"]["schemas"][name])


def documented_response(route_key: str | None, status: int) -> dict[str, Any] | None:
    responses = operation(route_key)["responses"] if route_key else resolve(SPEC["x-loadcheck-unrouted-responses"])
    return responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")


def test_spec_is_valid_openapi() -> None:
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def test_routes_match_the_stack_description() -> None:
    spec_routes = {f"{m.upper()} {path}" for path, item in SPEC["paths"].items() for m in item if m in METHODS}
    assert spec_routes == set(load_description().routes)


def test_security_is_sigv4_everywhere() -> None:
    scheme = SPEC["components"]["securitySchemes"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert SPEC["security"] == [{"sigv4": []}]
    assert all("security" not in op for item in SPEC["paths"].values() for op in item.values())


def test_event_fields_and_limits_match_the_handler() -> None:
    body = schema("EventInput")
    assert tuple(body["required"]) == events.FIELDS
    assert body["additionalProperties"] is False
    assert body["properties"]["date"]["pattern"] == f"^{events.DATE_RE.pattern}$"
    assert body["properties"]["time"]["pattern"] == f"^{events.TIME_RE.pattern}$"
    for name in ("userId", "eventType"):
        assert body["properties"][name]["minLength"] == 1
        assert body["properties"][name]["maxLength"] == events.MAX_STRING_LENGTH
    limit = param("GET /events", "limit")["schema"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (
        events.LIMIT_MIN,
        events.LIMIT_MAX,
        events.LIMIT_DEFAULT,
    )
    assert {p["name"] for p in operation("GET /events")["parameters"]} == set(events.QUERY_PARAMS)
    token = param("GET /events", "nextToken")["schema"]
    assert token["pattern"] == f"^{events.TOKEN_RE.pattern}$"
    assert SPEC["x-loadcheck-max-body-bytes"] == events.MAX_BODY_BYTES == search.MAX_BODY_BYTES


def test_search_parameters_and_allowlist_match_the_handler() -> None:
    q = param("GET /search", "q")
    assert q["required"] is True
    assert (q["schema"]["minLength"], q["schema"]["maxLength"]) == (search.Q_MIN, search.Q_MAX)
    size = param("GET /search", "size")["schema"]
    assert (size["minimum"], size["maximum"], size["default"]) == (
        search.SIZE_MIN,
        search.SIZE_MAX,
        search.SIZE_DEFAULT,
    )
    assert {p["name"] for p in operation("GET /search")["parameters"]} == set(search.QUERY_PARAMS)
    body = schema("SearchRequest")
    assert set(body["properties"]) == set(search.ALLOWED_KEYS)
    assert body["additionalProperties"] is False
    assert body["properties"]["size"]["maximum"] == search.POST_SIZE_MAX
    assert body["properties"]["from"]["maximum"] == search.POST_FROM_MAX
    assert schema("Suggestions")["properties"]["suggestions"]["maxItems"] == search.SIZE_MAX
    assert schema("EventPage")["properties"]["items"]["maxItems"] == events.LIMIT_MAX


def _literal_statuses(module: Any) -> set[int]:
    """Every status literal a handler module passes to HttpError(...) or response(...)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("HttpError", "response") and isinstance(node.args[0].value, int):
                found.add(node.args[0].value)
    return found


@pytest.mark.parametrize(
    ("module", "routes"), [(events, ("GET /events", "POST /events")), (search, ("GET /search", "POST /search"))]
)
def test_every_status_in_the_handler_source_is_documented(module: Any, routes: tuple[str, ...]) -> None:
    statuses = _literal_statuses(module)
    assert {400, 500} <= statuses  # the scan itself works
    for status in statuses:
        assert any(documented_response(r, status) for r in (*routes, None)), f"{module.__name__} answers {status}"


# ----------------------------------------------------------------------------------------
# Drive the handlers and check every response against the spec


def check_against_spec(route_key: str | None, resp: dict[str, Any]) -> int:
    parsed = check_v2_response(resp)
    doc = documented_response(route_key, parsed.status)
    assert doc is not None, f"{route_key}: status {parsed.status} is not documented ({parsed.json})"
    body_schema = doc["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator(body_schema, format_checker=jsonschema.FormatChecker()).validate(parsed.json)
    for name in set(doc.get("headers", {})) - GATEWAY_HEADERS:
        assert name.lower() in parsed.headers, f"{route_key} {parsed.status}: header {name} missing"
    return parsed.status


@pytest.fixture
def table() -> Iterator[Any]:
    with mocked_eventlog_table() as t:
        events.set_client(t.client)
        try:
            yield t
        finally:
            events.set_client(None)


def _event(
    method: str, path: str, body: Any = None, query: dict[str, str] | None = None, content_type: str | None = None
) -> dict[str, Any]:
    return http_api_v2_event(
        method, path, body, content_type=content_type, query={k: [v] for k, v in (query or {}).items()}
    )


def test_events_responses_are_documented(table: Any) -> None:
    seen: set[tuple[str | None, int]] = set()

    def run(route_key: str | None, event: dict[str, Any]) -> None:
        seen.add((route_key, check_against_spec(route_key, events.handler(event, LambdaContext()))))

    run("POST /events", _event("POST", "/events", ITEM))
    run("POST /events", _event("POST", "/events", ITEM))  # 409
    run("POST /events", _event("POST", "/events", {**ITEM, "date": "x"}))
    run("POST /events", _event("POST", "/events", json.dumps(ITEM), content_type="text/plain"))
    run("POST /events", _event("POST", "/events", json.dumps(ITEM) + " " * 17000, content_type="application/json"))
    run("GET /events", _event("GET", "/events", query={"date": "2024-05-01", "limit": "1"}))
    run("GET /events", _event("GET", "/events"))
    run("GET /events", _event("GET", "/events", query={"limit": "0"}))
    with Stubber(table.client) as stub:
        stub.add_client_error("put_item", "ProvisionedThroughputExceededException", http_status_code=400)
        stub.add_client_error("scan", "InternalServerError", http_status_code=500)
        run("POST /events", _event("POST", "/events", {**ITEM, "time": "00:00:00.000"}))
        run("GET /events", _event("GET", "/events"))
    run(None, _event("GET", "/elsewhere"))
    run(None, _event("DELETE", "/events"))
    assert {s for _, s in seen} == {200, 201, 400, 404, 405, 409, 413, 415, 429, 500}


class _Answer:
    def __init__(self, status: int, payload: Any) -> None:
        self.status_code = status
        self.content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def test_search_responses_are_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEARCH_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("SEARCH_INDEX", "terms")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    search.set_credentials(Credentials("AKIAEXAMPLE", "secret"))
    answers: list[_Answer] = []
    search.set_sender(lambda _req: answers.pop(0))
    hits = {
        "took": 1,
        "timed_out": False,
        "hits": {
            "total": {"value": 1, "relation": "eq"},
            "max_score": 1.0,
            "hits": [{"_id": "1", "_score": 1.0, "_source": {"term": "alpha", "popularity": 3, "category": "x"}}],
        },
    }
    seen: set[int] = set()

    def run(route_key: str | None, event: dict[str, Any], *answer: _Answer) -> None:
        answers[:] = list(answer)
        seen.add(check_against_spec(route_key, search.handler(event, LambdaContext())))
        assert answers == [], "the handler did not call OpenSearch as expected"

    try:
        run("GET /search", _event("GET", "/search", query={"q": "al"}), _Answer(200, hits))
        run("GET /search", _event("GET", "/search", query={"q": ""}))
        run("GET /search", _event("GET", "/search", query={"q": "al"}), _Answer(503, b"down"))
        run("POST /search", _event("POST", "/search", {"query": {"match_all": {}}}), _Answer(200, hits))
        run("POST /search", _event("POST", "/search", {"script_fields": {}}))
        run(
            "POST /search", _event("POST", "/search", {"query": {}}), _Answer(404, {"error": "no index", "status": 404})
        )
        run("POST /search", _event("POST", "/search", {"query": {}}), _Answer(429, {"error": "busy", "status": 429}))
        run("POST /search", _event("POST", "/search", "{}", content_type="text/plain"))
        run("POST /search", _event("POST", "/search", "{}" + " " * 17000, content_type="application/json"))
        monkeypatch.delenv("SEARCH_INDEX")
        run("POST /search", _event("POST", "/search", {"query": {}}))
        run(None, _event("PUT", "/search"))
    finally:
        search.set_sender(None)
        search.set_credentials(None)
    assert seen == {200, 400, 404, 405, 413, 415, 429, 500, 502}


def test_spec_patterns_are_valid_regular_expressions() -> None:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "pattern" and isinstance(v, str):
                    yield v
                else:
                    yield from walk(v)
        elif isinstance(node, list):
            for v in node:
                yield from walk(v)

    patterns = list(walk(SPEC))
    assert len(patterns) >= 4
    for p in patterns:
        re.compile(p)
