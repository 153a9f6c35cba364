"""DynamoDB's export to S3 (ExportTableToPointInTime, DescribeExport, ListExports), served by the governor.

What AWS does (docs/aws-behaviour.md §7.7): a table with point-in-time recovery (PITR) can be
exported to an S3 bucket as of any time inside its recovery window, without consuming any of the
table's capacity. The export is asynchronous (``IN_PROGRESS`` then ``COMPLETED``/``FAILED``) and
writes, under ``<S3Prefix>/AWSDynamoDB/<ExportId>/``, an empty ``_started`` object, the data as
gzip-compressed DynamoDB JSON lines (``{"Item": {...}}`` a line) under ``data/``,
``manifest-files.json`` (one JSON object per data file: ``itemCount``, ``md5Checksum``, ``etag``,
``dataFileS3Key``) and ``manifest-summary.json`` (``exportArn``, ``exportTime``, ``itemCount``,
``manifestFilesS3Key``, ...), each manifest with a ``.checksum`` object. ``DescribeExport``
names the summary as ``ExportManifest``.

moto 5 has an ExportTableToPointInTime too, but it writes neither manifest nor ``_started``,
builds an ARN with the table's ARN inside it, and copies the table in a thread without the lock
the governor's writes hold. So the governor answers the three operations itself, writing into
moto's S3 in-process, under the table's lock (a consistent copy) and the other-services lock
(moto's S3 is not thread-safe either).

Departures (docs/fidelity.md, section aws):

- the copy is the table as it is when the request arrives, not as it was at ``ExportTime`` (the
  time is validated against the recovery window and recorded, but no history is kept): writes
  after ``ExportTime`` and before the request are in the export;
- the export completes before the request is answered (the answer still says ``IN_PROGRESS``;
  the first ``DescribeExport`` says ``COMPLETED``): AWS takes minutes;
- one data file for the whole table (AWS writes at least one per partition);
- only ``FULL_EXPORT`` in ``DYNAMODB_JSON``; incremental exports and ION answer ValidationException;
- S3 bucket owner, KMS keys and the caller's S3 permissions are not checked.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import gzip
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.s3.models import s3_backends

from reference_stack.local.aws.backend import MotoTables
from reference_stack.local.aws.buckets import Clock
from reference_stack.local.aws.protocol import ERROR_PREFIX, Reply, json_reply

EXPORT_OPS = frozenset({"ExportTableToPointInTime", "DescribeExport", "ListExports"})
Locker = Callable[[Iterable[str]], contextlib.AbstractContextManager[None]]


def _error(kind: str, message: str) -> Reply:
    return json_reply(400, {"__type": ERROR_PREFIX + kind, "message": message})


def _iso(epoch_s: float) -> str:
    return _dt.datetime.fromtimestamp(epoch_s, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Exports:
    """The exports this process made, by ARN; ``handle`` answers the three operations."""

    def __init__(
        self, *, account_id: str, tables: MotoTables, clock: Clock, table_lock: Locker, s3_lock: threading.Lock
    ) -> None:
        self.account_id = account_id
        self.tables = tables
        self.clock = clock
        self.table_lock = table_lock
        self.s3_lock = s3_lock
        self._exports: dict[str, dict[str, Any]] = {}
        self._guard = threading.Lock()

    def handle(self, op: str, request: dict[str, Any], region: str) -> Reply:
        if op == "ExportTableToPointInTime":
            return self.export(request, region)
        if op == "DescribeExport":
            with self._guard:
                found = self._exports.get(str(request.get("ExportArn")))
            if found is None:
                return _error("ExportNotFoundException", f"Export not found: {request.get('ExportArn')}")
            return json_reply(200, {"ExportDescription": found})
        arn = request.get("TableArn")
        with self._guard:
            summaries = [
                {"ExportArn": d["ExportArn"], "ExportStatus": d["ExportStatus"], "ExportType": d["ExportType"]}
                for d in self._exports.values()
                if arn is None or d["TableArn"] == arn
            ]
        return json_reply(200, {"ExportSummaries": summaries})

    def export(self, request: dict[str, Any], region: str) -> Reply:
        table_arn, bucket = request.get("TableArn"), request.get("S3Bucket")
        if not isinstance(table_arn, str) or not isinstance(bucket, str) or not bucket:
            return _error("ValidationException", "TableArn and S3Bucket are required")
        table = self.tables.table(region, table_arn.rpartition(":table/")[2])
        if table is None or table.table_arn != table_arn:
            return _error("TableNotFoundException", f"Table not found: {table_arn}")
        if request.get("ExportType", "FULL_EXPORT") != "FULL_EXPORT" or request.get(
            "ExportFormat", "DYNAMODB_JSON"
        ) not in ("DYNAMODB_JSON",):
            return _error("ValidationException", "the local stack exports FULL_EXPORT in DYNAMODB_JSON only")
        pitr = table.continuous_backups.get("PointInTimeRecoveryDescription") or {}
        if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
            return _error(
                "PointInTimeRecoveryUnavailableException",
                f"Point in time recovery is not enabled for table '{table.name}'",
            )
        now = self.clock.time()
        export_time = float(request.get("ExportTime") or now)
        earliest = float(pitr.get("EarliestRestorableDateTime") or 0.0)
        if export_time > now + 1.0 or export_time < earliest - 1.0:
            return _error(
                "InvalidExportTimeException",
                f"ExportTime {_iso(export_time)} is outside the point in time recovery window "
                f"({_iso(earliest)} .. {_iso(now)})",
            )
        export_id = f"{int(now * 1000):014d}-{secrets.token_hex(4)}"
        prefix = str(request.get("S3Prefix") or "").strip("/")
        root = f"{prefix}/AWSDynamoDB/{export_id}" if prefix else f"AWSDynamoDB/{export_id}"
        description: dict[str, Any] = {
            "ExportArn": f"{table.table_arn}/export/{export_id}",
            "StartTime": now,
            "TableArn": table.table_arn,
            "TableId": getattr(table, "table_id", None) or table.name,
            "ExportTime": export_time,
            "S3Bucket": bucket,
            "S3BucketOwner": request.get("S3BucketOwner") or self.account_id,
            "S3Prefix": prefix,
            "S3SseAlgorithm": request.get("S3SseAlgorithm") or "AES256",
            "ExportFormat": "DYNAMODB_JSON",
            "ExportType": "FULL_EXPORT",
        }
        with self.table_lock([table.name]):
            lines = [
                json.dumps(item.to_json(root_attr_name="Item"), separators=(",", ":")) for item in table.all_items()
            ]
        with self.s3_lock:
            done = self._write(description, root, lines)
        with self._guard:
            self._exports[description["ExportArn"]] = done
        started = {k: v for k, v in description.items()}
        started["ExportStatus"] = "IN_PROGRESS"
        return json_reply(200, {"ExportDescription": started})

    def _write(self, description: dict[str, Any], root: str, lines: list[str]) -> dict[str, Any]:
        """Write the export's objects into moto's S3; the finished description (COMPLETED or FAILED)."""
        done = dict(description)
        bucket = description["S3Bucket"]
        backend = s3_backends[self.account_id]["aws"]
        if bucket not in backend.buckets:
            done.update(
                ExportStatus="FAILED",
                FailureCode="S3NoSuchBucket",
                FailureMessage="The specified bucket does not exist",
                EndTime=self.clock.time(),
            )
            return done
        raw = ("\n".join(lines) + "\n").encode() if lines else b""
        data = gzip.compress(raw)
        data_key = f"{root}/data/{secrets.token_hex(13)}.json.gz"
        files_key = f"{root}/manifest-files.json"
        summary_key = f"{root}/manifest-summary.json"
        entry = {
            "itemCount": len(lines),
            "md5Checksum": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324 - AWS's checksum
            "etag": hashlib.md5(data).hexdigest(),  # noqa: S324 - S3's ETag of a single-part object
            "dataFileS3Key": data_key,
        }
        files = (json.dumps(entry) + "\n").encode()
        end = self.clock.time()
        summary = {
            "version": "2020-06-30",
            "exportArn": description["ExportArn"],
            "startTime": _iso(description["StartTime"]),
            "endTime": _iso(end),
            "tableArn": description["TableArn"],
            "tableId": description["TableId"],
            "exportTime": _iso(description["ExportTime"]),
            "s3Bucket": bucket,
            "s3Prefix": description["S3Prefix"] or None,
            "s3SseAlgorithm": description["S3SseAlgorithm"],
            "s3SseKmsKeyId": None,
            "manifestFilesS3Key": files_key,
            "billedSizeBytes": len(raw),
            "itemCount": len(lines),
            "outputFormat": "DYNAMODB_JSON",
            "exportType": "FULL_EXPORT",
        }
        summary_bytes = json.dumps(summary).encode()
        backend.put_object(bucket_name=bucket, key_name=f"{root}/_started", value=b"")
        backend.put_object(bucket_name=bucket, key_name=data_key, value=data)
        for key, body in ((files_key, files), (summary_key, summary_bytes)):
            backend.put_object(bucket_name=bucket, key_name=key, value=body)
            md5 = hashlib.md5(body).hexdigest().encode()  # noqa: S324 - AWS's checksum object
            backend.put_object(bucket_name=bucket, key_name=key.removesuffix(".json") + ".checksum", value=md5)
        done.update(
            ExportStatus="COMPLETED",
            EndTime=end,
            ExportManifest=summary_key,
            ItemCount=len(lines),
            BilledSizeBytes=len(raw),
        )
        return done
