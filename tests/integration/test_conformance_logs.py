"""Conformance: CloudWatch Logs filter patterns and Logs Insights, through the aws CLI and boto3,
on the access logs of a real short ``loadcheck run --fault lambda-error=0.1``.

A JSON filter pattern for 5xx returns exactly the 5xx records of the run (joined on the request
id the client saw), and ``stats count() by status`` equals the ledger's status counts. A pattern
or query the local stack cannot parse gets AWS's error (InvalidParameterException,
MalformedQueryException), never an answer.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from loadcheck.core.ledger import read_ledger
from tests.integration.conformance import aws, client, stack_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def faulty_run(local_stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One bounded run (about 60 requests in 6 s) with 10 % Lambda errors; its ledger and log window."""
    tmp = tmp_path_factory.mktemp("conformance-logs")
    proc = subprocess.run(
        [sys.executable, "-m", "loadcheck", "run", "--duration", "6s", "--rate", "10", "--mix", "writes=1,reads=1"]
        + ["--fault", "lambda-error=0.1", "--state-dir", local_stack["state_dir"], "--out", str(tmp / "runs")]
        # No checks: the security check's probes would land in the same seconds as the run's last
        # requests, and Logs Insights windows are whole seconds.
        + ["--no-checks"],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    run_dirs = [d for d in (tmp / "runs").iterdir() if not d.is_symlink()]  # runs/latest aside
    assert len(run_dirs) == 1, proc.stdout + proc.stderr
    ledger = [r for r in read_ledger(run_dirs[0]) if r.get("request_id")]
    assert len(ledger) >= 30, f"too few requests reached the gateway: {len(ledger)}\n{proc.stdout}{proc.stderr}"
    start_ms = int(min(r["t_start_ms"] for r in ledger)) - 1
    end_ms = int(max(r["t_start_ms"] + r["latency_ms"] for r in ledger)) + 1
    group = local_stack["access_log_group"]
    env = stack_env(local_stack["state_dir"], tmp)
    logs = client(env, "logs")
    ids = {r["request_id"] for r in ledger}
    deadline = time.monotonic() + 30
    while True:  # delivery is eventually consistent (the run flushes; poll anyway)
        seen = {_request_id(e["message"]) for e in _all_events(logs, group, start_ms, end_ms, "")}
        if ids <= seen or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ids <= seen, f"{len(ids - seen)} access-log records never arrived"
    return {"ledger": ledger, "start_ms": start_ms, "end_ms": end_ms, "group": group, "env": env, "logs": logs}


def _request_id(message: str) -> str:
    return str(json.loads(message).get("requestId"))


def _all_events(logs: Any, group: str, start_ms: int, end_ms: int, pattern: str) -> list[dict[str, Any]]:
    pages = logs.get_paginator("filter_log_events").paginate(
        logGroupName=group, startTime=start_ms, endTime=end_ms, filterPattern=pattern
    )
    return [e for page in pages for e in page["events"]]


def test_cli_json_filter_pattern_returns_exactly_the_5xx_records(faulty_run: dict[str, Any]) -> None:
    ledger = faulty_run["ledger"]
    expected = {r["request_id"] for r in ledger if r["status"] >= 500}
    assert expected, "a run with lambda-error=0.1 over this many requests had no 5xx: the fault did not apply"
    out = aws(
        faulty_run["env"],
        "logs",
        "filter-log-events",
        "--log-group-name",
        faulty_run["group"],
        "--start-time",
        str(faulty_run["start_ms"]),
        "--end-time",
        str(faulty_run["end_ms"]),
        "--filter-pattern",
        "{ $.status = 5* }",
    )
    got = [_request_id(e["message"]) for e in out["events"]]
    assert len(got) == len(set(got)) and set(got) == expected
    # The same question with a numeric comparison and through boto3, and its complement.
    numeric = _all_events(
        faulty_run["logs"], faulty_run["group"], faulty_run["start_ms"], faulty_run["end_ms"], "{ $.status >= 500 }"
    )
    assert {_request_id(e["message"]) for e in numeric} == expected
    rest = _all_events(
        faulty_run["logs"], faulty_run["group"], faulty_run["start_ms"], faulty_run["end_ms"], "{ $.status < 500 }"
    )
    assert {_request_id(e["message"]) for e in rest} == {r["request_id"] for r in ledger if r["status"] < 500}


def test_cli_insights_stats_count_by_status_equals_the_ledger(faulty_run: dict[str, Any]) -> None:
    env = faulty_run["env"]
    started = aws(
        env,
        "logs",
        "start-query",
        "--log-group-name",
        faulty_run["group"],
        "--start-time",
        str(faulty_run["start_ms"] // 1000),
        "--end-time",
        str(math.ceil(faulty_run["end_ms"] / 1000)),
        "--query-string",
        "fields status | stats count() by status",
    )
    statuses = []
    for _ in range(20):
        result = aws(env, "logs", "get-query-results", "--query-id", started["queryId"])
        statuses.append(result["status"])
        if result["status"] == "Complete":
            break
    assert statuses[0] in ("Scheduled", "Running", "Complete") and statuses[-1] == "Complete", statuses
    counts = {}
    for row in result["results"]:
        cells = {c["field"]: c["value"] for c in row}
        counts[int(cells["status"])] = int(cells["count()"])
    assert counts == dict(Counter(r["status"] for r in faulty_run["ledger"]))
    assert result["statistics"]["recordsMatched"] == len(faulty_run["ledger"])


def test_boto3_insights_filter_and_fields(faulty_run: dict[str, Any]) -> None:
    logs = faulty_run["logs"]
    qid = logs.start_query(
        logGroupName=faulty_run["group"],
        startTime=faulty_run["start_ms"] // 1000,
        endTime=math.ceil(faulty_run["end_ms"] / 1000),
        queryString="fields @timestamp, requestId, status | filter status >= 500 and routeKey like 'events' | sort @timestamp desc",
    )["queryId"]
    result = logs.get_query_results(queryId=qid)
    while result["status"] in ("Scheduled", "Running"):
        result = logs.get_query_results(queryId=qid)
    assert result["status"] == "Complete"
    rows = [{c["field"]: c["value"] for c in row} for row in result["results"]]
    assert {r["requestId"] for r in rows} == {r["request_id"] for r in faulty_run["ledger"] if r["status"] >= 500}
    assert all(set(r) == {"@timestamp", "requestId", "status", "@ptr"} for r in rows)
    stamps = [r["@timestamp"] for r in rows]
    assert stamps == sorted(stamps, reverse=True) and all(len(s) == 23 and s[10] == " " for s in stamps)


def test_unsupported_pattern_and_query_get_aws_errors(faulty_run: dict[str, Any], tmp_path: Path) -> None:
    env, group = faulty_run["env"], faulty_run["group"]
    bad = aws(
        env, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "{ $.status = }", check=False
    )
    assert bad.returncode != 0 and "InvalidParameterException" in bad.stderr, bad.stderr
    unquoted = aws(
        env, "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", "POST /events", check=False
    )
    assert unquoted.returncode != 0 and "InvalidParameterException" in unquoted.stderr
    query = aws(
        env,
        "logs",
        "start-query",
        "--log-group-name",
        group,
        "--start-time",
        "0",
        "--end-time",
        str(int(time.time())),
        "--query-string",
        "fields status | dedup status",
        check=False,
    )
    assert query.returncode != 0 and "MalformedQueryException" in query.stderr, query.stderr
