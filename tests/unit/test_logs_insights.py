"""Logs Insights (reference_stack/local/aws/logs/insights_*.py), and the Logs operations the aws
service answers itself (logs/api.py) as WSGI middleware over moto's real app, in-process."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from reference_stack.local.aws.logs.api import LogsExtensions
from reference_stack.local.aws.logs.errors import MalformedQuery
from reference_stack.local.aws.logs.insights_parse import parse_query
from reference_stack.local.aws.logs.insights_run import Event, run

T0 = 1_800_000_000_000  # ms
NOW = (int(time.time()) - 600) * 1000  # stored events must not be from the future (PutLogEvents refuses them)
STATUSES = [201, 201, 503, 500, 201, 429]


def access_events() -> list[Event]:
    out = [
        Event(
            "/aws/apigateway/api",
            "s1",
            T0 + i * 1000,
            T0 + i * 1000 + 5,
            json.dumps(
                {"requestId": f"r{i}", "status": str(s), "routeKey": "POST /events", "lat": i, "ctx": {"m": "POST"}}
            ),
            f"p{i}",
        )
        for i, s in enumerate(STATUSES)
    ]
    report = (
        "REPORT RequestId: abc\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\tMax Memory Used: 60 MB"
    )
    out.append(Event("/aws/lambda/events", "s2", T0 + 10_000, T0 + 10_001, report, "px"))
    out.append(Event("/aws/lambda/events", "s2", T0 + 11_000, T0 + 11_001, "[ERROR] boom in handler", "py"))
    return out


def rows(query: str) -> list[dict[str, str]]:
    return [
        {c["field"]: c["value"] for c in row} for row in run(parse_query(query), access_events(), account_id="1").rows
    ]


def test_stats_count_by_status() -> None:
    got = {r["status"]: int(r["count()"]) for r in rows("fields status | stats count() by status")}
    assert got == {"201": 3, "503": 1, "500": 1, "429": 1}


def test_filter_comparisons_like_regex_in_and_not() -> None:
    assert [r["requestId"] for r in rows("filter status >= 500 | fields requestId | sort requestId")] == ["r2", "r3"]
    assert len(rows("filter status = 599")) == 0
    assert len(rows("filter routeKey like 'POST' and not status in [201, 429]")) == 2
    assert len(rows("filter status not in [201]")) == 3
    assert len(rows("filter @message like /boom/")) == 1
    assert len(rows("filter @message =~ /^\\[ERROR\\]/ or status = 429")) == 2
    assert len(rows("filter ctx.m = 'POST' and ispresent(lat) and lat * 2 > 6")) == 2


def test_default_fields_order_ptr_and_timestamps() -> None:
    out = rows("filter status = 201")
    assert [set(r) for r in out] == [{"@timestamp", "@message", "@ptr"}] * 3
    assert [r["@ptr"] for r in out] == ["p4", "p1", "p0"]  # newest first
    assert out[-1]["@timestamp"] == "2027-01-15 08:00:00.000"


def test_stats_functions_bin_and_aliases() -> None:
    (row,) = rows(
        "filter ispresent(lat) | stats count(*) as n, sum(lat), avg(lat), min(lat), max(lat), pct(lat, 50), count_distinct(status) by bin(1h)"
    )
    assert row == {
        "bin(1h)": "2027-01-15 08:00:00.000",
        "n": "6",
        "sum(lat)": "15",
        "avg(lat)": "2.5",
        "min(lat)": "0",
        "max(lat)": "5",
        "pct(lat, 50)": "2",
        "count_distinct(status)": "4",
    }
    (lam,) = rows("filter @type = 'REPORT' | stats avg(@duration) as d, max(@maxMemoryUsed) as mem")
    assert lam == {"d": "12.5", "mem": "60000000"}


def test_parse_sort_limit_display() -> None:
    out = rows(
        'parse @message "\\"status\\": \\"*\\"" as st | filter ispresent(st) | sort lat desc | limit 2 | display requestId, st'
    )
    assert [(r["requestId"], r["st"]) for r in out] == [("r5", "429"), ("r4", "201")]
    regex = rows('parse @message /"requestId": "(?<rid>r\\d)"/ | stats count() by rid | sort rid desc | limit 1')
    assert regex == [{"rid": "r5", "count()": "1"}]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "fields status | dedup status",
        "pattern @message",
        "filter status ==",
        "stats status",
        "stats frobnicate(x)",
        "fields count()",  # an aggregate outside stats
        "limit 0",
        "filter (status = 1",
        "stats count() by bin(5 fortnights)",
        "parse @message 'a * b * c' as one",
    ],
)
def test_refused_queries(query: str) -> None:
    with pytest.raises(MalformedQuery) as exc:
        parse_query(query)
    body = exc.value.body()
    assert body["__type"] == "MalformedQueryException"
    assert set(body["queryCompileError"]["location"]) == {"startCharOffset", "endCharOffset"}


# -- the operations over moto ------------------------------------------------------------------------


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        app = LogsExtensions(
            app=DomainDispatcherApplication(create_backend_app), account_id="123456789012", default_region="us-east-1"
        )
        client = Client(app)

        def call(op: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
            resp = client.post(
                "/",
                data=json.dumps(body),
                headers={
                    "X-Amz-Target": f"Logs_20140328.{op}",
                    "Content-Type": "application/x-amz-json-1.1",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/logs/aws4_request, SignedHeaders=host, Signature=x",
                },
            )
            return resp.status_code, json.loads(resp.get_data() or b"{}")

        call("CreateLogGroup", {"logGroupName": "/g"})
        for stream in ("a", "b"):
            call("CreateLogStream", {"logGroupName": "/g", "logStreamName": stream})
        events = [{"timestamp": NOW + i, "message": json.dumps({"status": str(s)})} for i, s in enumerate(STATUSES)]
        call("PutLogEvents", {"logGroupName": "/g", "logStreamName": "a", "logEvents": events[:3]})
        call("PutLogEvents", {"logGroupName": "/g", "logStreamName": "b", "logEvents": events[3:]})
        yield call


def test_filter_log_events_matches_and_pages(logs: Any) -> None:
    code, out = logs("FilterLogEvents", {"logGroupName": "/g", "filterPattern": "{ $.status = 5* }"})
    assert code == 200 and [json.loads(e["message"])["status"] for e in out["events"]] == ["503", "500"]
    assert [e["logStreamName"] for e in out["events"]] == ["a", "b"] and "nextToken" not in out
    seen, token = [], None
    while True:
        code, page = logs(
            "FilterLogEvents", {"logGroupName": "/g", "limit": 4, **({"nextToken": token} if token else {})}
        )
        seen += [e["eventId"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == len(STATUSES)
    _, windowed = logs(
        "FilterLogEvents", {"logGroupName": "/g", "startTime": NOW + 1, "endTime": NOW + 2, "logStreamNames": ["a"]}
    )
    assert [e["timestamp"] for e in windowed["events"]] == [NOW + 1, NOW + 2]


def test_filter_log_events_errors(logs: Any) -> None:
    code, out = logs("FilterLogEvents", {"logGroupName": "/g", "filterPattern": "{ $.status = }"})
    assert code == 400 and out["__type"] == "InvalidParameterException"
    code, out = logs("FilterLogEvents", {"logGroupName": "/nope", "filterPattern": "x"})
    assert code == 400 and out["__type"].endswith("ResourceNotFoundException")  # moto's answer
    code, out = logs("FilterLogEvents", {"logGroupName": "/g", "nextToken": "garbage"})
    assert code == 400 and out["__type"] == "InvalidParameterException"


def test_query_lifecycle(logs: Any) -> None:
    window = {"logGroupName": "/g", "startTime": NOW // 1000 - 1, "endTime": NOW // 1000 + 1}
    code, started = logs("StartQuery", {**window, "queryString": "stats count() by status"})
    assert code == 200
    first = logs("GetQueryResults", {"queryId": started["queryId"]})[1]
    assert first["status"] == "Running" and first["results"] == []
    done = logs("GetQueryResults", {"queryId": started["queryId"]})[1]
    assert done["status"] == "Complete" and done["statistics"]["recordsMatched"] == len(STATUSES)
    counts = {r[0]["value"]: r[1]["value"] for r in done["results"]}
    assert counts == {"201": "3", "503": "1", "500": "1", "429": "1"}
    code, err = logs("StopQuery", {"queryId": started["queryId"]})
    assert code == 400 and err["__type"] == "InvalidParameterException"
    _, other = logs("StartQuery", {**window, "queryString": "fields @message"})
    assert logs("StopQuery", {"queryId": other["queryId"]}) == (200, {"success": True})
    assert logs("GetQueryResults", {"queryId": other["queryId"]})[1]["status"] == "Cancelled"
    listed = logs("DescribeQueries", {"logGroupName": "/g"})[1]["queries"]
    assert [q["status"] for q in listed] == ["Cancelled", "Complete"]
    code, bad = logs("StartQuery", {**window, "queryString": "fields x | dedup x"})
    assert code == 400 and bad["__type"] == "MalformedQueryException"
    code, missing = logs("GetQueryResults", {"queryId": "no-such-query"})
    assert code == 400 and missing["__type"] == "ResourceNotFoundException"
