"""The table as DynamoDB's export to S3 shows it: what ``dynamodb_contents`` reads when it can.

An export reads a point-in-time-recovery snapshot, not the table, so it consumes none of the
table's capacity (docs/aws-behaviour.md §7.7): a check that reads 100,000 items back through
Query on a 1-RCU table spends hours of the capacity it is judging; an export spends none.

    export_plan(ctx, table) -> ExportPlan | str        (a plan, or why the export cannot be used)
    run_export(ctx, plan, budget) -> description       (requested at the run's end, polled to COMPLETED)
    export_items(open_object, manifest_key) -> items   (DynamoDB JSON, every data file of the manifest)

The export is usable when the target names an export bucket (Terraform output
``export_bucket``, the local stack's stack.json) and the table has point-in-time recovery.
It is requested as of the run's end (``ExportTime``: the last response + the clock tolerance);
AWS refuses an ``ExportTime`` later than the table's latest restorable time (a few minutes
behind now) with InvalidExportTimeException, so a check right after a run waits, within its
budget, until the export is accepted. Files are read as the manifest lists them
(``manifest-summary.json`` -> ``manifest-files.json`` -> ``data/*.json.gz``), streamed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from botocore.exceptions import ClientError

from checks.framework import Budget, BudgetExceeded, CheckContext, poll

EXPORT_PREFIX = "loadcheck-exports"
RETRY_EXPORT_TIME_S = 30.0  # between requests while ExportTime is still ahead of the restorable window


class ExportFailed(Exception):
    """The export could not be requested or did not complete: read the table instead."""


@dataclass(frozen=True)
class ExportPlan:
    table_arn: str
    bucket: str
    export_time: float  # epoch seconds
    prefix: str


def export_plan(ctx: CheckContext, table: str) -> ExportPlan | str:
    """A plan when the target has an export bucket and the table has PITR; otherwise why not."""
    bucket = ctx.target.export_bucket
    if not bucket:
        return "the target names no export bucket (Terraform output export_bucket)"
    ddb = ctx.client("dynamodb")
    try:
        backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
    except ClientError as exc:
        return f"could not read the table's backup settings: {exc}"
    status = (backups.get("PointInTimeRecoveryDescription") or {}).get("PointInTimeRecoveryStatus")
    if status != "ENABLED":
        return f"point-in-time recovery is {status or 'off'} on {table}"
    window = ctx.run_window()
    end_s = window.end_ms / 1000.0 + ctx.time_tolerance_s
    return ExportPlan(
        table_arn=str(arn),
        bucket=bucket,
        export_time=min(end_s, ctx.clock.time()),
        prefix=f"{EXPORT_PREFIX}/{ctx.run.get('run_id') or ctx.run_dir.name}",
    )


def run_export(ctx: CheckContext, plan: ExportPlan, budget: Budget, *, name: str) -> dict[str, Any]:
    """Request the export and wait for it; the COMPLETED ``ExportDescription``.

    Raises :class:`ExportFailed` (refused, or FAILED) and
    :class:`~checks.framework.BudgetExceeded` (still running when the budget ends)."""
    ddb = ctx.client("dynamodb")
    while True:
        try:
            started = ddb.export_table_to_point_in_time(
                TableArn=plan.table_arn,
                ExportTime=plan.export_time,
                S3Bucket=plan.bucket,
                S3Prefix=plan.prefix,
                ExportFormat="DYNAMODB_JSON",
                ExportType="FULL_EXPORT",
            )["ExportDescription"]
            break
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code != "InvalidExportTimeException" or budget.remaining <= 0:
                raise ExportFailed(f"{code or 'error'}: {exc}") from exc
            wait = min(RETRY_EXPORT_TIME_S, budget.remaining)
            ctx.say(f"{name}: the run's end is not restorable yet ({code}), asking again in {wait:.0f}s")
            budget.clock.sleep(wait)
    arn = started["ExportArn"]
    ctx.say(f"{name}: export {arn.rpartition('/')[2]} of the table as of the run's end to s3://{plan.bucket}")

    def describe() -> dict[str, Any]:
        return dict(ddb.describe_export(ExportArn=arn)["ExportDescription"])

    desc, done = poll(
        describe,
        lambda d: d.get("ExportStatus") != "IN_PROGRESS",
        budget=budget,
        initial_s=1.0,
        max_interval_s=15.0,
        on_wait=lambda d, w: ctx.say(f"{name}: export {d.get('ExportStatus')}, waiting {w:.0f}s"),
    )
    if not done:
        raise BudgetExceeded(f"export {arn} still {desc.get('ExportStatus')} when the budget ended")
    if desc.get("ExportStatus") != "COMPLETED":
        raise ExportFailed(
            f"export {arn} {desc.get('ExportStatus')}: {desc.get('FailureCode')} {desc.get('FailureMessage')}"
        )
    return desc


def s3_opener(s3: Any, bucket: str) -> Callable[[str], IO[bytes]]:
    """``open_object(key)`` for :func:`export_items`, reading from S3 (streamed)."""

    def open_object(key: str) -> IO[bytes]:
        body: IO[bytes] = s3.get_object(Bucket=bucket, Key=key)["Body"]
        return body

    return open_object


def export_files(open_object: Callable[[str], IO[bytes]], manifest_key: str) -> list[dict[str, Any]]:
    """The manifest's data files: ``{"dataFileS3Key", "itemCount", ...}`` each."""
    with open_object(manifest_key) as f:
        summary = json.loads(f.read())
    with open_object(summary["manifestFilesS3Key"]) as f:
        return [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]


def export_items(open_object: Callable[[str], IO[bytes]], files: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every item of the export's data files, as DynamoDB JSON (``{"attr": {"S": ...}}``)."""
    for entry in files:
        with open_object(entry["dataFileS3Key"]) as raw, gzip.GzipFile(fileobj=raw) as lines:
            for line in lines:
                if line.strip():
                    yield json.loads(line)["Item"]
