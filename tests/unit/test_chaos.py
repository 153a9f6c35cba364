"""Outages (issue 15 items 1, 4, 5): the --chaos spec, which requests an outage covers, the verdict
when the table died, attribution that never hides a real loss, the admin token and the disk reserve."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from checks import access_logs, dynamodb_contents
from checks.framework import CheckContext
from loadcheck.bench.synthetic_checks import (
    REGION,
    create_table,
    make_records,
    put_access_logs,
    store_acknowledged,
    synthetic_target,
    write_run,
)
from loadcheck.commands.run_steps import disk_reserve_bytes, disk_short
from loadcheck.core.chaos import ChaosAction, Outage, covering, parse_chaos, read_outages, record_outage
from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError
from loadcheck.core.rundir import RunRecord, read_run, table_lost, verdict
from loadcheck.core.rundir import write_run as write_run_record
from loadcheck.core.state import make_state_dir, read_admin_token, write_admin_token
from reference_stack.local.common.admin_token import admin_refusal

FMT = load_description().access_log.format
GROUP = synthetic_target().access_log_group


def test_chaos_spec_parses_and_refuses_with_the_fix() -> None:
    assert parse_chaos("kill:gateway@10s") == ChaosAction("kill", "gateway", 10.0)
    assert str(parse_chaos("kill:lambda-env@1m30s")) == "kill:lambda-env@90s"
    for bad, words in [
        ("kill:gateway", "is not a chaos action"),
        ("stop:gateway@1s", "action 'stop' is unknown"),
        ("kill:dynamo@1s", "target 'dynamo' is unknown"),
        ("kill:aws@soon", "is not a duration"),
    ]:
        with pytest.raises(ConfigError) as err:
            parse_chaos(bad)
        assert words in str(err.value) and "fix:" in str(err.value)


def test_an_outage_covers_requests_on_the_wire_during_it_and_what_the_gateway_buffered() -> None:
    gw = Outage(service="gateway", pid=1, down_at=100.0, detected_at=100.25, up_at=101.0)
    on_wire = {"t_start_ms": 99_900.0, "latency_ms": 200.0}
    buffered = {"t_start_ms": 98_500.0, "latency_ms": 5.0}  # answered 1.5 s before: record still in its buffer
    long_before = {"t_start_ms": 95_000.0, "latency_ms": 5.0}
    after = {"t_start_ms": 101_500.0, "latency_ms": 5.0}
    assert covering(on_wire, [gw]) is gw and covering(buffered, [gw]) is gw
    assert covering(long_before, [gw]) is None and covering(after, [gw]) is None
    assert covering(on_wire, [gw], services=("lambda",)) is None
    search = Outage(service="search", pid=2, down_at=100.0, detected_at=100.25, up_at=101.0)
    assert covering(buffered, [search]) is None  # search buffers nothing
    unfinished = Outage(service="lambda", pid=3, down_at=100.0, detected_at=100.2)
    assert covering(after, [unfinished]) is unfinished


def test_outages_round_trip_through_the_state_dir_and_run_json(tmp_path: Path) -> None:
    o = Outage(service="gateway", pid=7, down_at=1_700_000_000.0, detected_at=1_700_000_000.2, exit_status=-9)
    record_outage(tmp_path, o)
    o.up_at = 1_700_000_000.6
    record_outage(tmp_path, o)  # the same death, now over: replaced, not added
    (back,) = read_outages(tmp_path)
    assert back == o and back.restart_s == 0.4
    run = o.to_run()
    assert run["down_at"].startswith("2023-11-14T22:13:20") and run["restart_s"] == 0.4
    assert Outage.from_dict(json.loads(json.dumps(run))).up_at == pytest.approx(o.up_at, abs=1e-3)


def test_the_aws_endpoints_death_is_the_verdict_whatever_else_happened() -> None:
    dead = {"service": "aws", "fatal": True, "down_at": "2030-01-01T00:00:03.000+00:00"}
    restarted = {"service": "gateway", "fatal": False, "down_at": "2030-01-01T00:00:01.000+00:00"}
    assert table_lost([restarted]) is None
    v = verdict(None, run_status="interrupted", outages=[restarted, dead])
    assert v.value == "error" and v.reasons == (table_lost([dead]),)
    assert "the table was lost with the aws endpoint at 2030-01-01T00:00:03.000+00:00" in v.reasons[0]
    assert "reconciliation impossible" in v.reasons[0]
    assert verdict(None, outages=[restarted]).value == "pass"


def with_outage(run_dir: Path, records: list[dict[str, Any]], service: str, index: int) -> dict[str, Any]:
    """Record an outage of ``service`` around ``records[index]`` in run.json."""
    rec = records[index]
    t = (rec["t_start_ms"] + rec["latency_ms"] / 2) / 1000.0
    outage = Outage(service=service, pid=9, down_at=t, detected_at=t, up_at=t + 0.05)
    run = RunRecord.from_dict(read_run(run_dir))
    run.outages = [outage.to_run()]
    write_run_record(run_dir, run)
    return rec


def ctx(run_dir: Path, client: Any) -> CheckContext:
    return CheckContext(
        run_dir=run_dir,
        run=read_run(run_dir),
        target=synthetic_target(),
        description=load_description(),
        clients=lambda s: client,
        budget_s=2.0,
    )


def test_an_acknowledged_write_lost_inside_an_outage_is_still_lost(tmp_path: Path) -> None:
    """Seeded fault: attribution must never excuse an acknowledged write the table lacks."""
    records = make_records(writes=10, reads=0)
    write_run(tmp_path, records)
    victim = with_outage(tmp_path, records, "gateway", 4)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        store_acknowledged(client, [r for r in records if r is not victim])
        res = dynamodb_contents.run(ctx(tmp_path, client))
    assert res.status == "fail" and res.figures["lost"] == 1


def test_a_record_missing_inside_a_gateway_outage_is_the_outages_and_outside_it_is_missing(tmp_path: Path) -> None:
    records = make_records(writes=10, reads=2)
    write_run(tmp_path, records)
    inside = with_outage(tmp_path, records, "gateway", 4)
    far = records[-1]  # seeded fault: a record lost far from the outage is still missing
    with mock_aws():
        logs = boto3.client("logs", region_name=REGION)
        put_access_logs(logs, GROUP, [r for r in records if r is not inside], FMT)
        res = access_logs.run(ctx(tmp_path, logs))
        assert res.status == "pass" and res.figures["lost_with_outage"] == 1, res.evidence
    with mock_aws():
        logs = boto3.client("logs", region_name=REGION)
        put_access_logs(logs, GROUP, [r for r in records if r is not inside and r is not far], FMT)
        res = access_logs.run(ctx(tmp_path, logs))
    assert res.status == "fail" and res.figures["missing"] == 1 and res.figures["lost_with_outage"] == 1


def test_the_admin_token_check() -> None:
    assert admin_refusal(None, None) is None  # a service started without a token (test harnesses)
    assert admin_refusal("s3cret", "s3cret") is None
    for sent in (None, "", "s3cre", "s3cret2"):
        refusal = admin_refusal("s3cret", sent)
        assert refusal is not None and refusal[0] == 403
        assert "s3cret" not in json.dumps(refusal[1])


def test_the_state_dir_is_0700_even_when_it_existed_and_the_token_file_0600(tmp_path: Path) -> None:
    sd = tmp_path / "state"
    sd.mkdir(mode=0o755)
    make_state_dir(sd)
    assert stat.S_IMODE(sd.stat().st_mode) == 0o700
    token = write_admin_token(sd)
    assert stat.S_IMODE((sd / "admin-token").stat().st_mode) == 0o600
    assert read_admin_token(sd) == token and len(token) >= 40
    assert write_admin_token(sd) != token  # a new one per stack


def test_the_disk_reserve(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LOADCHECK_DISK_RESERVE_MB", raising=False)
    assert disk_reserve_bytes() == 32_000_000
    monkeypatch.setenv("LOADCHECK_DISK_RESERVE_MB", "lots")
    with pytest.raises(ConfigError, match="LOADCHECK_DISK_RESERVE_MB"):
        disk_reserve_bytes()
    assert disk_short(tmp_path, 0) is None
    why = disk_short(tmp_path, 1 << 62)
    assert why is not None and why.startswith("disk full:") and str(tmp_path) in why
