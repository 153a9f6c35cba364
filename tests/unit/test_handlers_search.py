"""The search handler: validation, the request it signs and sends, and how it maps answers.

Most tests inject a recording sender; one sends through the real ``URLLib3Session`` to a
loopback HTTP server that verifies the SigV4 signature.
"""

from __future__ import annotations

import datetime as _dt
import http.server
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.credentials import Credentials
from botocore.exceptions import EndpointConnectionError

from loadcheck.core.sigv4 import SigV4Failure, verify
from reference_stack.handlers import search
from reference_stack.testing import LambdaContext, check_v2_response, http_api_v2_event

KEY, SECRET, TOKEN = "AKIASEARCHROLE000001", "search-secret", "session-token-1"
HITS = {
    "took": 2,
    "timed_out": False,
    "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
    "hits": {
        "total": {"value": 2, "relation": "eq"},
        "max_score": 3.5,
        "hits": [
            {
                "_index": "terms",
                "_id": "1",
                "_score": 3.5,
                "_source": {"term": "greek small letter alpha", "popularity": 90, "category": "unicode"},
            },
            {"_index": "terms", "_id": "2", "_score": 1.25, "_source": {"term": "greek capital letter alpha"}},
        ],
    },
}


@dataclass
class FakeResponse:
    status_code: int
    content: bytes


@dataclass
class Recorder:
    """A sender that records each prepared request and answers from ``answer``."""

    answer: Callable[[Any], FakeResponse]
    requests: list[Any] = field(default_factory=list)

    def __call__(self, prepared: Any) -> FakeResponse:
        self.requests.append(prepared)
        return self.answer(prepared)


def reply(status: int, payload: Any) -> Callable[[Any], FakeResponse]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return lambda _req: FakeResponse(status, raw)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SEARCH_ENDPOINT", "https://search-loadcheck.us-east-1.es.amazonaws.com")
    monkeypatch.setenv("SEARCH_INDEX", "terms")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    search.set_credentials(Credentials(KEY, SECRET, TOKEN))
    try:
        yield
    finally:
        search.set_sender(None)
        search.set_credentials(None)


def install(answer: Callable[[Any], FakeResponse]) -> Recorder:
    rec = Recorder(answer)
    search.set_sender(rec)
    return rec


def call(
    method: str,
    path: str = "/search",
    body: Any = None,
    *,
    query: dict[str, str] | None = None,
    content_type: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    event = http_api_v2_event(
        method, path, body, content_type=content_type, query={k: [v] for k, v in (query or {}).items()}
    )
    parsed = check_v2_response(search.handler(event, LambdaContext(function_name="loadcheck-search")))
    return parsed.status, parsed.headers, parsed.json


def verify_es(prepared: Any) -> None:
    """Verify the prepared request's SigV4 signature for service ``es`` (raises SigV4Failure)."""
    parts = urlsplit(prepared.url)
    headers = [("host", parts.netloc)] + list(prepared.headers.items())
    body = prepared.body if isinstance(prepared.body, bytes) else (prepared.body or "").encode()
    verify(
        method=prepared.method,
        raw_path=parts.path,
        raw_query=parts.query,
        headers=headers,
        body=body,
        service="es",
        region="us-east-1",
        secret_for={KEY: (SECRET, TOKEN)},
        now=_dt.datetime.now(_dt.UTC),
    )


def test_autocomplete_sends_signed_bool_prefix_query_and_maps_hits(env: None) -> None:
    rec = install(reply(200, HITS))
    status, _, body = call("GET", query={"q": "letter alp", "size": "2"})
    assert status == 200
    assert body == {
        "suggestions": [
            {"term": "greek small letter alpha", "score": 3.5, "popularity": 90, "category": "unicode"},
            {"term": "greek capital letter alpha", "score": 1.25},
        ]
    }
    (req,) = rec.requests
    assert req.method == "POST"
    assert req.url == "https://search-loadcheck.us-east-1.es.amazonaws.com/terms/_search"
    sent = json.loads(req.body)
    assert sent["size"] == 2
    assert sent["query"] == {
        "multi_match": {
            "query": "letter alp",
            "type": "bool_prefix",
            "operator": "and",
            "fields": ["term", "term._2gram", "term._3gram"],
        }
    }
    assert req.headers["X-Amz-Security-Token"] == TOKEN
    assert "/us-east-1/es/aws4_request" in req.headers["Authorization"]
    verify_es(req)


def test_signature_check_catches_tampering(env: None) -> None:
    rec = install(reply(200, HITS))
    call("GET", query={"q": "alp"})
    req = rec.requests[0]
    req.body = req.body.replace(b"alp", b"alq")
    with pytest.raises(SigV4Failure):
        verify_es(req)


def test_autocomplete_default_size_is_5(env: None) -> None:
    rec = install(reply(200, HITS))
    call("GET", query={"q": "g"})
    assert json.loads(rec.requests[0].body)["size"] == 5


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ({}, "q"),
        ({"q": "   "}, "q"),
        ({"q": "x" * 101}, "q"),
        ({"q": "a", "size": "0"}, "size"),
        ({"q": "a", "size": "21"}, "size"),
        ({"q": "a", "size": "five"}, "size"),
        ({"q": "a", "sise": "3"}, "'sise'"),
    ],
)
def test_autocomplete_bad_parameters_are_400_and_never_sent(env: None, query: dict[str, str], name: str) -> None:
    rec = install(reply(200, HITS))
    status, _, body = call("GET", query=query)
    assert status == 400 and name in body["message"]
    assert rec.requests == []


def test_autocomplete_refused_by_backend_is_502(env: None) -> None:
    install(reply(400, {"error": {"type": "query_shard_exception"}, "status": 400}))
    status, _, body = call("GET", query={"q": "a"})
    assert (status, body) == (502, {"message": "Search backend unavailable"})


def test_post_forwards_allowed_body_and_returns_opensearch_json_as_is(env: None) -> None:
    rec = install(reply(200, HITS))
    query = {
        "query": {"bool": {"must": [{"match": {"term": "alpha"}}]}},
        "size": 100,
        "from": 0,
        "_source": ["term"],
        "sort": [{"popularity": "desc"}],
        "track_total_hits": True,
        "suggest": {"s": {"prefix": "al", "completion": {"field": "term"}}},
    }
    status, _, body = call("POST", body=query)
    assert (status, body) == (200, HITS)
    assert json.loads(rec.requests[0].body) == query
    verify_es(rec.requests[0])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"aggs": {}}, "'aggs'"),
        ({"query": {"match_all": {}}, "script_fields": {"x": {}}}, "'script_fields'"),
        ({"query": {"bool": {"filter": [{"script": {"script": "1"}}]}}}, "query.bool.filter[0].script"),
        ({"query": {"function_score": {"functions": [{"script_score": {}}]}}}, "script_score"),
        ({"size": 101}, "size"),
        ({"size": -1}, "size"),
        ({"size": True}, "size"),
        ({"size": "10"}, "size"),
        ({"from": 10_001}, "from"),
        ([{"query": {}}], "JSON object"),
    ],
)
def test_post_disallowed_bodies_are_400_and_never_reach_opensearch(env: None, body: Any, named: str) -> None:
    rec = install(reply(200, HITS))
    status, _, resp = call("POST", body=body)
    assert status == 400 and named in resp["message"]
    assert rec.requests == []


def test_post_deeply_nested_body_is_400(env: None) -> None:
    rec = install(reply(200, HITS))
    deep: Any = {}
    for _ in range(100):
        deep = {"bool": {"must": deep}}
    status, _, resp = call("POST", body={"query": deep})
    assert status == 400 and "nested" in resp["message"]
    assert rec.requests == []


def test_post_needs_json_content_type(env: None) -> None:
    rec = install(reply(200, HITS))
    assert call("POST", body='{"size": 1}', content_type="text/plain")[0] == 415
    assert rec.requests == []


@pytest.mark.parametrize("status", [400, 403, 404, 429])
def test_post_passes_4xx_through(env: None, status: int) -> None:
    error = {"error": {"type": "x", "reason": "y"}, "status": status}
    install(reply(status, error))
    got, headers, body = call("POST", body={"query": {"match_all": {}}})
    assert (got, body) == (status, error)
    assert ("retry-after" in headers) == (status == 429)


@pytest.mark.parametrize("answer", [reply(500, {"error": "boom"}), reply(503, b"<html>"), reply(200, b"not json")])
def test_backend_failures_are_502(
    env: None, answer: Callable[[Any], FakeResponse], caplog: pytest.LogCaptureFixture
) -> None:
    install(answer)
    with caplog.at_level(logging.ERROR, logger="search"):
        status, _, body = call("POST", body={"query": {"match_all": {}}})
    assert (status, body) == (502, {"message": "Search backend unavailable"})
    assert caplog.records


def test_unreachable_backend_is_502(env: None) -> None:
    def down(prepared: Any) -> FakeResponse:
        raise EndpointConnectionError(endpoint_url=prepared.url)

    install(down)
    assert call("GET", query={"q": "a"})[2] == {"message": "Search backend unavailable"}


def test_missing_endpoint_is_500(env: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv("SEARCH_ENDPOINT")
    install(reply(200, HITS))
    with caplog.at_level(logging.ERROR, logger="search"):
        assert call("GET", query={"q": "a"})[:1] == (500,)
    assert "SEARCH_ENDPOINT is not set" in caplog.text


def test_methods_and_paths(env: None) -> None:
    install(reply(200, HITS))
    status, headers, _ = call("DELETE")
    assert (status, headers["allow"]) == (405, "GET, POST")
    assert call("GET", "/searches", query={"q": "a"})[0] == 404


# ----------------------------------------------------------------------------------------
# The default sender, over loopback HTTP


class _VerifyingHandler(http.server.BaseHTTPRequestHandler):
    results: list[str]

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        parts = urlsplit(self.path)
        try:
            verify(
                method="POST",
                raw_path=parts.path,
                raw_query=parts.query,
                headers=list(self.headers.items()),
                body=body,
                service="es",
                region="us-east-1",
                secret_for={KEY: (SECRET, TOKEN)},
                now=_dt.datetime.now(_dt.UTC),
            )
            status, payload = 200, HITS
            self.results.append(f"ok {parts.path}")
        except SigV4Failure as exc:
            status, payload = 403, {"message": exc.message}
            self.results.append(f"denied {exc.kind}")
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass


@pytest.fixture
def verifying_server() -> Iterator[tuple[str, list[str]]]:
    results: list[str] = []
    handler = type("H", (_VerifyingHandler,), {"results": results})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", results
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_default_sender_signs_requests_a_sigv4_verifier_accepts(
    env: None, verifying_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, results = verifying_server
    monkeypatch.setenv("SEARCH_ENDPOINT", url)
    search.set_sender(None)
    status, _, body = call("GET", query={"q": "greek alp"})
    assert status == 200, body
    assert body["suggestions"][0]["term"] == "greek small letter alpha"
    assert results == ["ok /terms/_search"]


def test_default_sender_with_wrong_secret_gets_403_passed_through(
    env: None, verifying_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, results = verifying_server
    monkeypatch.setenv("SEARCH_ENDPOINT", url)
    search.set_sender(None)
    search.set_credentials(Credentials(KEY, "not-the-secret", TOKEN))
    status, _, body = call("POST", body={"query": {"match_all": {}}})
    assert status == 403 and "signature" in body["message"]
    assert results == ["denied signature"]


def test_default_credentials_come_from_the_botocore_chain(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-token")
    search.set_credentials(None)
    rec = install(reply(200, HITS))
    call("GET", query={"q": "a"})
    assert "Credential=AKIAFROMENVIRONMENT0/" in rec.requests[0].headers["Authorization"]
    assert rec.requests[0].headers["X-Amz-Security-Token"] == "env-token"
