"""dynamodb_contents' export path: when it is used, what it reads, and the fall back to Query.

The export itself (request, manifest, data files in S3) runs against the local aws service in
tests/integration/test_checks_faults.py; here: the plan's conditions and the reading of files
laid out as DynamoDB writes them (the same generator ``loadcheck bench checks`` uses).
"""

from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path
from typing import IO, Any

import boto3
import pytest
from moto import mock_aws

from checks import dynamodb_contents, table_export
from checks.framework import CheckContext
from loadcheck.bench.export_reconcile import write_run_and_export
from loadcheck.bench.synthetic_checks import (
    REGION,
    create_table,
    make_records,
    store_acknowledged,
    synthetic_target,
    write_run,
)
from loadcheck.core.description import load_description
from loadcheck.core.rundir import read_run


class Clock:
    def __init__(self) -> None:
        self.t = 2_000_000_000.0

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return self.t

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def ddb() -> Any:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        yield client


def ctx_for(run_dir: Path, client: Any, *, bucket: str | None) -> CheckContext:
    return CheckContext(
        run_dir=run_dir,
        run=read_run(run_dir),
        target=dataclasses.replace(synthetic_target(), export_bucket=bucket),
        description=load_description(),
        clients=lambda s: client,
        budget_s=5.0,
        clock=Clock(),
    )


def test_no_bucket_reads_by_query_and_says_why(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=5, reads=0)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    res = dynamodb_contents.run(ctx_for(tmp_path, ddb, bucket=None))
    assert res.status == "pass" and res.figures["source"] == "query" and res.figures["rcu_consumed_by_check"] > 0
    assert any("no export bucket" in e.get("detail", "") for e in res.evidence)


def test_table_without_pitr_reads_by_query_and_says_why(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=5, reads=0)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    ctx = ctx_for(tmp_path, ddb, bucket="loadcheck-exports-123456789012")
    assert table_export.export_plan(ctx, "EventLog") == "point-in-time recovery is DISABLED on EventLog"
    res = dynamodb_contents.run(ctx)
    assert res.status == "pass" and res.figures["source"] == "query"
    assert any("point-in-time recovery is DISABLED" in e.get("detail", "") for e in res.evidence)


def test_plan_asks_for_the_run_end(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=5, reads=0)
    write_run(tmp_path, records)
    ddb.update_continuous_backups(
        TableName="EventLog", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    plan = table_export.export_plan(ctx_for(tmp_path, ddb, bucket="bkt"), "EventLog")
    assert isinstance(plan, table_export.ExportPlan)
    end_s = max(r["t_start_ms"] + r["latency_ms"] for r in records) / 1000.0
    assert plan.export_time == pytest.approx(end_s + 2.0) and plan.bucket == "bkt"
    assert plan.table_arn.endswith(":table/EventLog") and plan.prefix == "loadcheck-exports/r1"


def _opener(root: Path) -> Any:
    def open_object(key: str) -> IO[bytes]:
        return (root / key).open("rb")

    return open_object


def _reconcile_export(run_dir: Path, bucket: Path, manifest: str) -> Any:
    ctx = ctx_for(run_dir, None, bucket="b")
    writes = dynamodb_contents.collect_writes(ctx, "date")
    files = table_export.export_files(_opener(bucket), manifest)
    seen = dynamodb_contents.TableRead(source="export", keep_keys=False, pages=len(files))
    items = table_export.export_items(_opener(bucket), files)
    dynamodb_contents.read_export(items, "date", "time", writes.partitions, expected=writes.expected(), out=seen)
    return dynamodb_contents.reconcile(writes, seen, table="EventLog", budget=ctx.budget())


def test_export_files_reconcile_clean(tmp_path: Path) -> None:
    manifest = write_run_and_export(250, tmp_path / "run", tmp_path / "bucket")
    res = _reconcile_export(tmp_path / "run", tmp_path / "bucket", manifest)
    assert res.status == "pass" and res.figures["found"] == 250 and res.figures["rcu_consumed_by_check"] == 0
    assert res.figures["source"] == "export"


def test_export_missing_an_item_or_holding_one_more_fails(tmp_path: Path) -> None:
    manifest = write_run_and_export(250, tmp_path / "run", tmp_path / "bucket")
    data = next((tmp_path / "bucket").rglob("*.json.gz"))
    lines = gzip.decompress(data.read_bytes()).splitlines(keepends=True)
    phantom = lines[0].replace(b'"00:00:00.000"', b'"00:00:00.000#phantom"')
    data.write_bytes(gzip.compress(b"".join(lines[1:] + [phantom])))
    res = _reconcile_export(tmp_path / "run", tmp_path / "bucket", manifest)
    assert res.status == "fail" and res.figures["lost"] == 1 and res.figures["phantom"] == 1


def test_items_of_other_partitions_are_left_out(tmp_path: Path) -> None:
    out = dynamodb_contents.TableRead()
    items = iter(
        [
            {"date": {"S": "2031-01-01"}, "time": {"S": "a"}},
            {"date": {"S": "1999-01-01"}, "time": {"S": "b"}},
        ]
    )
    dynamodb_contents.read_export(items, "date", "time", {"2031-01-01"}, expected={}, out=out)
    assert list(out.items) == ["2031-01-01/a"]
