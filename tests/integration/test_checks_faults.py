"""The checks against the real local stack: clean traffic passes, each fault hook is caught
with the right evidence, reliability faults surface as indeterminate requests with nothing lost.

Traffic is a small signed client of our own (bounded: tens of requests, sequential) that
writes the run's ledger with ``LedgerWriter`` exactly as the load generator does, so each
test is a few seconds, not a Locust run (test_checks_cli.py does one real ``loadcheck run``).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from checks import probe_http
from checks.runner import build_context, run_checks
from loadcheck.core.ledger import LedgerWriter, item_digest
from loadcheck.core.rundir import RunRecord, iso_utc, write_run
from loadcheck.core.sigv4 import Signer
from loadcheck.core.target import Target
from reference_stack.local import supervisor

pytestmark = pytest.mark.integration
BUDGET_S = 15.0


class Driver:
    """Sends signed requests to the gateway and ledgers each one."""

    def __init__(self, target: Target, run_dir: Path, run_id: str) -> None:
        self.target = target
        self.run_dir = run_dir
        self.run_id = run_id
        self.writer = LedgerWriter(run_dir / "ledger", "local", batch=10)
        self.seq = 0
        self.signer = Signer("execute-api", target.region)
        self.creds = target.credentials("requester")
        self.tls = probe_http.tls_context(target.ca_bundle)
        self.host = target.url.split("://", 1)[1]
        self.date = f"20{30 + uuid.uuid4().int % 60}-0{1 + uuid.uuid4().int % 9}-1{uuid.uuid4().int % 9}"
        self.started = time.time()
        self.lock = threading.Lock()

    def request(
        self, method: str, path: str, query: str = "", item: dict[str, str] | None = None, route: str | None = None
    ) -> dict[str, Any]:
        body = json.dumps(item).encode() if item is not None else b""
        extra = {"content-type": "application/json"} if item is not None else {}
        headers = {
            "Host": self.host,
            "User-Agent": "loadcheck-it-driver/1",
            **extra,
            **self.signer.sign(self.creds, method, self.host, path, query, headers=extra, body=body),
        }
        t0 = time.time()
        full = f"{path}?{query}" if query else path
        try:
            ans = probe_http.send(
                server_name=self.target.domain,
                address=self.target.connect_address or "127.0.0.1",
                port=self.target.connect_port,
                method=method,
                path=full,
                headers=headers,
                body=body,
                context=self.tls,
                timeout=40,
            )
            status, err = ans.status, None
        except (TimeoutError, OSError) as exc:
            ans, status, err = None, 0, "timeout" if isinstance(exc, TimeoutError) else "connection"
        rec: dict[str, Any] = {
            "run_id": self.run_id,
            "worker": "local",
            "seq": self.seq,
            "t_start_ms": t0 * 1000.0,
            "t_intended_ms": t0 * 1000.0,
            "route": route or f"{method} {path}",
            "method": method,
            "path": full,
            "status": status,
            "error": err,
            "latency_ms": (time.time() - t0) * 1000.0,
            "response_length": len(ans.body) if ans else 0,
            "request_id": ans.request_id if ans else None,
        }
        if status == 429 and ans is not None:
            rec["retry_after"] = ans.headers.get("retry-after")
        if item is not None:
            rec.update(item_key={"date": item["date"], "time": item["time"]}, item=item, item_digest=item_digest(item))
        with self.lock:
            rec["seq"] = self.seq
            self.seq += 1
        self.writer.write(rec)
        return rec

    def write(
        self, n: int, *, collide_last: bool = False, concurrency: int = 1, first: int = 0
    ) -> list[dict[str, Any]]:
        items = [
            {
                "date": self.date,
                "time": f"00:00:{i // 1000:02d}.{i % 1000:03d}",
                "userId": self.run_id,
                "eventType": "it",
            }
            for i in range(first, first + n)
        ]
        with ThreadPoolExecutor(concurrency) as pool:
            out = list(pool.map(lambda item: self.request("POST", "/events", item=item), items))
        if collide_last and out:
            first = out[0]["item"]
            out.append(self.request("POST", "/events", item=dict(first, userId=self.run_id + "-collider")))
        return out

    def write_until(
        self, status: int, *, batch: int = 12, limit: int = 240, deadline_s: float = 90.0
    ) -> list[dict[str, Any]]:
        """Concurrent writes, batch after batch, until one is answered ``status`` (the table's
        bucket refilled while the stack sat idle: how much is unknown) or the limit/deadline."""
        out: list[dict[str, Any]] = []
        end = time.monotonic() + deadline_s
        while len(out) < limit and time.monotonic() < end:
            out += self.write(batch, concurrency=6, first=len(out))
            if any(r["status"] == status for r in out[-batch:]):
                # one more batch so that throttling is sustained, not a single edge
                return out + self.write(batch, concurrency=6, first=len(out))
        return out

    def read(self, n: int) -> list[dict[str, Any]]:
        return [self.request("GET", "/events", f"date={self.date}&limit=5") for _ in range(n)]

    def finish(self) -> Path:
        self.writer.close()
        write_run(
            self.run_dir,
            RunRecord(
                run_id=self.run_id,
                status="complete",
                target=self.target.to_public(),
                started_at=iso_utc(self.started),
                ended_at=iso_utc(time.time()),
                ledger_records=self.writer.count,
            ),
        )
        return self.run_dir


_last_end = [0.0]


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stack of this module's own: the throttling check compares CloudWatch's consumed capacity
    per minute with the run's ledger, so no other module's writes may share the table's minutes."""
    state_dir = tmp_path_factory.mktemp("faults-stack") / ".loadcheck"
    stack = supervisor.start_detached(state_dir)
    try:
        yield stack
    finally:
        supervisor.stop_stack(state_dir)


@pytest.fixture
def driver(local_stack: dict[str, Any], tmp_path: Path) -> Iterator[Driver]:
    state_dir = Path(local_stack["state_dir"])
    # Runs share the stack's log group: keep each run's window clear of the previous run's
    # requests (access_logs counts records inside the window that no ledger names).
    time.sleep(max(0.0, _last_end[0] + 0.3 - time.time()))
    target = Target.from_stack_json(local_stack, state_dir)
    run_id = "it-" + uuid.uuid4().hex[:8]
    supervisor.clear_faults(state_dir)
    try:
        yield Driver(target, tmp_path / run_id, run_id)
    finally:
        _last_end[0] = time.time()
        supervisor.clear_faults(state_dir)


def check(d: Driver, *names: str, source: str = "export") -> dict[str, Any]:
    """Run the checks as `loadcheck check` does; ``source="query"``: as for a target without an
    export bucket (dynamodb_contents then reads the table by Query)."""
    run_dir = d.finish()
    ctx = build_context(
        run_dir, state_dir=d.target.state_dir, budget_s=BUDGET_S, local_flush=supervisor.flush
    )  # as `loadcheck check` builds it
    if source == "query":
        ctx.target = dataclasses.replace(ctx.target, export_bucket=None)
    results = run_checks(run_dir, names=list(names) or None, context=ctx)
    return {r.name: r for r in results}


def faults(d: Driver, **values: Any) -> None:
    supervisor.set_faults(Path(d.target.state_dir or ""), {k.replace("_", "-"): v for k, v in values.items()})


def test_clean_traffic_passes_every_check(driver: Driver) -> None:
    driver.write(8, collide_last=True)
    driver.read(2)
    res = check(driver)
    for name, r in res.items():
        assert r.status == "pass", (name, r.summary, r.evidence[:3])
    dc = res["dynamodb_contents"].figures
    assert dc["acknowledged"] == 8 and dc["found"] == 8 and dc["collisions_resolved"] == 1
    assert dc["source"] == "export" and dc["rcu_consumed_by_check"] == 0
    assert res["access_logs"].figures["joined"] == 11
    assert res["security"].figures["failed"] == 0


def _read_as(r: Any, source: str) -> None:
    """The export path reads no table capacity; the Query path does."""
    assert r.figures["source"] == source, r.evidence
    assert (r.figures["rcu_consumed_by_check"] == 0) == (source == "export"), r.figures


@pytest.mark.parametrize("source", ["export", "query"])
def test_drop_writes_is_caught_as_lost(driver: Driver, source: str) -> None:
    faults(driver, drop_writes=1.0)
    sent = driver.write(4)
    r = check(driver, "dynamodb_contents", source=source)["dynamodb_contents"]
    assert r.status == "fail" and r.figures["lost"] == 4
    assert {e["request_id"] for e in r.evidence if e["kind"] == "lost"} == {s["request_id"] for s in sent}
    _read_as(r, source)


@pytest.mark.parametrize("source", ["export", "query"])
def test_phantom_writes_are_caught(driver: Driver, source: str) -> None:
    faults(driver, phantom_writes=2)
    driver.write(3)
    r = check(driver, "dynamodb_contents", source=source)["dynamodb_contents"]
    assert r.status == "fail" and r.figures["phantom"] == 2 and r.figures["lost"] == 0
    assert all(e["key"].startswith(driver.date) for e in r.evidence if e["kind"] == "phantom")
    _read_as(r, source)


def test_dropped_access_logs_are_missing(driver: Driver) -> None:
    faults(driver, drop_access_logs=1.0)
    sent = driver.write(3)
    r = check(driver, "access_logs")["access_logs"]
    assert r.status == "fail" and r.figures["missing"] == 3
    assert {e["request_id"] for e in r.evidence if e.get("kind") == "missing"} == {s["request_id"] for s in sent}


def test_blank_access_log_field_is_named(driver: Driver) -> None:
    faults(driver, blank_access_log_field="routeKey")
    driver.write(2)
    r = check(driver, "access_logs")["access_logs"]
    assert r.status == "fail" and r.figures["blank"] == 2
    assert {e["field"] for e in r.evidence if e.get("kind") == "blank"} == {"routeKey"}


def test_log_delay_is_waited_out(driver: Driver) -> None:
    faults(driver, log_delay=3)
    driver.write(2)
    r = check(driver, "access_logs")["access_logs"]
    assert r.status == "pass", r.evidence


def test_allow_denied_is_caught_by_security(driver: Driver) -> None:
    faults(driver, allow_denied=1)
    driver.read(1)
    r = check(driver, "security")["security"]
    assert r.status == "fail"
    assert [e["probe"] for e in r.evidence if e.get("verdict") == "fail"] == ["denied"]


def test_lambda_errors_are_indeterminate_with_nothing_lost(driver: Driver) -> None:
    faults(driver, lambda_error=1.0)
    sent = driver.write(3)
    assert {s["status"] for s in sent} == {500}
    res = check(driver, "dynamodb_contents", "access_logs")
    dc = res["dynamodb_contents"]
    # nothing was acknowledged, so nothing can be verified: skipped, never a vacuous pass
    assert dc.status == "skipped" and dc.figures["lost"] == 0 and dc.figures["acknowledged"] == 0
    assert dc.figures["indeterminate_landed"] + dc.figures["indeterminate_not_landed"] == 3
    assert res["access_logs"].status == "pass", res["access_logs"].evidence


@pytest.mark.slow
def test_lambda_timeouts_are_indeterminate_with_nothing_lost(driver: Driver) -> None:
    faults(driver, lambda_timeout=1.0)
    sent = driver.write(2, concurrency=2)  # each runs into the function's 10 s timeout
    assert all(s["status"] >= 500 for s in sent), [s["status"] for s in sent]
    res = check(driver, "dynamodb_contents", "access_logs")
    dc = res["dynamodb_contents"]
    # nothing was acknowledged, so nothing can be verified: skipped, never a vacuous pass
    assert dc.status == "skipped" and dc.figures["lost"] == 0 and dc.figures["acknowledged"] == 0
    assert dc.figures["indeterminate_landed"] + dc.figures["indeterminate_not_landed"] == 2
    assert res["access_logs"].status == "pass", res["access_logs"].evidence


def test_ddb_latency_slows_but_loses_nothing(driver: Driver) -> None:
    faults(driver, ddb_latency=150)
    driver.write(3)
    res = check(driver, "dynamodb_contents", "access_logs")
    assert all(r.status == "pass" for r in res.values()), {n: r.summary for n, r in res.items()}


@pytest.fixture(scope="module")
def empty_burst_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A stack of its own whose table starts with no burst (``burst_start="empty"``), so a few
    concurrent writes meet 1 WCU/s; its own table also keeps other tests' writes out of the
    minutes whose ConsumedWriteCapacityUnits the check sums."""
    state_dir = tmp_path_factory.mktemp("throttle") / ".loadcheck"
    stack = supervisor.start_detached(state_dir, burst_start="empty")
    try:
        yield stack
    finally:
        supervisor.stop_stack(state_dir)


@pytest.fixture
def throttle_driver(empty_burst_stack: dict[str, Any], tmp_path: Path) -> Iterator[Driver]:
    state_dir = Path(empty_burst_stack["state_dir"])
    target = Target.from_stack_json(empty_burst_stack, state_dir)
    time.sleep(max(0.0, _last_end[0] + 0.3 - time.time()))
    try:
        yield Driver(target, tmp_path / "throttle", "it-throttle-" + uuid.uuid4().hex[:6])
    finally:
        supervisor.clear_faults(state_dir)
        _last_end[0] = time.time()


def test_throttled_writes_get_429_and_metrics_agree(throttle_driver: Driver) -> None:
    d = throttle_driver
    sent = d.write_until(429)
    statuses = [s["status"] for s in sent]
    assert 429 in statuses, statuses
    res = check(d, "throttling", "dynamodb_contents")
    th = res["throttling"]
    assert th.status == "pass", (th.summary, th.evidence)
    assert th.figures["client_throttled_writes"] == statuses.count(429) and th.figures["write_throttle_events"] > 0
    assert th.figures["consumed_wcu_metric"] == th.figures["expected_wcu"] == statuses.count(201)
    assert res["dynamodb_contents"].status == "pass"


def test_throttle_answered_500_is_caught(throttle_driver: Driver) -> None:
    faults(throttle_driver, throttle_status=500)
    sent = throttle_driver.write_until(500)
    assert 500 in [s["status"] for s in sent]
    th = check(throttle_driver, "throttling")["throttling"]
    assert th.status == "fail" and th.figures["throttle_as_5xx"] >= 1
    assert any(e.get("kind") == "throttle_as_5xx" for e in th.evidence)
