"""The aws service's export to S3 (reference_stack/local/aws/exports.py) through boto3, as AWS
answers it: refused without PITR or outside the recovery window, FAILED without the bucket, and
AWS's layout in the S3 the same endpoint serves; no capacity consumed."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_aws_service import Service, create_table, start_service, stop

pytestmark = pytest.mark.integration


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path, burst_start="full")  # manual clock: capacity levels hold still
    try:
        yield service
    finally:
        assert stop(service.proc) == 0


def _catch_up(aws: Service) -> None:
    """Move the service's manual clock past the present: PITR's window is in moto's real time."""
    now = aws.admin("GET", "/_loadcheck/clock")[1]["now"]
    aws.advance(max(0.0, time.time() + 2.0 - now))


def _table(aws: Service, *, pitr: bool) -> tuple[Any, Any, str]:
    ddb, s3 = aws.client("dynamodb"), aws.client("s3")
    create_table(ddb, "T", rcu=1, wcu=5)
    if pitr:
        ddb.update_continuous_backups(
            TableName="T", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    return ddb, s3, ddb.describe_table(TableName="T")["Table"]["TableArn"]


def test_export_needs_pitr_and_a_time_inside_the_window(aws: Service) -> None:
    ddb, _, arn = _table(aws, pitr=False)
    with pytest.raises(ClientError) as err:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="bkt")
    assert err.value.response["Error"]["Code"] == "PointInTimeRecoveryUnavailableException"
    ddb.update_continuous_backups(TableName="T", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
    _catch_up(aws)
    with pytest.raises(ClientError) as err:
        ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="bkt", ExportTime=time.time() + 3600)
    assert err.value.response["Error"]["Code"] == "InvalidExportTimeException"


def test_export_to_a_missing_bucket_fails(aws: Service) -> None:
    ddb, _, arn = _table(aws, pitr=True)
    _catch_up(aws)
    started = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="no-such-bucket")["ExportDescription"]
    assert started["ExportStatus"] == "IN_PROGRESS"
    done = ddb.describe_export(ExportArn=started["ExportArn"])["ExportDescription"]
    assert done["ExportStatus"] == "FAILED" and done["FailureCode"] == "S3NoSuchBucket"


def test_export_writes_aws_layout_and_consumes_no_capacity(aws: Service) -> None:
    ddb, s3, arn = _table(aws, pitr=True)
    s3.create_bucket(Bucket="bkt")
    for i in range(3):
        ddb.put_item(TableName="T", Item={"date": {"S": "d"}, "time": {"S": str(i)}, "n": {"N": "1.5"}})
    _catch_up(aws)
    before = aws.admin("GET", "/_loadcheck/capacity")[1]
    started = ddb.export_table_to_point_in_time(TableArn=arn, S3Bucket="bkt", S3Prefix="p/r1")["ExportDescription"]
    export_id = started["ExportArn"].rpartition("/export/")[2]
    assert started["ExportArn"] == f"{arn}/export/{export_id}"
    desc = ddb.describe_export(ExportArn=started["ExportArn"])["ExportDescription"]
    assert desc["ExportStatus"] == "COMPLETED" and desc["ItemCount"] == 3
    root = f"p/r1/AWSDynamoDB/{export_id}"
    assert desc["ExportManifest"] == f"{root}/manifest-summary.json"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="bkt")["Contents"]}
    assert {f"{root}/_started", f"{root}/manifest-files.json", f"{root}/manifest-files.checksum"} <= keys
    summary = json.loads(s3.get_object(Bucket="bkt", Key=desc["ExportManifest"])["Body"].read())
    assert summary["exportArn"] == started["ExportArn"] and summary["outputFormat"] == "DYNAMODB_JSON"
    entry = json.loads(s3.get_object(Bucket="bkt", Key=summary["manifestFilesS3Key"])["Body"].read())
    data = gzip.decompress(s3.get_object(Bucket="bkt", Key=entry["dataFileS3Key"])["Body"].read())
    items = [json.loads(line)["Item"] for line in data.splitlines()]
    assert sorted(i["time"]["S"] for i in items) == ["0", "1", "2"] and items[0]["n"] == {"N": "1.5"}
    assert entry["itemCount"] == 3 and entry["dataFileS3Key"].startswith(f"{root}/data/")
    after = aws.admin("GET", "/_loadcheck/capacity")[1]
    assert after == before  # the export read no capacity (the manual clock did not move)
    assert [s["ExportArn"] for s in ddb.list_exports(TableArn=arn)["ExportSummaries"]] == [started["ExportArn"]]
