"""The local stack is the reference stack: signed requests through the custom domain reach the
real handlers, land in DynamoDB, and search answers from the corpus."""

from __future__ import annotations

import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from requests_aws4auth import AWS4Auth

from loadcheck.bench.client import PinnedHTTPSConnection
from loadcheck.core.sigv4 import Signer
from loadcheck.core.state import read_identities
from loadcheck.core.target import Target
from reference_stack.local import supervisor

pytestmark = pytest.mark.integration


def call(target: Target, method: str, path: str, query: str = "", body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/json"} if body is not None else {}
    host = f"{target.domain}:{target.connect_port}"
    signed = Signer("execute-api", target.region).sign(
        target.credentials("requester"), method, host, path, query, headers, data
    )
    conn = PinnedHTTPSConnection(
        target.connect_port, ssl.create_default_context(cafile=target.ca_bundle), 35, domain=target.domain
    )
    try:
        conn.request(method, path + (f"?{query}" if query else ""), body=data or None, headers=headers | signed)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_post_lands_in_dynamodb_and_get_returns_it(local_target: Target) -> None:
    item = {"date": "2031-02-03", "time": "04:05:06.789", "userId": f"it-{uuid.uuid4().hex[:8]}", "eventType": "click"}
    status, headers, body = call(local_target, "POST", "/events", body=item)
    assert status == 201 and body == item and headers["apigw-requestid"]
    stored = local_target.client("dynamodb").get_item(
        TableName=local_target.table_name,
        Key={"date": {"S": item["date"]}, "time": {"S": item["time"]}},
        ConsistentRead=True,
    )["Item"]
    assert {k: v["S"] for k, v in stored.items()} == item
    status, _, body = call(local_target, "GET", "/events", query=f"date={item['date']}")
    assert status == 200 and item in body["items"]
    status, _, body = call(local_target, "POST", "/events", body=item)
    assert status == 409  # a colliding key never overwrites


def test_search_suggests_terms_from_the_corpus(local_target: Target) -> None:
    status, _, body = call(local_target, "GET", "/search", query="q=Non")
    assert status == 200
    assert "None" in [s["term"] for s in body["suggestions"]]
    status, _, body = call(
        local_target, "POST", "/search", body={"query": {"match_bool_prefix": {"term": "Tru"}}, "size": 3}
    )
    assert status == 200 and body["hits"]["total"]["value"] >= 1
    assert any(h["_source"]["term"] == "True" for h in body["hits"]["hits"])
    status, _, body = call(
        local_target, "POST", "/search", body={"query": {"match_all": {}}, "script": {"source": "x"}}
    )
    assert status == 400  # scripts never reach the search domain


def _access_log_record(target: Target, state_dir: Path, request_id: str) -> dict[str, Any]:
    """The access-log record of one request, read back from CloudWatch Logs after a flush."""
    supervisor.flush(state_dir)
    logs = target.client("logs")
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=target.access_log_group)
    records = [json.loads(e["message"]) for page in pages for e in page["events"]]
    matching = [r for r in records if r.get("requestId") == request_id]
    assert len(matching) == 1, f"{len(matching)} records for {request_id}"
    return matching[0]


def test_a_body_over_lambdas_6_mb_gets_the_documented_413_and_a_record_saying_why(
    local_target: Target, stack_state_dir: Path
) -> None:
    """Between Lambda's 6 MB synchronous payload and the HTTP API's 10 MB: the gateway invokes,
    Lambda refuses the event, the client gets docs/fidelity.md's answer (docs/aws-behaviour.md §3.4)."""
    item = {"date": "2031-02-04", "time": "00:00:00.000", "userId": "big", "eventType": "x" * (7 * 1024 * 1024)}
    status, headers, body = call(local_target, "POST", "/events", body=item)
    assert (status, body) == (413, {"message": "Request Entity Too Large"})
    record = _access_log_record(local_target, stack_state_dir, headers["apigw-requestid"])
    assert record["status"] == "413" and record["integrationStatus"] == "413"
    assert "6291456 bytes" in record["integrationErrorMessage"]
    assert "synchronous invocation payload limit" in record["integrationErrorMessage"]
    assert record["errorResponseType"] == "REQUEST_TOO_LARGE"


def test_the_search_role_may_search_its_index_and_nothing_else(local_stack: dict[str, Any]) -> None:
    """Over HTTP against the search service: the domain policy and the role's policy, decided
    together (as AWS does within one account), leave the search function only `_search`."""
    ids = read_identities(Path(local_stack["state_dir"]) / "identities.json")
    role = next(i for i in ids.by_key.values() if i.name == "search-role")
    auth = AWS4Auth(
        role.access_key_id, role.secret_access_key, local_stack["region"], "es", session_token=role.session_token
    )
    url, index = local_stack["services"]["search"]["url"], local_stack["search_index"]
    doc = {"term": "planted", "popularity": 1}
    bulk = json.dumps({"index": {"_id": "planted"}}) + "\n" + json.dumps(doc) + "\n"
    search = requests.post(
        f"{url}/{index}/_search", json={"query": {"match_all": {}}, "size": 1}, auth=auth, timeout=30
    )
    assert search.status_code == 200, search.text
    refused = {
        "POST /_bulk": requests.post(f"{url}/_bulk", data=bulk, auth=auth, timeout=30),
        f"POST /{index}/_bulk": requests.post(f"{url}/{index}/_bulk", data=bulk, auth=auth, timeout=30),
        f"POST /{index}/_doc": requests.post(f"{url}/{index}/_doc", json=doc, auth=auth, timeout=30),
        f"PUT /{index}/_doc/planted": requests.put(f"{url}/{index}/_doc/planted", json=doc, auth=auth, timeout=30),
        f"POST /{index}/_delete_by_query": requests.post(
            f"{url}/{index}/_delete_by_query", json={"query": {"match_all": {}}}, auth=auth, timeout=30
        ),
        f"GET /{index}/_search": requests.get(f"{url}/{index}/_search", auth=auth, timeout=30),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 403)
    assert all("is not authorized to perform" in r.json()["Message"] for r in refused.values())
