"""The runner, results.json and `loadcheck check`: versioned, refuses what it cannot read,
never passes a run whose ledger is corrupt or whose target cannot be read."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from checks import runner
from checks.framework import CheckContext
from checks.results_doc import build_results, write_results
from loadcheck.bench.synthetic_checks import (
    REGION,
    create_table,
    make_records,
    publish_metrics,
    put_access_logs,
    store_acknowledged,
    synthetic_target,
    write_run,
)
from loadcheck.cli import cli
from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError, LedgerError, RunDirError
from loadcheck.core.results import CheckResult
from loadcheck.core.rundir import RESULTS_SCHEMA_VERSION as SCHEMA_VERSION
from loadcheck.core.rundir import read_results, read_run, verdict

GROUP = "/aws/apigateway/loadcheck-http-api"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clean_run(tmp_path: Path):
    with mock_aws():
        clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "logs", "cloudwatch")}
        create_table(clients["dynamodb"])
        records = make_records(writes=30, reads=10, collisions=1)
        write_run(tmp_path, records)
        store_acknowledged(clients["dynamodb"], records)
        put_access_logs(clients["logs"], GROUP, records, load_description().access_log.format)
        publish_metrics(clients["cloudwatch"], "EventLog", records)
        ctx = CheckContext(
            run_dir=tmp_path,
            run=read_run(tmp_path),
            target=synthetic_target(),
            description=load_description(),
            clients=lambda s: clients[s],
            budget_s=5.0,
            clock=FakeClock(),
            flush=lambda: None,
        )
        yield ctx, records


def test_results_document_has_the_documented_shape(clean_run: Any) -> None:
    ctx, records = clean_run
    results = runner.run_checks(ctx.run_dir, names=["dynamodb_contents", "throttling", "access_logs"], context=ctx)
    assert [r.status for r in results] == ["pass", "pass", "pass"], [(r.name, r.summary, r.evidence) for r in results]
    path = write_results(
        ctx.run_dir,
        results,
        started_at="2031-01-01T00:00:00+00:00",
        ended_at="2031-01-01T00:00:05+00:00",
        check_options={"budget_s": 5.0},
    ).path
    doc = read_results(path)
    assert doc["schema_version"] == SCHEMA_VERSION and doc["run_id"] == "r1" and doc["verdict"] == "pass"
    assert doc["target"]["table_name"] == "EventLog" and doc["options"]["check"] == {"budget_s": 5.0}
    post = doc["routes"]["POST /events"]
    assert post["requests"] == 31 and post["failures"] == 1 and post["status"] == {"201": 30, "409": 1}
    assert set(post["latency_ms"]) == {"p50", "p90", "p95", "p99", "p999", "max"}
    assert doc["run"]["latency_source"] == "histograms.json"
    lat = sorted(r["latency_ms"] for r in records if r["route"] == "POST /events")
    assert abs(post["latency_ms"]["max"] - lat[-1]) / lat[-1] < 0.001  # HDR, 3 significant digits
    assert post["rps"] > 0
    assert [c["name"] for c in doc["checks"]] == ["dynamodb_contents", "throttling", "access_logs"]


def test_ledger_latencies_used_without_histograms(tmp_path: Path) -> None:
    records = make_records(writes=5, reads=0)
    write_run(tmp_path, records, histograms=False)
    doc = build_results(tmp_path, [], started_at="a", ended_at="b")
    assert doc["run"]["latency_source"] == "ledger"
    assert doc["routes"]["POST /events"]["latency_ms"]["max"] == max(r["latency_ms"] for r in records)
    assert doc["verdict"] == "error"  # nothing checked is not a pass


def test_unknown_results_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(RunDirError, match="schema_version 99 is not one this loadcheck reads"):
        read_results(tmp_path)


def test_verdict_rules() -> None:
    p = CheckResult("a", "pass", "ok")
    s = CheckResult("b", "skipped", "n/a", reason="x")
    e = CheckResult("c", "error", "no data", reason="x")
    f = CheckResult("d", "fail", "bad")
    assert verdict([p, s]).value == "pass" and verdict([s]).value == "error" and verdict([p, e]).value == "error"
    assert verdict([p, e, f]).value == "fail"


def _corrupt(run_dir: Path) -> Path:
    path = next((run_dir / "ledger").glob("*.jsonl.gz"))
    data = bytearray(path.read_bytes())
    for i in range(40, min(len(data) - 20, 400)):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def test_corrupt_ledger_raises_before_any_check(clean_run: Any) -> None:
    ctx, _ = clean_run
    path = _corrupt(ctx.run_dir)
    with pytest.raises(LedgerError) as exc:
        runner.run_checks(ctx.run_dir, context=ctx)
    assert str(path) in str(exc.value)


def test_ledger_cut_mid_record_is_an_error_for_a_completed_run(tmp_path: Path) -> None:
    write_run(tmp_path, make_records(writes=5, reads=0))
    path = next((tmp_path / "ledger").glob("*.jsonl.gz"))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-30]))  # the last record loses its tail
    ctx = CheckContext(
        run_dir=tmp_path,
        run=read_run(tmp_path),
        target=synthetic_target(),
        description=load_description(),
        clients=lambda s: None,
        clock=FakeClock(),
    )
    with pytest.raises(LedgerError, match="mid-record"):
        runner.run_checks(tmp_path, context=ctx)
    ctx.run["status"] = "interrupted"  # a killed run: check what it wrote
    ctx.run["ledger_records"] = None  # a killed writer never says how many it wrote
    assert runner.run_checks(tmp_path, names=["dynamodb_contents"], context=ctx)[0].status == "error"


def test_cli_exit_2_on_corrupt_ledger_naming_file(tmp_path: Path) -> None:
    write_run(tmp_path, make_records(writes=50, reads=0))
    path = _corrupt(tmp_path)
    res = CliRunner().invoke(cli, ["check", str(tmp_path), "--state-dir", str(tmp_path / "nostack")])
    assert res.exit_code == 2
    assert str(path) in res.output and "fix:" in res.output


def test_cli_without_stack_errors_and_exits_1(tmp_path: Path) -> None:
    write_run(tmp_path, make_records(writes=3, reads=1))
    res = CliRunner().invoke(
        cli,
        [
            "check",
            str(tmp_path),
            "--state-dir",
            str(tmp_path / "nostack"),
            "--check-budget",
            "1s",
            "--only",
            "dynamodb_contents",
            "--only",
            "access_logs",
            "-q",
        ],
    )
    assert res.exit_code == 1, res.output
    assert "ERROR dynamodb_contents" in res.output and "no local stack" in res.output
    doc = read_results(tmp_path)
    assert doc["verdict"] == "error" and [c["status"] for c in doc["checks"]] == ["error", "error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "bogus"], "unknown check 'bogus'"),
        (["--check-budget", "soon"], "--check-budget: 'soon' is not a duration"),
        (["--check-budget", "0s"], "--check-budget: '0s' must be longer than zero"),
    ],
)
def test_cli_bad_options_name_value_and_fix(tmp_path: Path, args: list[str], message: str) -> None:
    write_run(tmp_path, make_records(writes=1, reads=0))
    res = CliRunner().invoke(cli, ["check", str(tmp_path), *args])
    assert res.exit_code == 2 and message in res.output and "fix:" in res.output


def test_cli_not_a_run_directory(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["check", str(tmp_path)])
    assert res.exit_code == 2 and "no run.json" in res.output


def test_stack_restarted_after_the_run_is_error_not_lost(tmp_path: Path) -> None:
    import time

    from loadcheck.core.state import write_json_atomic

    run_dir = tmp_path / "run"
    write_run(run_dir, make_records(writes=3, reads=0))
    state = tmp_path / "state"
    write_json_atomic(
        state / "stack.json",
        {
            "region": REGION,
            "account_id": "123456789012",
            "api_id": "a1",
            "domain": "events.loadcheck.test",
            "gateway": {"url": "https://events.loadcheck.test:1", "port": 1, "address": "127.0.0.1"},
            "table_name": "EventLog",
            "access_log_group": GROUP,
            "lambda_log_groups": {},
            "aws_endpoint_url": "http://127.0.0.1:1",
            "credentials_file": str(tmp_path / "creds"),
            "profiles": {"admin": "a"},
            "started_at": time.time(),
            "state_dir": str(state),
        },
    )
    results = runner.run_checks(run_dir, state_dir=state, budget_s=1, names=["dynamodb_contents", "access_logs"])
    assert [r.status for r in results] == ["error", "error"]
    assert all("started after the run" in r.summary for r in results)


# -- the check budget: one option name, one environment variable, one parser ---------------------


@pytest.mark.parametrize(("value", "seconds"), [("2m", 120.0), ("1m30s", 90.0), ("45", 45.0), (30, 30.0)])
def test_budget_argument_and_environment_parse_alike(
    monkeypatch: pytest.MonkeyPatch, value: str | int, seconds: float
) -> None:
    monkeypatch.delenv(runner.BUDGET_ENV, raising=False)
    assert runner.resolve_budget(value) == seconds
    monkeypatch.setenv(runner.BUDGET_ENV, str(value))
    assert runner.resolve_budget(None) == seconds
    assert runner.resolve_budget(None, target_kind="aws") == seconds  # the variable beats the default
    assert runner.resolve_budget("5s") == 5.0  # the option beats the variable


def test_budget_defaults_per_target_cover_cloudwatch_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(runner.BUDGET_ENV, raising=False)
    assert runner.resolve_budget(None) == 60.0
    assert runner.resolve_budget(None, target_kind="aws") == runner.AWS_DELIVERY_S == 900.0


def test_bad_budget_variable_names_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runner.BUDGET_ENV, "soon")
    with pytest.raises(ConfigError) as err:
        runner.resolve_budget(None)
    assert err.value.message == "$LOADCHECK_CHECK_BUDGET: 'soon' is not a duration" and "2m" in (err.value.hint or "")


def test_run_refuses_a_bad_budget_variable_before_any_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runner.BUDGET_ENV, "2 minutes")
    res = CliRunner().invoke(cli, ["run", "--out", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "st")])
    # The variable reaches the option through the CLI's configuration, which names it.
    assert res.exit_code == 2, res.output
    assert "--check-budget: '2 minutes' is not a duration (from LOADCHECK_CHECK_BUDGET)" in res.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "st").exists()


def test_check_and_run_share_the_budget_option() -> None:
    for name in ("check", "run"):
        command = cli.commands[name]  # type: ignore[attr-defined]
        assert any(runner.BUDGET_OPTION in p.opts for p in command.params), name
        assert not any("--budget" in p.opts for p in command.params), name
