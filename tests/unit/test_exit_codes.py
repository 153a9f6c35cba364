"""Each exit code of docs/cli.md's table, held: the verdict's rule and precedence, the errors'
codes, and the commands that need no stack answering through click as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from loadcheck.bench.synthetic_reports import sample_checks, write_run
from loadcheck.cli import cli
from loadcheck.commands import stack as stack_command
from loadcheck.commands.run_steps import locust_commands
from loadcheck.core.errors import (
    ConfigError,
    DescriptionError,
    ExitCode,
    LedgerError,
    LoadcheckError,
    RunDirError,
    StackAlreadyRunning,
    StackError,
    StackNotRunning,
    TargetError,
    worst,
)
from loadcheck.core.results import CheckResult
from loadcheck.core.runconfig import RunOptions
from loadcheck.core.rundir import Verdict, verdict, verdict_of_results

P = CheckResult("a", "pass", "ok")
F = CheckResult("b", "fail", "2 lost")
E = CheckResult("c", "error", "no data", reason="stack stopped")
HELD = {"name": "p95 all", "passed": True, "actual": 10, "limit": 800}
BROKEN = {"name": "p95 all", "passed": False, "actual": 900, "limit": 800}


@pytest.mark.parametrize(
    ("checks", "thresholds", "status", "code"),
    [
        ([P], [HELD], "complete", ExitCode.PASSED),
        ([P, F], [HELD], "complete", ExitCode.CHECK_FAILED),
        ([P], [BROKEN], "complete", ExitCode.THRESHOLD_FAILED),
        ([P, E], [HELD], "complete", ExitCode.ERROR),
        ([P], [HELD], "interrupted", ExitCode.INTERRUPTED),
        ([P], [BROKEN], "aborted", ExitCode.ABORTED),
        ([P], [HELD], "running", ExitCode.ERROR),
        # precedence 4 > 1 > 130 > 6 > 3 > 0
        ([P, F, E], [BROKEN], "interrupted", ExitCode.ERROR),
        ([P, F], [BROKEN], "interrupted", ExitCode.CHECK_FAILED),
        ([P], [BROKEN], "interrupted", ExitCode.INTERRUPTED),
        ([P, F], [BROKEN], "aborted", ExitCode.CHECK_FAILED),
    ],
)
def test_the_verdict_picks_the_exit_code(
    checks: list[CheckResult], thresholds: list[dict[str, object]], status: str, code: ExitCode
) -> None:
    v = verdict(checks, thresholds=thresholds, run_status=status)
    assert v.exit_code == code, v
    assert v.passed == (code == ExitCode.PASSED)


def test_what_else_the_verdict_weighs() -> None:
    assert verdict([P], baseline_broken=["p95 +40%"]).exit_code == ExitCode.THRESHOLD_FAILED
    assert verdict([P], ledger_problems=["cut"]).exit_code == ExitCode.ERROR
    assert verdict(None, unchecked=["checks could not run"]).exit_code == ExitCode.ERROR
    assert verdict(None).exit_code == ExitCode.PASSED  # --no-checks, nothing else wrong
    lost = [{"service": "aws", "fatal": True, "down_at": "t"}]
    assert verdict([F], outages=lost).exit_code == ExitCode.ERROR
    assert worst([]) == ExitCode.PASSED and worst([ExitCode.ABORTED, ExitCode.INTERRUPTED]) == ExitCode.INTERRUPTED
    assert Verdict("fail").exit_code == ExitCode.CHECK_FAILED and Verdict("error").exit_code == ExitCode.ERROR


@pytest.mark.parametrize(
    ("checks", "thresholds", "status"),
    [
        ([P], [HELD], "complete"),
        ([P, F], [HELD], "complete"),
        ([P], [BROKEN], "complete"),
        ([P, E], [BROKEN], "complete"),
        ([P], [HELD], "interrupted"),
        ([P], [BROKEN], "aborted"),
    ],
)
def test_a_results_document_gives_the_same_code(
    checks: list[CheckResult], thresholds: list[dict[str, object]], status: str
) -> None:
    """`loadcheck check` exits with the code of results.json: the same as the run's."""
    v = verdict(checks, thresholds=thresholds, run_status=status)
    doc = {
        "verdict": v.value,
        "verdict_reasons": list(v.reasons),
        "checks": [c.to_dict() for c in checks],
        "thresholds": thresholds,
        "run": {"status": status},
    }
    assert verdict_of_results(doc).exit_code == v.exit_code


def test_a_broken_baseline_budget_in_results_is_3() -> None:
    doc = {"verdict": "fail", "verdict_reasons": ["baseline: p95 +40%"], "checks": [P.to_dict()], "run": {}}
    assert verdict_of_results(doc).exit_code == ExitCode.THRESHOLD_FAILED


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (LoadcheckError("x"), ExitCode.ERROR),
        (ConfigError("x"), ExitCode.USAGE),
        (DescriptionError("x", path="d.json"), ExitCode.USAGE),
        (StackError("x"), ExitCode.TARGET_UNUSABLE),
        (StackNotRunning("x"), ExitCode.TARGET_UNUSABLE),
        (StackAlreadyRunning("x"), ExitCode.TARGET_UNUSABLE),
        (TargetError("x"), ExitCode.TARGET_UNUSABLE),
        (RunDirError("x"), ExitCode.ERROR),
        (LedgerError("x", path="l.gz"), ExitCode.ERROR),
    ],
)
def test_every_error_carries_its_code(error: LoadcheckError, code: ExitCode) -> None:
    assert error.exit_code == code


# --------------------------------------------------------------------------------------------
# The commands, through click


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOADCHECK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("LOADCHECK_RESOLVE", raising=False)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(cli, list(args), prog_name="loadcheck", catch_exceptions=False)
    return int(r.exit_code), r.stdout, r.stderr


def test_0_a_run_rendered_and_compared(scratch: Path) -> None:
    run = write_run(scratch / "r1", checks=sample_checks())
    assert invoke("report", str(run))[0] == ExitCode.PASSED
    assert invoke("compare", str(run), str(run))[0] == ExitCode.PASSED
    assert invoke("--version")[0] == ExitCode.PASSED and invoke("run", "--help")[0] == ExitCode.PASSED


def test_2_bad_options(scratch: Path) -> None:
    code, _, err = invoke("report", "--bogus")
    assert code == ExitCode.USAGE and err.startswith("loadcheck: error: No such option '--bogus'")


def test_4_an_unreadable_run_directory(scratch: Path) -> None:
    (scratch / "empty").mkdir()
    code, _, err = invoke("report", str(scratch / "empty"))
    assert code == ExitCode.ERROR and "run.json" in err and "fix:" in err
    run = write_run(scratch / "r1", checks=sample_checks())
    (run / "run.json").write_text("{")
    assert invoke("compare", str(run), str(run))[0] == ExitCode.ERROR


@pytest.mark.parametrize(
    "args",
    [("stack", "status"), ("stack", "status", "--json"), ("stack", "env"), ("stack", "outputs"), ("smoke",)],
)
def test_5_no_local_stack(scratch: Path, args: tuple[str, ...]) -> None:
    code, _, err = invoke(*args)
    assert code == ExitCode.TARGET_UNUSABLE, err


def test_5_terraform_outputs_that_describe_no_stack(scratch: Path) -> None:
    (scratch / "empty.json").write_text("{}")
    for args in (
        ("run", "--target", "aws", "--tf-outputs", "nowhere.json"),
        ("smoke", "--target", "aws", "--tf-outputs", "empty.json"),
    ):
        code, _, err = invoke(*args)
        assert code == ExitCode.TARGET_UNUSABLE and "fix:" in err, err
    assert not (scratch / "runs").exists()


def test_130_interrupted_outside_a_run(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def ctrl_c(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(stack_command.supervisor, "status", ctrl_c)
    code, _, err = invoke("stack", "status")
    assert code == ExitCode.INTERRUPTED and "interrupted" in err


def test_locust_exits_0_when_requests_fail(tmp_path: Path) -> None:
    """Failed requests are the checks' to judge; a Locust process's status is its own health."""
    cmds = locust_commands(
        RunOptions(workers=2), cfg_path=tmp_path / "c.json", run_dir=tmp_path, url="https://x.test", master_port=1
    )
    for argv in [cmds["main"], *cmds["workers"]]:
        assert argv[argv.index("--exit-code-on-error") + 1] == "0"
