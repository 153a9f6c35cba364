"""A run in which nothing reached the API: no check passes and the verdict is not a pass.

The scenario: ``--target aws`` where every request failed before it reached the API (the load
generator did not trust the endpoint's CA), with the server-error threshold switched off. The
table, the logs and the metrics are real (moto); the endpoint is a closed port on loopback.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from checks import runner
from checks.framework import CheckContext
from checks.results_doc import build_results
from loadcheck.bench.synthetic_checks import REGION, create_table, make_records, synthetic_target, write_run
from loadcheck.core.description import load_description
from loadcheck.core.rundir import read_run


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


@pytest.fixture
def aws():
    with mock_aws():
        clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "logs", "cloudwatch")}
        create_table(clients["dynamodb"])
        clients["logs"].create_log_group(logGroupName="/aws/apigateway/loadcheck-http-api")
        yield clients


def test_every_request_failed_before_the_api_nothing_passes(tmp_path: Path, aws: dict[str, Any]) -> None:
    port = _closed_port()
    target = dataclasses.replace(
        synthetic_target(),
        kind="aws",
        url=f"https://events.loadcheck.test:{port}",
        connect_port=port,
    )
    records = make_records(writes=30, reads=10)
    for rec in records:  # the TLS handshake failed: no status, no request id
        rec.update(status=0, error="tls", request_id=None, response_length=0)
        rec.pop("retry_after", None)
    write_run(tmp_path, records, target=target)
    ctx = CheckContext(
        run_dir=tmp_path,
        run=read_run(tmp_path),
        target=target,
        description=load_description(),
        clients=lambda s: aws[s],
        budget_s=2.0,
        clock=FakeClock(),
    )
    results = {r.name: r for r in runner.run_checks(tmp_path, context=ctx)}
    assert not [n for n, r in results.items() if r.status == "pass"], {n: r.summary for n, r in results.items()}
    assert results["dynamodb_contents"].status == "skipped"
    assert results["throttling"].status == "skipped"
    assert results["access_logs"].status == "skipped"
    assert results["security"].status == "error"
    doc = build_results(tmp_path, list(results.values()), started_at="a", ended_at="b")
    assert doc["thresholds"] == [] and doc["verdict"] == "error"
    assert any("no check verified anything" in r for r in doc["verdict_reasons"])
