"""access_logs: clean logs pass; missing, duplicate, blank, unexplained, wrong records fail by request id."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from checks import access_logs
from checks.framework import CheckContext
from loadcheck.bench.synthetic_checks import (
    REGION,
    access_log_record,
    make_records,
    put_access_logs,
    synthetic_target,
    write_run,
)
from loadcheck.core.description import load_description
from loadcheck.core.rundir import read_run

GROUP = "/aws/apigateway/loadcheck-http-api"
FMT = load_description().access_log.format


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def logs():
    with mock_aws():
        yield boto3.client("logs", region_name=REGION)


def ctx_for(
    run_dir: Path, client: Any, *, budget_s: float = 5.0, flush: Any = None, fmt: dict[str, str] | None = None
) -> CheckContext:
    desc = load_description()
    if fmt is not None:
        desc = dataclasses.replace(desc, access_log=dataclasses.replace(desc.access_log, format=fmt))
    return CheckContext(
        run_dir=run_dir,
        run=read_run(run_dir),
        target=synthetic_target(),
        description=desc,
        clients=lambda s: client,
        budget_s=budget_s,
        clock=FakeClock(),
        flush=flush,
    )


def setup_run(
    tmp_path: Path, logs: Any, *, ship: list[dict[str, Any]] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    records = make_records(**({"writes": 20, "reads": 10, "throttle_after": 15} | kw))
    write_run(tmp_path, records)
    put_access_logs(logs, GROUP, records if ship is None else ship, FMT)
    return records


def test_clean_logs_pass(tmp_path: Path, logs: Any) -> None:
    records = setup_run(tmp_path, logs)
    res = access_logs.run(ctx_for(tmp_path, logs))
    assert res.status == "pass", res.evidence
    assert res.figures["expected"] == len(records) == res.figures["joined"]
    # the bytes CloudWatch Logs bills ingestion on, for the capacity plan's bill
    shipped = [e["message"] for e in logs.filter_log_events(logGroupName=GROUP)["events"]]
    assert res.figures["record_bytes_mean"] == round(sum(len(m.encode()) for m in shipped) / len(shipped), 1)


def test_missing_record_fails_naming_request(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=10, reads=2)
    write_run(tmp_path, records)
    put_access_logs(logs, GROUP, records[:4] + records[5:], FMT)
    flushes: list[int] = []
    ctx = ctx_for(tmp_path, logs, budget_s=3.0, flush=lambda: flushes.append(1))
    res = access_logs.run(ctx)
    assert res.status == "fail" and res.figures["missing"] == 1
    assert res.evidence[1]["request_id"] == records[4]["request_id"]  # [0] is the budget note
    assert len(flushes) >= 2 and sum(ctx.clock.slept) <= 3.0  # type: ignore[attr-defined]


def test_duplicate_record_fails(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=6, reads=0)
    write_run(tmp_path, records)
    put_access_logs(logs, GROUP, records + [records[2]], FMT)
    res = access_logs.run(ctx_for(tmp_path, logs))
    assert res.status == "fail" and res.figures["duplicate"] == 1
    assert any(e["request_id"] == records[2]["request_id"] for e in res.evidence)


def test_blank_field_fails_naming_field(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=4, reads=0)
    write_run(tmp_path, records)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    events = []
    for r in records:
        line = access_log_record(r, FMT)
        line["status"] = "-"  # blank-access-log-field=status
        events.append({"timestamp": int(r["t_start_ms"]), "message": json.dumps(line)})
    logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=events)
    res = access_logs.run(ctx_for(tmp_path, logs))
    assert res.status == "fail" and res.figures["blank"] == 4
    assert {e["field"] for e in res.evidence if e["kind"] == "blank"} == {"status"}


def test_unexplained_record_fails_but_probes_do_not(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=4, reads=0)
    write_run(tmp_path, records)
    stranger = dict(records[1], request_id="XXXXstrangerXX=")
    probe = dict(records[2], request_id="YYYYprobeYYYY=")
    put_access_logs(logs, GROUP, records + [stranger], FMT)
    line = access_log_record(probe, FMT)
    line["userAgent"] = "loadcheck-check-probe/1 security"
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="2031-01-01/$default",
        logEvents=[{"timestamp": int(probe["t_start_ms"]) + 5, "message": json.dumps(line)}],
    )
    res = access_logs.run(ctx_for(tmp_path, logs))
    assert res.status == "fail" and res.figures["unexplained"] == 1
    assert res.evidence[0]["request_id"] == "XXXXstrangerXX="


def test_values_disagreeing_with_ledger_fail(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=3, reads=0)
    write_run(tmp_path, records)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    lines = [access_log_record(r, FMT) for r in records]
    lines[0]["status"] = "500"
    lines[1]["requestTime"] = "2026-11-21T10:00:00Z"
    lines[2]["errorMessage"] = "Internal Server Error"  # set on a success
    lines[2]["protocol"] = "HTTP/2.0"
    events = [
        {"timestamp": int(r["t_start_ms"]), "message": json.dumps(line)}
        for r, line in zip(records, lines, strict=False)
    ]
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="s",
        logEvents=events + [{"timestamp": int(records[-1]["t_start_ms"]) + 1, "message": "not json at all"}],
    )
    res = access_logs.run(ctx_for(tmp_path, logs))
    assert res.status == "fail"
    f = res.figures
    assert (f["mismatch"], f["bad_form"], f["set_when_unset"], f["malformed"]) == (1, 2, 1, 1)
    by_field = {(e["request_id"], e.get("field")) for e in res.evidence}
    assert (records[0]["request_id"], "status") in by_field
    assert (records[1]["request_id"], "requestTime") in by_field


def test_403_without_authorizer_error_fails(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=2, reads=0)
    records[0]["status"] = 403
    write_run(tmp_path, records)
    logs.create_log_group(logGroupName=GROUP)
    logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
    lines = [access_log_record(r, FMT) for r in records]
    lines[0]["authorizerError"] = "-"
    logs.put_log_events(
        logGroupName=GROUP,
        logStreamName="s",
        logEvents=[
            {"timestamp": int(r["t_start_ms"]), "message": json.dumps(line)}
            for r, line in zip(records, lines, strict=False)
        ],
    )
    res = access_logs.run(ctx_for(tmp_path, logs))
    assert res.status == "fail" and res.figures["set_when_unset"] == 1
    assert res.evidence[0]["field"] == "authorizerError"


def test_missing_log_group_is_error(tmp_path: Path, logs: Any) -> None:
    write_run(tmp_path, make_records(writes=2, reads=0))
    res = access_logs.run(ctx_for(tmp_path, logs, budget_s=1.0))
    assert res.status == "error" and GROUP in res.summary


def test_records_after_a_cut_ledger_are_unrecorded_not_unexplained(tmp_path: Path, logs: Any) -> None:
    import gzip
    import zlib

    from checks import runner
    from loadcheck.core.rundir import RunRecord
    from loadcheck.core.rundir import write_run as write_run_record

    setup_run(tmp_path, logs, throttle_after=None)
    path = next((tmp_path / "ledger").glob("*.jsonl.gz"))
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    comp = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    path.write_bytes(comp.compress(b"".join(lines[:-4]) + lines[-4][:25]) + comp.flush(zlib.Z_SYNC_FLUSH))
    run = RunRecord.from_dict(read_run(tmp_path))
    run.status, run.ledger_records = "interrupted", None  # the load generator was killed
    write_run_record(tmp_path, run)
    res = runner.run_checks(tmp_path, names=["access_logs"], context=ctx_for(tmp_path, logs))[0]
    assert res.status == "pass", (res.summary, res.evidence)
    assert res.figures["unexplained"] == 0 and res.figures["unrecorded_after_ledger_cut"] == 4


# -- records CloudWatch has not delivered yet (AWS: no flush, ctx.delivery_s) --------------------


def _aws_ctx(run_dir: Path, client: Any, *, at_ms: float, budget_s: float = 2.0) -> CheckContext:
    ctx = ctx_for(run_dir, client, budget_s=budget_s)
    ctx.delivery_s = 900.0
    ctx.clock.now = at_ms / 1000.0  # type: ignore[attr-defined]
    return ctx


def test_record_not_delivered_within_the_budget_is_not_yet_not_missing(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=6, reads=0)
    write_run(tmp_path, records)
    put_access_logs(logs, GROUP, records[:5], FMT)
    end_ms = max(r["t_start_ms"] + r["latency_ms"] for r in records)
    res = access_logs.run(_aws_ctx(tmp_path, logs, at_ms=end_ms + 60_000))  # a minute after the run
    assert res.status == "error" and res.figures["missing"] == 0 and res.figures["not_delivered"] == 1
    assert f"not delivered yet: re-run `loadcheck check {tmp_path}` later" in res.summary
    assert res.reason == f"not delivered yet: re-run `loadcheck check {tmp_path}` later"
    assert any(e.get("request_id") == records[5]["request_id"] for e in res.evidence if e["kind"] == "not_delivered")


def test_record_absent_after_the_delivery_delay_is_missing(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=6, reads=0)
    write_run(tmp_path, records)
    put_access_logs(logs, GROUP, records[:5], FMT)
    end_ms = max(r["t_start_ms"] + r["latency_ms"] for r in records)
    res = access_logs.run(_aws_ctx(tmp_path, logs, at_ms=end_ms + 901_000))  # `loadcheck check` 15 min later
    assert res.status == "fail" and res.figures["missing"] == 1 and res.figures["not_delivered"] == 0


def test_other_problems_fail_even_while_records_are_on_their_way(tmp_path: Path, logs: Any) -> None:
    records = make_records(writes=6, reads=0)
    write_run(tmp_path, records)
    put_access_logs(logs, GROUP, records[:4] + [records[0]], FMT)  # one duplicate, two not yet
    end_ms = max(r["t_start_ms"] + r["latency_ms"] for r in records)
    res = access_logs.run(_aws_ctx(tmp_path, logs, at_ms=end_ms + 1_000))
    assert res.status == "fail" and res.figures["duplicate"] == 1 and res.figures["not_delivered"] == 2
    assert "2 not delivered yet" in res.summary


def test_fields_follow_the_configured_format(tmp_path: Path, logs: Any) -> None:
    """A field the format drops is not required; one it adds is judged when its variable is known
    (``$context.integration.latency``), and listed as unchecked otherwise."""
    fmt = {k: v for k, v in FMT.items() if k != "protocol"}
    fmt["integrationLatency2"] = "$context.integration.latency"
    fmt["stageVars"] = "$context.stageVariables.color"
    records = make_records(writes=20, reads=10, throttle_after=15)
    write_run(tmp_path, records)
    put_access_logs(logs, GROUP, records, fmt)
    res = access_logs.run(ctx_for(tmp_path, logs, fmt=fmt))
    assert res.status == "pass", res.evidence
    assert res.figures["fields"] == len(fmt) and "stageVars" in str(res.figures["unchecked_fields"])
    assert "integrationLatency2" not in str(res.figures["unchecked_fields"])
    assert "stageVars ($context.stageVariables.color)" in res.summary


def test_an_added_field_is_required_and_judged(tmp_path: Path, logs: Any) -> None:
    fmt = {**FMT, "integrationLatency2": "$context.integration.latency"}
    records = make_records(writes=10, reads=0, throttle_after=100)
    write_run(tmp_path, records)
    shipped = [dict(r) for r in records]
    put_access_logs(logs, GROUP, shipped, FMT)  # the gateway still writes the old format
    res = access_logs.run(ctx_for(tmp_path, logs, fmt=fmt))
    assert res.status == "fail" and res.figures["field_missing"] == len(records)
    assert any(e.get("field") == "integrationLatency2" for e in res.evidence)
