"""dynamodb_contents: clean data passes; every fault it exists to catch fails, naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from checks import dynamodb_contents
from checks.framework import CheckContext
from loadcheck.bench.synthetic_checks import (
    REGION,
    create_table,
    make_records,
    store_acknowledged,
    synthetic_target,
    write_run,
)
from loadcheck.core.description import load_description
from loadcheck.core.ledger import item_digest
from loadcheck.core.rundir import read_run


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def ddb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        yield client


def make_ctx(run_dir: Path, client: Any, *, budget_s: float = 30.0) -> CheckContext:
    return CheckContext(
        run_dir=run_dir,
        run=read_run(run_dir),
        target=synthetic_target(),
        description=load_description(),
        clients=lambda s: client,
        budget_s=budget_s,
        clock=FakeClock(),
    )


def put(client: Any, item: dict[str, str]) -> None:
    client.put_item(TableName="EventLog", Item={k: {"S": v} for k, v in item.items()})


def test_clean_run_passes_with_figures(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=30, reads=5, collisions=2, dates=("2031-01-01", "2031-01-02"))
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "pass", res
    f = res.figures
    assert (f["acknowledged"], f["found"], f["lost"], f["phantom"], f["altered"]) == (30, 30, 0, 0, 0)
    assert f["collisions"] == 2 and f["collisions_resolved"] == 2
    assert f["partitions"] == 2 and f["rcu_consumed_by_check"] > 0


def test_lost_write_fails_naming_key_and_request(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=10)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    victim = [r for r in records if "item" in r][3]
    ddb.delete_item(TableName="EventLog", Key={k: {"S": v} for k, v in victim["item_key"].items()})
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "fail" and res.figures["lost"] == 1
    ev = [e for e in res.evidence if e["kind"] == "lost"]
    assert ev[0]["request_id"] == victim["request_id"]
    assert ev[0]["key"] == f"{victim['item_key']['date']}/{victim['item_key']['time']}"


def test_altered_item_fails(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=10)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    target = [r for r in records if "item" in r][5]
    put(ddb, dict(target["item"], eventType="tampered"))
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "fail" and res.figures["altered"] == 1
    ev = next(e for e in res.evidence if e["kind"] == "altered")
    assert ev["request_id"] == target["request_id"]
    assert ev["stored"]["eventType"] == "tampered"


def test_phantom_item_fails(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=10)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    put(ddb, {"date": "2031-01-01", "time": "23:59:59.999-phantom", "userId": "x", "eventType": "ghost"})
    put(ddb, {"date": "2099-12-31", "time": "00:00:00.000", "userId": "x", "eventType": "other run"})
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "fail" and res.figures["phantom"] == 1  # other partitions are not this run's
    assert any(e["key"] == "2031-01-01/23:59:59.999-phantom" for e in res.evidence)


def test_refused_write_that_landed_fails(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=10, throttle_after=8)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    refused = next(r for r in records if r["status"] == 429)
    put(ddb, refused["item"])
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "fail" and res.figures["rejected_landed"] == 1
    assert any(e["request_id"] == refused["request_id"] for e in res.evidence)


def test_collision_acknowledged_twice_fails(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=5, collisions=1)
    loser = next(r for r in records if r["status"] == 409)
    loser["status"] = 201  # the second writer was also told "created": first-writer-wins broken
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)  # the stored item is the last put: the collider's
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "fail" and res.figures["double_acknowledged"] == 1


def test_indeterminate_writes_reported_with_landing(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=6, reads=0)
    records[1].update(status=0, error="timeout", request_id=None)
    records[2].update(status=503)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    put(ddb, records[2]["item"])  # the 503 landed anyway; the timeout did not
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "pass", res
    assert res.figures["indeterminate_landed"] == 1 and res.figures["indeterminate_not_landed"] == 1
    landed = {e["status"]: e["landed"] for e in res.evidence if e["kind"] == "indeterminate"}
    assert landed == {503: True, 0: False}


def test_no_writes_is_skipped(tmp_path: Path, ddb: Any) -> None:
    write_run(tmp_path, make_records(writes=0, reads=3))
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "skipped" and res.reason


def test_missing_table_is_error_not_pass(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=3)
    write_run(tmp_path, records)
    ddb.delete_table(TableName="EventLog")
    res = dynamodb_contents.run(make_ctx(tmp_path, ddb))
    assert res.status == "error" and "EventLog" in res.summary


def test_reads_back_off_on_throttling_and_report_it(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=4)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)
    ctx = make_ctx(tmp_path, ddb)
    real_query = ddb.query
    stub = Stubber(ddb)
    for _ in range(3):
        stub.add_client_error("query", "ProvisionedThroughputExceededException", http_status_code=400)
    answers = iter([None, None, None])

    def query(**kw: Any) -> Any:
        if next(answers, "done") is None:
            with stub:
                return real_query(**kw)
        return real_query(**kw)

    ddb.query = query  # type: ignore[method-assign]
    res = dynamodb_contents.run(ctx)
    assert res.status == "pass", res
    assert res.figures["read_throttles"] == 3 and res.figures["backoff_s"] > 0
    assert ctx.clock.slept == [0.25, 0.5, 1.0]  # type: ignore[attr-defined]


def test_budget_spent_while_throttled_is_error(tmp_path: Path, ddb: Any) -> None:
    records = make_records(writes=4)
    write_run(tmp_path, records)
    ctx = make_ctx(tmp_path, ddb, budget_s=3.0)
    stub = Stubber(ddb)
    for _ in range(50):
        stub.add_client_error("query", "ProvisionedThroughputExceededException", http_status_code=400)
    with stub:
        res = dynamodb_contents.run(ctx)
    assert res.status == "error" and "budget" in res.summary


def test_digest_is_over_plain_json(tmp_path: Path, ddb: Any) -> None:
    item = {"date": "2031-01-01", "time": "t", "n": 5, "ok": True}
    raw = {"date": {"S": "2031-01-01"}, "time": {"S": "t"}, "n": {"N": "5"}, "ok": {"BOOL": True}}
    from loadcheck.core.plain_items import plain_item

    assert item_digest(plain_item(raw)) == item_digest(item)


def _cut_ledger(run_dir: Path, drop: int) -> None:
    """The ledger of a killed writer: its last ``drop`` records lost, the next one cut mid-line."""
    import gzip
    import zlib

    path = next((run_dir / "ledger").glob("*.jsonl.gz"))
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    kept = b"".join(lines[: -drop - 1]) + lines[-drop - 1][:20]
    comp = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    path.write_bytes(comp.compress(kept) + comp.flush(zlib.Z_SYNC_FLUSH))


def test_a_cut_ledger_tail_is_unrecorded_not_phantom(tmp_path: Path, ddb: Any) -> None:
    from checks import runner
    from loadcheck.core.rundir import RunRecord
    from loadcheck.core.rundir import write_run as write_run_record

    records = make_records(writes=30, reads=0)
    write_run(tmp_path, records)
    store_acknowledged(ddb, records)  # the table holds every write, the ledger will not
    _cut_ledger(tmp_path, drop=3)
    run = RunRecord.from_dict(read_run(tmp_path))
    run.status, run.ledger_records = "interrupted", None  # a killed load generator
    write_run_record(tmp_path, run)
    ctx = make_ctx(tmp_path, ddb)
    res = runner.run_checks(tmp_path, names=["dynamodb_contents"], context=ctx)[0]
    assert res.status == "pass", (res.summary, res.evidence)
    assert res.figures["phantom"] == 0 and res.figures["unrecorded_after_ledger_cut"] == 4
    assert "beyond the ledger's cut" in res.evidence[0]["detail"]
    # the same table against a complete ledger that never wrote those keys: phantoms
    ctx.ledger_tail_unknown = False
    again = dynamodb_contents.run(ctx)
    assert again.status == "fail" and again.figures["phantom"] == 4
