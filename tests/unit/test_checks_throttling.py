"""throttling: a run throttled as capacity says passes; each way throttling can go wrong fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from checks import throttling
from checks.framework import CheckContext
from loadcheck.bench.synthetic_checks import (
    REGION,
    create_table,
    make_records,
    publish_metrics,
    put_access_logs,
    synthetic_target,
    throttled_writes,
    write_run,
)
from loadcheck.core.description import load_description
from loadcheck.core.rundir import read_run

FMT = load_description().access_log.format
GROUP = "/aws/apigateway/loadcheck-http-api"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def aws():
    with mock_aws():
        clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "cloudwatch", "logs")}
        create_table(clients["dynamodb"], rcu=1, wcu=1)
        yield clients


def check(
    tmp_path: Path,
    aws: dict[str, Any],
    records: list[dict[str, Any]],
    *,
    metrics: list[dict[str, Any]] | None = None,
    logs: bool = True,
    flush: bool = True,
    checked_after_s: float | None = None,
) -> Any:
    write_run(tmp_path, records)
    publish_metrics(aws["cloudwatch"], "EventLog", records if metrics is None else metrics)
    if logs:
        put_access_logs(aws["logs"], GROUP, records, FMT)
    ctx = CheckContext(
        run_dir=tmp_path,
        run=read_run(tmp_path),
        target=synthetic_target(),
        description=load_description(),
        clients=lambda s: aws[s],
        budget_s=4.0,
        clock=FakeClock(),
        flush=(lambda: None) if flush else None,
    )
    if checked_after_s is not None:  # AWS: the check runs this long after the run's last request
        ctx.delivery_s = 900.0
        ctx.clock.now = max(r["t_start_ms"] + r["latency_ms"] for r in records) / 1000.0 + checked_after_s  # type: ignore[attr-defined]
    return throttling.run(ctx)


def test_throttled_run_matching_the_model_passes(tmp_path: Path, aws: dict[str, Any]) -> None:
    res = check(tmp_path, aws, throttled_writes(seconds=30, per_second=20, start_level=100))
    assert res.status == "pass", (res.summary, res.evidence)
    f = res.figures
    assert f["capacity_exercised"] == 1 and f["client_throttled_writes"] > 400
    assert 4.0 < f["onset_s"] < 6.0 and abs(f["burst_used_before_onset_wcu"] - 100) < 3
    assert f["consumed_wcu_metric"] == f["expected_wcu"]


def test_light_run_passes_saying_capacity_was_not_approached(tmp_path: Path, aws: dict[str, Any]) -> None:
    res = check(tmp_path, aws, make_records(writes=20, reads=5))
    assert res.status == "pass" and res.figures["capacity_exercised"] == 0
    assert "never approached capacity" in res.summary


def test_500_instead_of_429_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = throttled_writes(seconds=20, per_second=20, start_level=50)
    metrics = [dict(r) for r in records]
    for r in records:
        if r["status"] == 429:
            r.update(status=500, retry_after=None)
    res = check(tmp_path, aws, records, metrics=metrics)
    assert res.status == "fail" and res.figures["throttle_as_5xx"] > 100
    assert any(e["kind"] == "throttle_as_5xx" and e["status"] == 500 for e in res.evidence)


def test_429_without_retry_after_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = throttled_writes(seconds=20, per_second=20, start_level=50)
    victim = next(r for r in records if r["status"] == 429)
    victim["retry_after"] = None
    res = check(tmp_path, aws, records)
    assert res.status == "fail" and res.figures["no_retry_after"] == 1
    assert res.evidence[0]["request_id"] == victim["request_id"]


def test_throttle_metrics_absent_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = throttled_writes(seconds=20, per_second=20, start_level=50)
    quiet = [dict(r, status=201) if r["status"] == 429 else r for r in records]  # metrics as if nothing throttled
    res = check(
        tmp_path,
        aws,
        records,
        metrics=[r for r in quiet if r["status"] != 201] + [r for r in records if r["status"] == 201],
    )
    assert res.status == "fail" and res.figures["throttle_metrics_absent"] >= 1
    assert res.figures["write_throttle_events"] == 0


def test_consumed_capacity_mismatch_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = make_records(writes=20, reads=0)
    res = check(tmp_path, aws, records, metrics=records[:15])  # 5 landed writes never charged
    assert res.status == "fail" and res.figures["consumed_mismatch"] == 1
    assert res.figures["consumed_wcu_metric"] == 15 and res.figures["expected_wcu"] == 20


def test_another_clients_writes_in_the_runs_minutes_are_named_not_failed(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = make_records(writes=20, reads=0)
    # a smoke or another run in the same minute: its writes are in the table's metrics and the
    # API's access log, not in this run's ledger
    others = make_records(run_id="smoke", start_ms=records[0]["t_start_ms"] + 100, writes=3, reads=0)
    put_access_logs(aws["logs"], GROUP, records + others, FMT)
    res = check(tmp_path, aws, records, metrics=records + others, logs=False)
    assert res.status == "pass", (res.summary, res.evidence)
    assert res.figures["other_clients_writes"] == 3 and res.figures["consumed_mismatch"] == 0
    assert "once 3 writes other clients sent in the run's minutes are counted" in res.summary
    (note,) = [e for e in res.evidence if e["kind"] == "note" and "another client" in e["detail"]]
    assert set(note["request_ids"]) == {r["request_id"] for r in others}


def test_a_charge_no_client_explains_still_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = make_records(writes=20, reads=0)
    phantom = make_records(run_id="phantom", start_ms=records[0]["t_start_ms"] + 100, writes=3, reads=0)
    res = check(tmp_path, aws, records, metrics=records + phantom)  # charged, but no request in the log
    assert res.status == "fail" and res.figures["consumed_mismatch"] == 1
    assert res.figures["other_clients_writes"] == 0


def test_over_admission_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = throttled_writes(seconds=30, per_second=20, start_level=300)
    for r in records:  # a governor without a bucket: everything accepted
        r.update(status=201, retry_after=None)
    res = check(tmp_path, aws, records)
    assert res.status == "fail" and res.figures["over_admission"] == 1
    assert "allows" in res.evidence[0]["detail"]


def test_early_throttling_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = throttled_writes(seconds=20, per_second=0.5, start_level=300)  # 0.5 WCU/s offered on a 1 WCU table
    for r in records[5:]:
        r.update(status=429, retry_after="1")
    res = check(tmp_path, aws, records)
    assert res.status == "fail" and res.figures["early_throttling"] == 1


def test_metrics_not_there_yet_on_aws_are_not_delivered_yet(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = make_records(writes=5, reads=0)
    res = check(tmp_path, aws, records, metrics=[], flush=False, checked_after_s=30)
    assert res.status == "error" and res.figures["not_delivered"] == 1
    assert res.reason == f"not delivered yet: re-run `loadcheck check {tmp_path}` later"
    assert "ConsumedWriteCapacityUnits 0 of 5" in res.summary


def test_metrics_still_absent_after_the_delivery_delay_fail_on_aws(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = make_records(writes=5, reads=0)
    res = check(tmp_path, aws, records, metrics=[], flush=False, checked_after_s=901)
    assert res.status == "fail" and res.figures["consumed_mismatch"] == 1


def test_metrics_never_arriving_is_fail_on_local(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = make_records(writes=5, reads=0)
    res = check(tmp_path, aws, records, metrics=[])
    assert res.status == "fail" and res.figures["consumed_mismatch"] == 1


def test_refusing_more_than_the_model_after_onset_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = throttled_writes(seconds=30, per_second=20, start_level=100)
    onset = next(i for i, r in enumerate(records) if r["status"] == 429)
    for r in records[onset:]:  # a bucket that never refills: everything after onset refused
        r.update(status=429, retry_after="1")
    res = check(tmp_path, aws, records)
    assert res.status == "fail" and res.figures["refusals_mismatch"] == 1
    assert res.figures["observed_accepted_after_onset"] == 0 and res.figures["predicted_accepted_after_onset"] >= 20


def test_read_consumption_out_of_range_fails(tmp_path: Path, aws: dict[str, Any]) -> None:
    records = make_records(writes=4, reads=30, per_second=0.25)  # spans two minutes and more
    res = check(tmp_path, aws, records, metrics=[r for r in records if r["route"] != "GET /events"])
    assert res.status == "fail" and res.figures["read_consumed_out_of_range"] == 1
    assert res.figures["reads_compared"] > 0


def test_on_demand_table_is_judged_without_the_capacity_model(tmp_path: Path, aws: dict[str, Any]) -> None:
    aws["dynamodb"].update_table(TableName="EventLog", BillingMode="PAY_PER_REQUEST")
    res = check(tmp_path, aws, make_records(writes=10, reads=0))
    assert res.status == "pass" and res.figures["billing_mode"] == "PAY_PER_REQUEST"
    assert "on-demand" in res.summary
