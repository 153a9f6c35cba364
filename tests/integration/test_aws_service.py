"""The aws service as a real process on 127.0.0.1, driven with boto3 (and plain HTTP for admin paths).

Time is driven through the test-only manual clock (config ``clock: "manual"``,
``POST /_loadcheck/clock``); nothing here sleeps or asserts wall-clock durations.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ARN_PREFIX = "arn:aws:dynamodb:us-east-1:123456789012:table/"


@dataclass
class Service:
    url: str
    proc: subprocess.Popen[bytes]

    def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 (http://127.0.0.1 only)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
                return resp.status, json.load(resp)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)

    def advance(self, seconds: float) -> None:
        status, body = self.admin("POST", "/_loadcheck/clock", {"advance_s": seconds})
        assert status == 200, body

    def client(self, service: str = "dynamodb", retries: int = 1) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="AKIDTEST",
            aws_secret_access_key="not-a-secret",  # noqa: S106 (moto checks no signatures)
            config=Config(retries={"mode": "standard", "total_max_attempts": retries}),
        )


def start_service(tmp_path: Path, **config: Any) -> Service:
    ready = tmp_path / "aws.ready"
    cfg = {
        "service": "aws",
        "host": "127.0.0.1",
        "port": 0,
        "ready_file": str(ready),
        "parent_pid": os.getpid(),
        "region": REGION,
        "account_id": "123456789012",
        "clock": "manual",
        "burst_start": "empty",
        "log_level": "WARNING",
        **config,
    }
    cfg_path = tmp_path / "aws.json"
    cfg_path.write_text(json.dumps(cfg))
    log = (tmp_path / "aws.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "reference_stack.local.aws", "--config", str(cfg_path)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            pytest.fail(f"aws service did not become ready: {(tmp_path / 'aws.log').read_text()[-2000:]}")
        time.sleep(0.05)  # polling the ready file with a deadline, not waiting for time to pass
    port = json.loads(ready.read_text())["port"]
    return Service(f"http://127.0.0.1:{port}", proc)


def stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            return None
    return proc.returncode


@pytest.fixture
def aws(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path)
    try:
        yield service
    finally:
        assert stop(service.proc) == 0, "SIGTERM must flush and exit 0 within 10 s"


def create_table(ddb: Any, name: str, *, rcu: int = 1, wcu: int = 1, on_demand: bool = False) -> None:
    kwargs: dict[str, Any] = (
        {"BillingMode": "PAY_PER_REQUEST"}
        if on_demand
        else {"ProvisionedThroughput": {"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu}}
    )
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "date", "KeyType": "HASH"}, {"AttributeName": "time", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "date", "AttributeType": "S"},
            {"AttributeName": "time", "AttributeType": "S"},
        ],
        **kwargs,
    )


def sized_item(date: str, time_: str, size: int) -> dict[str, Any]:
    """An item of exactly ``size`` bytes by AWS's rules: names + values (§7.1)."""
    base = len("date") + len(date) + len("time") + len(time_) + len("xpad")
    return {"date": {"S": date}, "time": {"S": time_}, "xpad": {"S": "x" * (size - base)}}


def batch_put(ddb: Any, table: str, items: list[dict[str, Any]]) -> int:
    """BatchWriteItem in 25s; returns how many were not written (unprocessed, or the whole batch throttled)."""
    unprocessed = 0
    for start in range(0, len(items), 25):
        batch = items[start : start + 25]
        try:
            out = ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": i}} for i in batch]})
        except ddb.exceptions.ProvisionedThroughputExceededException:
            unprocessed += len(batch)  # DynamoDB raises only when no item of the batch fits
            continue
        unprocessed += len(out.get("UnprocessedItems", {}).get(table, []))
    return unprocessed


def throttled(call: Callable[[], Any], ddb: Any) -> dict[str, Any] | None:
    try:
        call()
    except ddb.exceptions.ProvisionedThroughputExceededException as exc:
        return exc.response
    return None


def test_service_contract_health_faults_and_flush(aws: Service) -> None:
    assert aws.admin("GET", "/_loadcheck/health") == (200, {"status": "ok", "service": "aws"})
    assert aws.admin("GET", "/_loadcheck/faults") == (200, {})
    status, body = aws.admin("POST", "/_loadcheck/faults", {"drop-writes": 2})
    assert status == 400 and "drop-writes=2" in body["error"] and "from 0 to 1" in body["fix"]
    status, body = aws.admin("POST", "/_loadcheck/faults", {"no-such-fault": 1})
    assert status == 400 and "'no-such-fault'" in body["error"] and "phantom-writes" in body["fix"]
    assert aws.admin("POST", "/_loadcheck/faults", {"phantom-writes": 2, "ddb-latency": 1}) == (
        200,
        {"phantom-writes": 2, "ddb-latency": 1.0},
    )
    assert aws.admin("POST", "/_loadcheck/faults", {"phantom-writes": None, "ddb-latency": None}) == (200, {})
    assert aws.admin("POST", "/_loadcheck/flush")[0] == 200


def test_capacity_figures_of_aws_examples(aws: Service) -> None:
    ddb = aws.client()
    create_table(ddb, "Examples", on_demand=True)
    # Query: 10 items totalling 40.8 KB -> rounded once to 44 KB -> 11 RCU strong, 5.5 eventual.
    total = int(40.8 * 1024)
    sizes = [total // 10] * 9 + [total - 9 * (total // 10)]
    assert batch_put(ddb, "Examples", [sized_item("q", f"{i:02d}", s) for i, s in enumerate(sizes)]) == 0
    query = {
        "TableName": "Examples",
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "date"},
        "ExpressionAttributeValues": {":d": {"S": "q"}},
        "ReturnConsumedCapacity": "TOTAL",
    }
    assert ddb.query(**query, ConsistentRead=True)["ConsumedCapacity"]["CapacityUnits"] == 11.0
    assert ddb.query(**query)["ConsumedCapacity"]["CapacityUnits"] == 5.5
    # 1500 items of 64 B: 96,000 B summed -> 24 RCU strong (a BatchGet would round each item).
    small = [sized_item("s", f"{i:04d}", 64) for i in range(1500)]
    assert batch_put(ddb, "Examples", small[:750]) == 0
    aws.advance(1)  # one partition key takes at most 1,000 WCU per second (§7.3)
    assert batch_put(ddb, "Examples", small[750:]) == 0
    out = ddb.query(**{**query, "ExpressionAttributeValues": {":d": {"S": "s"}}}, ConsistentRead=True)
    assert out["Count"] == 1500 and out["ConsumedCapacity"]["CapacityUnits"] == 24.0
    # Writes: 1,500 B -> 2 WCU; overwriting it with 10 B is charged on the larger (old) item.
    put = ddb.put_item(TableName="Examples", Item=sized_item("w", "1", 1500), ReturnConsumedCapacity="TOTAL")
    assert put["ConsumedCapacity"]["CapacityUnits"] == 2.0
    put = ddb.put_item(
        TableName="Examples", Item={"date": {"S": "w"}, "time": {"S": "1"}}, ReturnConsumedCapacity="TOTAL"
    )
    assert put["ConsumedCapacity"]["CapacityUnits"] == 2.0
    # GetItem of a missing item still costs 0.5 RCU (eventual) / 1 RCU (strong).
    missing = {
        "TableName": "Examples",
        "Key": {"date": {"S": "none"}, "time": {"S": "0"}},
        "ReturnConsumedCapacity": "TOTAL",
    }
    assert ddb.get_item(**missing)["ConsumedCapacity"]["CapacityUnits"] == 0.5
    assert ddb.get_item(**missing, ConsistentRead=True)["ConsumedCapacity"]["CapacityUnits"] == 1.0


def test_writes_beyond_1_wcu_are_throttled_as_the_model_says_and_metrics_agree(aws: Service) -> None:
    ddb = aws.client()
    create_table(ddb, "Slow")  # 1 RCU / 1 WCU, burst_start empty
    start = datetime.now(UTC)
    ok = refused = 0
    for second in range(30):
        aws.advance(1)
        for attempt in range(3):  # offer 3 writes/s against 1 WCU
            item = sized_item("d", f"{second}-{attempt}", 100)
            response = throttled(lambda item=item: ddb.put_item(TableName="Slow", Item=item), ddb)
            if response is None:
                ok += 1
                continue
            refused += 1
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
            assert response["ThrottlingReasons"] == [
                {"reason": "TableWriteProvisionedThroughputExceeded", "resource": ARN_PREFIX + "Slow"}
            ]
            assert response["Error"]["Message"].startswith("The level of configured provisioned throughput")
    assert (ok, refused) == (30, 60)  # the model: 1 WCU/s refill, nothing banked
    assert aws.admin("POST", "/_loadcheck/flush")[0] == 200

    cw = aws.client("cloudwatch")
    begin = start.replace(second=0, microsecond=0) - timedelta(minutes=1)

    def total(metric: str, stat: str = "Sum", **dims: str) -> float:
        out = cw.get_metric_data(
            StartTime=begin,
            EndTime=begin + timedelta(minutes=10),
            MetricDataQueries=[
                {
                    "Id": "m",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/DynamoDB",
                            "MetricName": metric,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                        },
                        "Period": 60,
                        "Stat": stat,
                    },
                }
            ],
        )
        return sum(out["MetricDataResults"][0]["Values"])

    assert total("ConsumedWriteCapacityUnits", TableName="Slow") == 30
    assert total("ConsumedWriteCapacityUnits", "SampleCount", TableName="Slow") == 30
    assert total("WriteThrottleEvents", TableName="Slow") == 60
    assert total("ThrottledRequests", TableName="Slow", Operation="PutItem") == 60
    stats = cw.get_metric_statistics(
        Namespace="AWS/DynamoDB",
        MetricName="ProvisionedWriteCapacityUnits",
        Dimensions=[{"Name": "TableName", "Value": "Slow"}],
        StartTime=begin,
        EndTime=begin + timedelta(minutes=10),
        Period=60,
        Statistics=["Maximum"],
    )
    assert {p["Maximum"] for p in stats["Datapoints"]} == {1.0}
    # A second flush sends nothing new: sums stay right.
    assert aws.admin("POST", "/_loadcheck/flush") == (200, {"published": 0})
    assert total("ConsumedWriteCapacityUnits", TableName="Slow") == 30


def test_a_hot_partition_key_throttles_at_its_ceiling_while_the_table_has_capacity(tmp_path: Path) -> None:
    service = start_service(tmp_path, burst_start="full")
    try:
        ddb = service.client()
        create_table(ddb, "Wide", wcu=5000)
        hot = [sized_item("hot", f"{i:04d}", 1000) for i in range(1100)]  # ~1 KB -> 1 WCU each
        assert batch_put(ddb, "Wide", hot) == 100  # 1,000 WCU/s per partition key
        response = throttled(lambda: ddb.put_item(TableName="Wide", Item=sized_item("hot", "x", 1000)), ddb)
        assert response is not None
        assert response["ThrottlingReasons"] == [
            {"reason": "TableWriteKeyRangeThroughputExceeded", "resource": ARN_PREFIX + "Wide"}
        ]
        ddb.put_item(TableName="Wide", Item=sized_item("cold", "x", 1000))  # the table still has capacity
        service.advance(1)
        ddb.put_item(TableName="Wide", Item=sized_item("hot", "x", 1000))
    finally:
        assert stop(service.proc) == 0


def test_update_table_applies_live(aws: Service) -> None:
    ddb = aws.client()
    create_table(ddb, "Grow")
    aws.advance(1)
    ddb.update_table(TableName="Grow", ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 100})
    aws.advance(1)
    # 1 WCU banked before the update + 100 in the second after it
    assert batch_put(ddb, "Grow", [sized_item("d", f"{i:03d}", 100) for i in range(125)]) == 24
    status, snapshot = aws.admin("GET", "/_loadcheck/capacity")
    assert status == 200 and snapshot["Grow"]["write_capacity_units"] == 100


def test_drop_writes_fault_acknowledges_without_storing(aws: Service) -> None:
    ddb = aws.client()
    create_table(ddb, "Lossy", on_demand=True)
    assert aws.admin("POST", "/_loadcheck/faults", {"drop-writes": 1})[0] == 200
    ddb.put_item(TableName="Lossy", Item={"date": {"S": "d"}, "time": {"S": "1"}})
    assert "Item" not in ddb.get_item(TableName="Lossy", Key={"date": {"S": "d"}, "time": {"S": "1"}})


def test_concurrent_writers_lose_nothing(aws: Service) -> None:
    import threading

    create_table(aws.client(), "Busy", on_demand=True)
    failures: list[str] = []

    def writer(n: int) -> None:
        ddb = aws.client()
        for i in range(40):
            try:
                ddb.put_item(TableName="Busy", Item={"date": {"S": f"w{n}"}, "time": {"S": f"{i:03d}"}})
            except Exception as exc:  # collected and asserted below, with the reason
                failures.append(f"writer {n} item {i}: {exc}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert aws.client().scan(TableName="Busy", Select="COUNT")["Count"] == 240


def test_service_exits_when_its_parent_dies(tmp_path: Path) -> None:
    import psutil

    ready = tmp_path / "aws.ready"
    cfg = {"service": "aws", "host": "127.0.0.1", "port": 0, "ready_file": str(ready), "log_level": "WARNING"}
    launcher = (
        "import json, os, subprocess, sys\n"
        f"cfg = {cfg!r}\n"
        "cfg['parent_pid'] = os.getpid()\n"
        f"path = {str(tmp_path / 'aws.json')!r}\n"
        "open(path, 'w').write(json.dumps(cfg))\n"
        "child = subprocess.Popen([sys.executable, '-m', 'reference_stack.local.aws', '--config', path])\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", launcher],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    child_pid = None
    try:
        assert parent.stdout is not None
        child_pid = int(parent.stdout.readline())
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # poll the ready file with a deadline
        assert ready.exists(), "service never became ready"
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while psutil.pid_exists(child_pid) and psutil.Process(child_pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the aws service outlived its parent by 10 s"
            time.sleep(0.05)  # poll the process table with a deadline
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=5)
        if child_pid is not None and psutil.pid_exists(child_pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(child_pid).kill()


def test_reads_are_admitted_while_positive_and_pay_back_debt(aws: Service) -> None:
    ddb = aws.client()
    create_table(ddb, "Reads", wcu=1000)  # 1 RCU, burst_start empty
    aws.advance(1)
    assert batch_put(ddb, "Reads", [sized_item("p", f"{i}", 4000) for i in range(10)]) == 0
    get = {"TableName": "Reads", "Key": {"date": {"S": "p"}, "time": {"S": "0"}}}
    ddb.get_item(**get)  # 0.5 RCU (eventually consistent, <= 4 KB)
    ddb.get_item(**get)  # 0.5 RCU: the bucket is now empty
    response = throttled(lambda: ddb.get_item(**get), ddb)
    assert response is not None
    assert response["ThrottlingReasons"][0]["reason"] == "TableReadProvisionedThroughputExceeded"
    aws.advance(0.5)  # 0.5 RCU: positive, so a 10 RCU strongly consistent Query is admitted...
    query = {
        "TableName": "Reads",
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "date"},
        "ExpressionAttributeValues": {":d": {"S": "p"}},
        "ConsistentRead": True,
        "ReturnConsumedCapacity": "TOTAL",
    }
    assert ddb.query(**query)["ConsumedCapacity"]["CapacityUnits"] == 10.0
    aws.advance(9)  # ...and leaves 9.5 RCU of debt: 9 s of refill is not enough
    assert throttled(lambda: ddb.get_item(**get), ddb) is not None
    aws.advance(1)
    ddb.get_item(**get)


def test_concurrent_writers_get_exactly_the_capacity(aws: Service) -> None:
    import threading

    create_table(aws.client(), "Contended")  # 1 WCU, burst_start empty
    aws.advance(50)  # 50 WCU banked; the clock then stands still
    outcomes: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        ddb = aws.client()
        for i in range(15):
            item = sized_item(f"w{n}", f"{i:03d}", 100)
            result = (
                "throttled"
                if throttled(lambda item=item: ddb.put_item(TableName="Contended", Item=item), ddb)
                else "ok"
            )
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert (outcomes.count("ok"), outcomes.count("throttled")) == (50, 40)
    assert aws.client().scan(TableName="Contended", Select="COUNT")["Count"] == 50
