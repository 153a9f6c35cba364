"""The rest of the stack's monthly bill: what reference_stack/terraform creates besides requests.

    stack_bill(prices, desc, usage) -> list of {"item", "monthly", "source", "basis", "prices"}

:mod:`reports.costs` prices the per-request lines (DynamoDB capacity, Lambda, API Gateway); this
module prices every other billable resource the Terraform creates, one line each, from the dated
price table (``reports/prices.json``) and the stack description:

- **OpenSearch**: ``instance_count`` x the hourly price of ``search.instance_type``, plus
  ``volume_size_gb`` of gp3 EBS per instance (opensearch.tf), billed whether anyone searches;
- **CloudWatch Logs ingestion**: one access-log record per request x the bytes per record
  (measured by the ``access_logs`` check of the run when it has one, else estimated from the
  format and said so) plus the Lambda platform lines (START/END/REPORT) per invocation;
- **CloudWatch Logs storage**: what the retention of each group holds at a steady state
  (ingestion per day x retention days), uncompressed: an upper bound, AWS bills compressed bytes;
- **DynamoDB storage and PITR**: the table's size after one month at the target rate (writes x
  mean item bytes), storage above the 25 GB free tier, PITR on all of it when the description
  enables it;
- **S3 export bucket** (export.tf): exports are made by the ``dynamodb_contents`` check only and
  expire after 7 days; priced per export (``exports_per_month``, 0 by default);
- **Route 53**: the hosted zone the domain record lives in (a data source: the zone is the
  user's, the alias query is free), listed so the total is what the stack needs to run.

Each line names the price lines (keys of ``prices["lines"]``) it rests on, so the bill can say
which of its lines rest on unconfirmed prices (:func:`reports.costs.monthly_costs`).

Left out, said once in :data:`EXCLUDED`: free tiers (except DynamoDB storage's 25 GB), data
transfer, ACM public certificates and IAM (no charge).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadcheck.core.description import StackDescription
from loadcheck.core.errors import ConfigError

GB = 1024.0**3
DAYS_PER_MONTH = 730.0 / 24.0
# The Lambda platform writes START, END and REPORT lines per invocation (about 90, 60 and 200
# bytes with the request id and figures): an estimate, the handlers' own lines come on top.
LAMBDA_PLATFORM_BYTES = 350.0
# The JSON of one access-log field when it was not measured: the key, quotes and a typical value.
ESTIMATED_FIELD_BYTES = 30.0
DYNAMODB_FREE_STORAGE_GB = 25.0
EXCLUDED = (
    "Not included: free tiers (except DynamoDB's first 25 GB of storage), data transfer out, "
    "ACM public certificates and IAM (no charge), taxes."
)


@dataclass(frozen=True)
class Usage:
    requests_per_s: float
    lambda_invocations_per_s: dict[str, float]
    writes_per_s: float
    item_bytes: float
    record_bytes: float  # bytes per access-log record
    record_bytes_source: str  # "measured ..." or "estimated ..."
    exports_per_month: float = 0.0


def record_bytes_of(results: dict[str, Any] | None, desc: StackDescription) -> tuple[float, str]:
    """Bytes per access-log record: the run's ``access_logs`` check figure, else an estimate."""
    for c in (results or {}).get("checks", []):
        value = (c.get("figures") or {}).get("record_bytes_mean")
        if c.get("name") == "access_logs" and value:
            return float(value), f"measured: mean of the run's access-log records, {float(value):g} B"
    est = ESTIMATED_FIELD_BYTES * len(desc.access_log.format)
    return est, (
        f"estimated: {len(desc.access_log.format)} fields x {ESTIMATED_FIELD_BYTES:g} B "
        "(run `loadcheck check RUN` to measure it)"
    )


def _line(item: str, monthly: float, source: str, basis: str, prices: list[str]) -> dict[str, Any]:
    return {"item": item, "monthly": monthly, "source": source, "basis": basis, "prices": prices}


def stack_bill(prices: dict[str, Any], desc: StackDescription, usage: Usage) -> list[dict[str, Any]]:
    """One line per billable resource besides the per-request ones (module docstring)."""
    hours, src = prices["hours"], prices.get("sources") or {}
    seconds = hours * 3600.0
    os_p, logs_p, ddb_p = prices["opensearch"], prices["cloudwatch_logs"], prices["dynamodb"]
    s = desc.search
    hourly = os_p["instance_hour"].get(s.instance_type)
    if not isinstance(hourly, (int, float)):
        raise ConfigError(
            f"no OpenSearch price for instance type {s.instance_type!r} in {prices['source_file']}",
            value=s.instance_type,
            hint=f"add regions.{prices['region']}.opensearch.instance_hour.{s.instance_type} from {src.get('opensearch')}",
        )
    lines = [
        _line(
            f"OpenSearch {s.instance_count} x {s.instance_type}",
            s.instance_count * hourly * hours,
            src.get("opensearch", ""),
            f"{s.instance_count} x {hourly:g}/h x {hours:g} h",
            [f"opensearch.instance_hour.{s.instance_type}"],
        ),
        _line(
            f"OpenSearch EBS gp3 {s.instance_count} x {s.volume_size_gb} GB",
            s.instance_count * s.volume_size_gb * os_p["ebs_gp3_gb_month"],
            src.get("opensearch", ""),
            f"{s.instance_count * s.volume_size_gb} GB x {os_p['ebs_gp3_gb_month']:g}/GB-month",
            ["opensearch.ebs_gp3_gb_month"],
        ),
    ]
    access_gb = usage.requests_per_s * seconds * usage.record_bytes / GB
    invocations = sum(usage.lambda_invocations_per_s.values())
    lambda_gb = invocations * seconds * LAMBDA_PLATFORM_BYTES / GB
    lines.append(
        _line(
            "CloudWatch Logs ingestion (access + Lambda logs)",
            (access_gb + lambda_gb) * logs_p["ingestion_per_gb"],
            src.get("cloudwatch_logs", ""),
            f"{access_gb:,.3f} GB access logs ({usage.record_bytes_source}) + {lambda_gb:,.3f} GB Lambda "
            f"platform lines (estimated {LAMBDA_PLATFORM_BYTES:g} B/invocation) x {logs_p['ingestion_per_gb']:g}/GB",
            ["cloudwatch_logs.ingestion_per_gb"],
        )
    )
    stored = access_gb / DAYS_PER_MONTH * desc.access_log.retention_days
    for key, fn in desc.functions.items():
        per_fn = usage.lambda_invocations_per_s.get(key, 0.0) * seconds * LAMBDA_PLATFORM_BYTES / GB
        stored += per_fn / DAYS_PER_MONTH * fn.log_retention_days
    lines.append(
        _line(
            "CloudWatch Logs storage (retention in the description)",
            stored * logs_p["storage_gb_month"],
            src.get("cloudwatch_logs", ""),
            f"{stored:,.3f} GB held at steady state (access {desc.access_log.retention_days} d, functions "
            + ", ".join(f"{k} {f.log_retention_days} d" for k, f in desc.functions.items())
            + f"), uncompressed: an upper bound, x {logs_p['storage_gb_month']:g}/GB-month",
            ["cloudwatch_logs.storage_gb_month"],
        )
    )
    table_gb = usage.writes_per_s * seconds * usage.item_bytes / GB
    lines.append(
        _line(
            "DynamoDB storage",
            max(0.0, table_gb - DYNAMODB_FREE_STORAGE_GB) * ddb_p["storage_gb_month"],
            src.get("dynamodb", ""),
            f"{table_gb:,.3f} GB after a month at the target rate ({usage.item_bytes:g} B items), "
            f"first {DYNAMODB_FREE_STORAGE_GB:g} GB free, x {ddb_p['storage_gb_month']:g}/GB-month",
            ["dynamodb.storage_gb_month"],
        )
    )
    if desc.table.point_in_time_recovery:
        lines.append(
            _line(
                "DynamoDB point-in-time recovery",
                table_gb * ddb_p["pitr_gb_month"],
                src.get("dynamodb_backup", ""),
                f"{table_gb:,.3f} GB x {ddb_p['pitr_gb_month']:g}/GB-month (PITR enabled in the description)",
                ["dynamodb.pitr_gb_month"],
            )
        )
    export_gb = usage.exports_per_month * table_gb
    lines.append(
        _line(
            "S3 export bucket (table exports)",
            export_gb * ddb_p["export_per_gb"] + export_gb * 7 / DAYS_PER_MONTH * prices["s3"]["standard_gb_month"],
            src.get("s3", ""),
            f"{usage.exports_per_month:g} export(s)/month of {table_gb:,.3f} GB x {ddb_p['export_per_gb']:g}/GB "
            f"(DynamoDB export) + 7 days in S3 Standard x {prices['s3']['standard_gb_month']:g}/GB-month",
            ["dynamodb.export_per_gb", "s3.standard_gb_month"],
        )
    )
    lines.append(
        _line(
            f"Route 53 hosted zone {desc.hosted_zone_name}",
            prices["route53"]["hosted_zone_month"],
            src.get("route53", ""),
            "one zone; the alias record's queries to API Gateway are free",
            ["route53.hosted_zone_month"],
        )
    )
    return lines
