"""The local stack is the reference stack: signed requests through the custom domain reach the
real handlers, land in DynamoDB, and search answers from the corpus."""

from __future__ import annotations

import json
import ssl
import uuid
from typing import Any

import pytest

from loadcheck.bench.client import PinnedHTTPSConnection
from loadcheck.core.sigv4 import Signer
from loadcheck.core.target import Target

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
