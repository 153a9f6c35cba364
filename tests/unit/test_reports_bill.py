"""The whole bill (every billable resource, dated prices, sources) and every limit, planned."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from loadcheck.bench.synthetic_reports import write_run
from loadcheck.cli import cli
from loadcheck.core.description import ThrottleSpec, load_description
from loadcheck.core.errors import ConfigError
from reports.bill import EXCLUDED, LAMBDA_PLATFORM_BYTES, Usage, record_bytes_of, stack_bill
from reports.capacity import Needs, Profile, analyse_steps, needs
from reports.costs import load_prices
from reports.limits import plan_limits
from reports.plan import build_plan

GB = 1024.0**3
SECONDS = 730 * 3600.0


def _usage(**kw: object) -> Usage:
    base: dict[str, object] = {
        "requests_per_s": 10.0,
        "lambda_invocations_per_s": {"events": 10.0},
        "writes_per_s": 8.0,
        "item_bytes": 100.0,
        "record_bytes": 600.0,
        "record_bytes_source": "measured",
    }
    base.update(kw)
    return Usage(**base)  # type: ignore[arg-type]


def test_default_stack_bill_lists_every_resource_with_its_source() -> None:
    desc = load_description()
    lines = {line["item"].split(" (")[0]: line for line in stack_bill(load_prices(None, "us-east-1"), desc, _usage())}
    for item, url in [
        ("OpenSearch 1 x t3.small.search", "opensearch-service/pricing"),
        ("OpenSearch EBS gp3 1 x 10 GB", "opensearch-service/pricing"),
        ("CloudWatch Logs ingestion", "cloudwatch/pricing"),
        ("CloudWatch Logs storage", "cloudwatch/pricing"),
        ("DynamoDB point-in-time recovery", "dynamodb/pricing"),
        ("S3 export bucket", "s3/pricing"),
        ("Route 53 hosted zone loadcheck.test", "route53/pricing"),
    ]:
        assert item in lines, sorted(lines)
        assert lines[item]["source"].startswith("https://aws.amazon.com/") and url in lines[item]["source"]
    # hand-worked: t3.small.search at 0.036/h for 730 h; 10 GB gp3 at 0.122/GB-month
    assert lines["OpenSearch 1 x t3.small.search"]["monthly"] == pytest.approx(0.036 * 730)
    assert lines["OpenSearch EBS gp3 1 x 10 GB"]["monthly"] == pytest.approx(1.22)
    access_gb = 10 * SECONDS * 600 / GB
    lambda_gb = 10 * SECONDS * LAMBDA_PLATFORM_BYTES / GB
    assert lines["CloudWatch Logs ingestion"]["monthly"] == pytest.approx((access_gb + lambda_gb) * 0.50)
    # 14 days of retention each: 14 / (730 / 24) of a month's ingestion is held
    held = (access_gb + lambda_gb) * 14 / (730 / 24)
    assert lines["CloudWatch Logs storage"]["monthly"] == pytest.approx(held * 0.03)
    table_gb = 8 * SECONDS * 100 / GB
    assert lines["DynamoDB point-in-time recovery"]["monthly"] == pytest.approx(table_gb * 0.20)
    assert lines["Route 53 hosted zone loadcheck.test"]["monthly"] == 0.50
    assert "free tier" in EXCLUDED and "data transfer" in EXCLUDED


def test_bill_follows_the_description() -> None:
    desc = load_description()
    bigger = dataclasses.replace(
        desc,
        search=dataclasses.replace(desc.search, instance_type="m6g.large.search", instance_count=2, volume_size_gb=50),
        table=dataclasses.replace(desc.table, point_in_time_recovery=False),
    )
    lines = {line["item"]: line for line in stack_bill(load_prices(None, "us-east-1"), bigger, _usage())}
    assert lines["OpenSearch 2 x m6g.large.search"]["monthly"] == pytest.approx(2 * 0.128 * 730)
    assert lines["OpenSearch EBS gp3 2 x 50 GB"]["monthly"] == pytest.approx(100 * 0.122)
    assert not any("point-in-time" in item for item in lines)
    unknown = dataclasses.replace(desc, search=dataclasses.replace(desc.search, instance_type="x9.huge.search"))
    with pytest.raises(ConfigError, match="x9.huge.search"):
        stack_bill(load_prices(None, "us-east-1"), unknown, _usage())


def test_record_bytes_measured_by_the_access_logs_check_else_estimated() -> None:
    desc = load_description()
    results = {"checks": [{"name": "access_logs", "figures": {"record_bytes_mean": 612.5}}]}
    assert record_bytes_of(results, desc) == (612.5, "measured: mean of the run's access-log records, 612.5 B")
    value, how = record_bytes_of(None, desc)
    assert value == 30 * len(desc.access_log.format) and how.startswith("estimated") and "loadcheck check" in how


def test_plan_total_is_the_whole_bill(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", steps=[0.5, 2], step_duration_s=10, mix={"writes": 1}, burst_s=0, checks=None)
    plan = build_plan(
        run_dir=run, knees=analyse_steps(run, provisioned_wcu=1.0), target_rate=2, mix={"writes": 1}, region="us-east-1"
    )
    cost = plan["recommendation"]["cost"]
    rows = cost["rows"]
    assert rows[-1]["item"] == "total per month"
    assert rows[-1]["provisioned"] == pytest.approx(sum(r["provisioned"] for r in rows[:-1]))
    assert rows[-1]["provisioned"] > 0.036 * 730  # the search domain alone costs that
    assert all(r["source"].startswith("https://") for r in rows[:-1])
    assert cost["excluded"] == EXCLUDED
    json.dumps(plan)  # capacity.json stays JSON


def _needs(target_rate: float, mix: dict[str, int]) -> Needs:
    profile = Profile(
        write_item_bytes=100.0,
        write_wcu=1.0,
        read_limit=25,
        scan_share=0.0,
        dates_written=1,
        source="test",
        kind_routes={"writes": {"POST /events": 1.0}, "reads": {"GET /events": 1.0}, "search": {"GET /search": 1.0}},
        write_routes=("POST /events",),
        read_routes=("GET /events",),
    )
    return needs(profile, target_rate=target_rate, mix=mix)


def test_limits_hand_worked() -> None:
    desc = load_description()
    events = dataclasses.replace(desc.functions["events"], reserved_concurrency=20)
    stack = dataclasses.replace(
        desc,
        functions={**desc.functions, "events": events},
        route_throttle={"GET /search": ThrottleSpec(rate_limit=10, burst_limit=5)},
    )
    # 180 req/s: 160 writes/s (POST /events) + 20 searches/s (GET /search)
    n = _needs(180, {"writes": 8, "search": 1})
    rows = {r["limit"]: r for r in plan_limits(stack, n, {"POST /events": 0.150, "GET /search": 0.050})}
    ev = rows["Lambda events: reserved concurrency"]
    # 160/s x 150 ms = 24 concurrent > 20 reserved; the fix keeps 24 under 80 %: ceil(24 / 0.8) = 30
    assert ev["need"] == pytest.approx(24.0) and ev["verdict"] == "exceeded"
    assert ev["fix"] == "functions.events.reserved_concurrency = 30" and "p95" in ev["basis"]
    search = rows["Lambda search: account unreserved pool (shared)"]
    # 20/s x 50 ms = 1 of the pool 1000 - 20 reserved
    assert search["need"] == pytest.approx(1.0) and search["have"] == 980 and search["verdict"] == "fits"
    assert search["fix"] == "none needed"
    stage = rows["API stage throttle rate"]  # 180 of 200: above 80 %
    assert stage["verdict"] == "at risk" and stage["fix"] == "throttle.rate_limit = 225"
    route = rows["API route throttle GET /search"]  # 20/s against 10
    assert route["verdict"] == "exceeded" and route["fix"].endswith("rate_limit = 25")
    key = rows["DynamoDB per-key writes (one `date` per day)"]  # 160 WCU/s of 1000
    assert key["verdict"] == "fits"
    hot = {r["limit"]: r for r in plan_limits(stack, _needs(1300, {"writes": 1}), {})}
    assert hot["DynamoDB per-key writes (one `date` per day)"]["verdict"] == "exceeded"
    assert "date#N over N >= 2 keys" in hot["DynamoDB per-key writes (one `date` per day)"]["fix"]


def test_limits_of_the_table_and_a_quota_fix() -> None:
    desc = load_description()  # provisioned 1 WCU / 1 RCU, no reservations
    n = _needs(4, {"writes": 1})
    rows = {r["limit"]: r for r in plan_limits(desc, n, {"POST /events": 2.0}, table_wcu=1, table_rcu=1)}
    assert rows["DynamoDB table write capacity"]["verdict"] == "exceeded"
    assert rows["DynamoDB table write capacity"]["fix"].startswith(f"table.write_capacity = {n.recommended_wcu}")
    small = {r["limit"]: r for r in plan_limits(desc, n, {"POST /events": 2.5}, account_concurrency=10)}
    pool = small["Lambda events: account unreserved pool (shared)"]  # 4/s x 2.5 s = 10 of 10: at the limit
    assert pool["verdict"] == "at risk" and pool["fix"] == "request a Lambda concurrency quota of 113"


def test_report_shows_the_bill_and_the_limits(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", steps=[0.5, 2, 4], step_duration_s=10, mix={"writes": 1}, burst_s=0, checks=None)
    result = CliRunner().invoke(cli, ["capacity", "--from-run", str(run), "--target-rate", "4"])
    assert result.exit_code == 0, result.output
    assert "OpenSearch 1 x t3.small.search" in result.output and "opensearch-service/pricing" in result.output
    assert "DynamoDB table write capacity" in result.output and "exceeded" in result.output
    html = (run / "report.html").read_text()
    assert 'href="https://aws.amazon.com/opensearch-service/pricing/"' in html
    assert "Limits at 4" in html and "verdict-exceeded" in html and "table.write_capacity = " in html
    assert "Monthly bill (provisioned table)" in html and "Limits at the target rate" in html  # the two charts
    assert "Auto scaling (writes)" in html
