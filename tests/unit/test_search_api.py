"""The OpenSearch REST routes of the search service, called without sockets (Api.handle)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reference_stack.local.search.api import Api, Request
from reference_stack.local.search.engine import Engine

MAPPING = {
    "properties": {
        "term": {"type": "search_as_you_type"},
        "popularity": {"type": "integer"},
        "category": {"type": "keyword"},
    }
}


@pytest.fixture
def api() -> Api:
    return Api(engine=Engine(data_dir=None), domain_name="loadcheck-search", account_id="123456789012")


def call(api: Api, method: str, path: str, body: Any = None, query: str = "") -> tuple[int, Any]:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    resp = api.handle(Request(method=method, path=path, query=query, body=raw))
    return resp.status, resp.body


def ndjson(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_index_lifecycle(api: Api) -> None:
    assert call(api, "HEAD", "/terms") == (404, None)
    status, body = call(
        api,
        "PUT",
        "/terms",
        {"settings": {"index": {"number_of_shards": 1, "number_of_replicas": 0}}, "mappings": MAPPING},
    )
    assert (status, body) == (200, {"acknowledged": True, "shards_acknowledged": True, "index": "terms"})
    assert call(api, "HEAD", "/terms") == (200, None)
    status, body = call(api, "GET", "/terms")
    assert body["terms"]["mappings"] == MAPPING
    assert body["terms"]["settings"]["index"]["number_of_replicas"] == "0"
    assert call(api, "GET", "/terms/_mapping") == (200, {"terms": {"mappings": MAPPING}})
    status, body = call(api, "PUT", "/terms", {"mappings": MAPPING})
    assert status == 400 and body["error"]["type"] == "resource_already_exists_exception"
    assert call(api, "DELETE", "/terms") == (200, {"acknowledged": True})
    assert call(api, "HEAD", "/terms") == (404, None)


def test_missing_index_is_opensearch_404(api: Api) -> None:
    status, body = call(api, "POST", "/nope/_search", {})
    assert status == 404
    assert body["status"] == 404
    assert body["error"]["type"] == "index_not_found_exception"
    assert body["error"]["root_cause"][0] == {
        "type": "index_not_found_exception",
        "reason": "no such index [nope]",
        "index": "nope",
        "resource.type": "index_or_alias",
        "resource.id": "nope",
        "index_uuid": "_na_",
    }


def test_bulk_then_search_with_refresh(api: Api) -> None:
    call(api, "PUT", "/terms", {"mappings": MAPPING})
    body = ndjson(
        {"index": {"_index": "terms", "_id": "1"}},
        {"term": "new york", "popularity": 9},
        {"create": {"_id": "2"}},
        {"term": "newark", "popularity": 3},
        {"index": {"_id": "3"}},
        {"term": "bad", "popularity": "many"},
        {"delete": {"_id": "4"}},
        {"index": {"_index": "created-by-bulk", "_id": "5"}},
        {"term": "x"},
        {"delete": {"_index": "missing", "_id": "6"}},
    )
    status, res = call(api, "POST", "/terms/_bulk", body, query="refresh=true")
    assert status == 200 and res["errors"] is True
    kinds = [(next(iter(i)), next(iter(i.values()))["status"]) for i in res["items"]]
    assert kinds == [("index", 201), ("create", 201), ("index", 400), ("delete", 404), ("index", 201), ("delete", 404)]
    assert res["items"][2]["index"]["error"]["type"] == "mapper_parsing_exception"
    assert res["items"][5]["delete"]["error"]["type"] == "index_not_found_exception"
    # A write to a missing index created it, with dynamic mappings (action.auto_create_index).
    assert call(api, "GET", "/created-by-bulk/_mapping")[1] == {
        "created-by-bulk": {
            "mappings": {
                "properties": {
                    "term": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
                }
            }
        }
    }
    assert res["items"][0]["index"]["result"] == "created"
    status, res = call(
        api,
        "POST",
        "/terms/_search",
        {
            "query": {
                "multi_match": {"query": "new", "type": "bool_prefix", "fields": ["term", "term._2gram", "term._3gram"]}
            }
        },
    )
    assert [h["_id"] for h in res["hits"]["hits"]] == ["1", "2"]
    assert call(api, "GET", "/terms/_count")[1]["count"] == 2


def test_bulk_needs_final_newline_and_known_actions(api: Api) -> None:
    call(api, "PUT", "/terms", {"mappings": MAPPING})
    status, res = call(api, "POST", "/_bulk", b'{"index": {"_index": "terms"}}\n{"term": "a"}')
    assert status == 400 and "terminated by a newline" in res["error"]["reason"]
    status, res = call(api, "POST", "/_bulk", ndjson({"upsert": {"_index": "terms"}}, {}))
    assert status == 400 and "[upsert]" in res["error"]["reason"]


def test_documents_crud_and_realtime_get(api: Api) -> None:
    call(api, "PUT", "/terms", {"mappings": MAPPING})
    status, res = call(api, "PUT", "/terms/_doc/a", {"term": "alpha"})
    assert status == 201 and res["result"] == "created" and res["_shards"] == {"total": 2, "successful": 1, "failed": 0}
    status, res = call(api, "GET", "/terms/_doc/a")  # realtime: no refresh needed
    assert (status, res["found"], res["_source"], res["_version"]) == (200, True, {"term": "alpha"}, 1)
    assert call(api, "POST", "/terms/_search", {})[1]["hits"]["total"]["value"] == 0
    status, res = call(api, "PUT", "/terms/_create/a", {"term": "again"})
    assert status == 409 and res["error"]["type"] == "version_conflict_engine_exception"
    status, res = call(api, "POST", "/terms/_update/a", {"doc": {"popularity": 4}}, query="refresh=wait_for")
    assert (status, res["result"], res["_version"]) == (200, "updated", 2)
    assert call(api, "GET", "/terms/_doc/a")[1]["_source"] == {"term": "alpha", "popularity": 4}
    status, res = call(api, "POST", "/terms/_doc", {"term": "auto"}, query="refresh=true")
    assert status == 201 and res["forced_refresh"] is True and len(res["_id"]) == 20
    assert call(api, "GET", "/terms/_count")[1]["count"] == 2
    assert call(api, "DELETE", "/terms/_doc/a", query="refresh")[1]["result"] == "deleted"
    assert call(api, "GET", "/terms/_doc/a") == (404, {"_index": "terms", "_id": "a", "found": False})
    assert call(api, "GET", "/terms/_doc/a", query="_source=false")[0] == 404


def test_refresh_endpoint_makes_writes_searchable(api: Api) -> None:
    call(api, "PUT", "/terms", {"mappings": MAPPING})
    call(api, "PUT", "/terms/_doc/a", {"term": "alpha"})
    assert call(api, "GET", "/terms/_count")[1]["count"] == 0
    assert call(api, "POST", "/terms/_refresh")[0] == 200
    assert call(api, "GET", "/terms/_count")[1]["count"] == 1


def test_search_uri_params(api: Api) -> None:
    call(api, "PUT", "/terms", {"mappings": MAPPING})
    call(
        api,
        "POST",
        "/_bulk",
        ndjson(
            *[
                x
                for i in range(5)
                for x in ({"index": {"_index": "terms", "_id": str(i)}}, {"term": f"t{i}", "popularity": i})
            ]
        ),
        query="refresh=true",
    )
    status, res = call(api, "GET", "/terms/_search", query="size=2&from=1&_source=false")
    assert status == 200 and len(res["hits"]["hits"]) == 2 and "_source" not in res["hits"]["hits"][0]
    status, res = call(api, "GET", "/terms/_search", query="bogus=1")
    assert (
        status == 400 and res["error"]["reason"] == "request [/terms/_search] contains unrecognized parameter: [bogus]"
    )


def test_unsupported_query_is_parsing_exception(api: Api) -> None:
    call(api, "PUT", "/terms", {"mappings": MAPPING})
    status, res = call(api, "POST", "/terms/_search", {"query": {"fuzzy": {"term": "x"}}})
    assert status == 400 and res["status"] == 400
    assert res["error"]["type"] == "parsing_exception"
    assert res["error"]["root_cause"][0]["type"] == "parsing_exception"
    assert "unknown query [fuzzy]" in res["error"]["reason"]
    status, res = call(api, "POST", "/terms/_search", b"{not json")
    assert status == 400 and res["error"]["type"] == "parsing_exception"
    # Found by the schema fuzzer (tests/integration/test_schema_fuzz.py): a sort entry whose
    # value is neither a string nor an object was a 500 (AttributeError), surfacing as the
    # search handler's 502.
    for bad in ([{"term": None}], [{"term": 3}], {"term": [1]}):
        status, res = call(api, "POST", "/terms/_search", {"sort": bad})
        assert status == 400 and res["error"]["type"] == "parsing_exception", (bad, res)


def test_cluster_endpoints_and_method_errors(api: Api) -> None:
    status, info = call(api, "GET", "/")
    assert status == 200 and info["version"]["distribution"] == "opensearch"
    assert info["version"]["number"] == "2.19.0" and info["cluster_name"] == "123456789012:loadcheck-search"
    assert call(api, "GET", "/_cluster/health")[1]["status"] == "green"
    call(api, "PUT", "/terms", {"mappings": MAPPING})  # number_of_replicas defaults to 1: one node cannot hold it
    health = call(api, "GET", "/_cluster/health")[1]
    assert (health["status"], health["unassigned_shards"]) == ("yellow", 1)
    assert call(api, "GET", "/_cluster/health", query="wait_for_status=green")[0] == 408
    status, res = call(api, "DELETE", "/terms/_search")
    assert status == 405 and "allowed: [GET, POST]" in res["error"]
    status, res = call(api, "GET", "/terms/_nothing")
    assert status == 400 and "no handler found" in res["error"]
    status, res = call(api, "POST", "/_search", {})
    assert status == 400 and "name the index" in res["error"]["reason"]


def test_cat_indices(api: Api) -> None:
    call(api, "PUT", "/terms", {"settings": {"number_of_replicas": 0}, "mappings": MAPPING})
    call(api, "PUT", "/terms/_doc/1", {"term": "a"}, query="refresh=true")
    status, rows = call(api, "GET", "/_cat/indices", query="format=json")
    assert status == 200 and [(r["index"], r["health"], r["docs.count"]) for r in rows] == [("terms", "green", "1")]
    resp = api.handle(Request(method="GET", path="/_cat/indices", query="v"))
    assert resp.body.splitlines()[0].split() == [
        "health",
        "status",
        "index",
        "uuid",
        "pri",
        "rep",
        "docs.count",
        "docs.deleted",
    ]
    assert resp.headers["Content-Type"].startswith("text/plain")


def test_a_domain_without_explicit_index_refuses_bulk_bodies_naming_an_index() -> None:
    # The stack's domain sets rest.action.multi.allow_explicit_index=false (opensearch.tf): a body
    # naming an index would step outside an index-scoped policy.
    api = Api(
        engine=Engine(data_dir=None),
        domain_name="loadcheck-search",
        account_id="123456789012",
        allow_explicit_index=False,
    )
    call(api, "PUT", "/terms", {"mappings": MAPPING})
    status, res = call(api, "POST", "/_bulk", ndjson({"index": {"_index": "other"}}, {"term": "a"}))
    assert status == 400 and res["error"]["reason"] == "explicit index in bulk is not allowed"
    status, res = call(api, "POST", "/terms/_bulk", ndjson({"index": {"_index": "terms"}}, {"term": "a"}))
    assert status == 400 and res["error"]["type"] == "illegal_argument_exception"
    status, res = call(api, "POST", "/terms/_bulk", ndjson({"create": {"_id": "a"}}, {"term": "a"}))
    assert status == 200 and not res["errors"] and res["items"][0]["create"]["_index"] == "terms"
