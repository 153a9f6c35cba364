"""Bad invocations: each is one error in the one format, exit 2, and nothing started.

Each case is a wrong value or a wrong combination of options a new user tried; each must be
refused while the options are read (before any stack starts or any load is sent) with::

    loadcheck: error: <what is wrong, naming the value>
      fix: <how>

on stderr: no traceback, no click usage dump, no click "Error:" line, and the documented exit
code 2 (docs/cli.md). They run in process through click's CliRunner, in a scratch directory with
its own state directory, which must stay without a stack afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from loadcheck.cli import cli
from loadcheck.core.errors import ExitCode

CASES: list[tuple[list[str], str]] = [
    # run: shapes
    (["run", "--shape", "ramp"], "--shape ramp needs -u/--users"),
    (["run", "--shape", "rampx"], "'rampx' is not one of 'constant-rate', 'step', 'ramp'"),
    (["run", "--steps", "1,2", "--duration", "10s"], "--duration does not apply to --shape step"),
    (["run", "--steps", "1,2", "--step-duration", "5s", "-t", "1m"], "--duration does not apply to --shape step"),
    (["run", "--steps", "1,2", "--step-duration", "5s", "--rate", "3"], "--rate does not apply to --shape step"),
    (["run", "--step-duration", "5s"], "--step-duration does not apply to --shape constant-rate"),
    (["run", "--shape", "step", "--steps", "1,2"], "--shape step needs --steps and --step-duration"),
    (["run", "--think-time", "1-2"], "--think-time does not apply to --shape constant-rate"),
    (["run", "--spawn-rate", "2"], "--spawn-rate does not apply to --shape constant-rate"),
    (["run", "--shape", "ramp", "--users", "2", "--rate", "5"], "--rate 5 does not apply to --shape ramp"),
    # run: values
    (["run", "--max-error-rate", "5x"], "--max-error-rate: the limit '5x' in '5x' is not a fraction"),
    (["run", "--max-server-error-rate", "2"], "--max-server-error-rate: the limit '2' in '2' is ambiguous"),
    (["run", "--threshold", "p95<fast"], "p95<fast"),
    (["run", "--threshold", "error_rate<5x"], "error_rate<5x"),
    (["run", "--collisions", "150%"], "--collisions: '150%' is outside 0..1"),
    (["run", "--rate", "0"], "--rate: '0' must be above 0"),
    (["run", "--rate", "fast"], "--rate: 'fast' is not a rate"),
    (["run", "--duration", "60sec"], "--duration: '60sec' is not a duration"),
    (["run", "-t", "0"], "--duration: '0' must be longer than zero"),
    (["run", "--users", "0"], "--users': 0 is not in the range x>=1"),
    (["run", "--steps", "1,fast", "--step-duration", "5s"], "--steps: 'fast' is not a rate"),
    (["run", "--mix", "writes=x"], "weight of writes is 'x'"),
    (["run", "--fault", "drop-everything=1"], "unknown fault 'drop-everything'"),
    (["run", "--workers", "-1"], "--workers': -1 is not in the range x>=0"),
    (["run", "--master-port", "70000"], "--master-port': 70000 is not in the range 1<=x<=65535"),
    (["run", "-f", "nowhere.py"], "--locustfile: 'nowhere.py' is not a file"),
    (["run", "--check-budget", "soon"], "--check-budget: 'soon' is not a duration"),
    # run: targets and roles
    (["run", "--target", "local", "--profile", "x"], "--profile does not apply to --target local"),
    (["run", "--tf-dir", "somewhere"], "--tf-dir does not apply to --target local"),
    (["run", "--ca-bundle", "ca.pem"], "--ca-bundle does not apply to --target local"),
    (["run", "--resolve", "a.test:443:127.0.0.1"], "--resolve does not apply to --target local"),
    (
        ["run", "--target", "aws", "--tf-outputs", "x.json", "--fault", "drop-writes=0.1"],
        "--fault applies to the local target only",
    ),
    (["run", "--master", "--worker"], "--master and --worker exclude each other"),
    (["run", "--master-host", "10.0.0.5"], "--master-host does not apply without --worker"),
    (["run", "--no-checks", "--check-budget", "1m"], "--check-budget does not apply with --no-checks"),
    (["run", "--target", "gcp"], "'gcp' is not one of 'local', 'aws'"),
    # click's own: unknown option, missing value, unknown command
    (["run", "--bogus"], "No such option '--bogus'"),
    (["run", "--rat", "5"], "No such option '--rat'"),
    (["run", "--users"], "Option '--users' requires an argument"),
    (["deploy"], "No such command 'deploy'"),
    # stack
    (["stack", "env", "--profile", "admin"], "`stack env` names an identity with --identity"),
    (["stack", "env", "--identity", "root"], "'root' is not one of 'admin', 'requester', 'denied', 'search-admin'"),
    (["stack", "up", "--detach", "--port", "gateway=http"], "--port 'gateway=http' is not SERVICE=PORT"),
    (["stack", "up", "--burst-start", "half"], "'half' is not one of 'full', 'empty'"),
    # capacity
    (["capacity", "--rates", "0"], "--rates: '0' must be above 0"),
    (["capacity", "--steps", "1,x"], "--steps: 'x' is not a rate"),
    (["capacity", "--from-run", "runs/x", "--steps", "1,2"], "--steps does not apply with --from-run"),
    (["capacity", "--utilisation", "170%"], "--utilisation: '170%' is outside 0..1"),
    (["capacity", "--step-duration", "soon"], "--step-duration: 'soon' is not a duration"),
    # compare
    (["compare", "a", "b", "--max-p95-regression", "10x"], "--max-p95-regression: '10x' is not a fraction"),
    (["compare", "a", "b", "--max-error-rate-increase", "2"], "--max-error-rate-increase: '2' is ambiguous"),
    (["compare", "a", "b", "--confidence", "100%"], "--confidence: '100%' must be from 50%"),
    (["compare", "a", "b", "--format", "yaml"], "'yaml' is not one of 'table', 'markdown', 'json'"),
    (["compare", "a"], "Missing argument 'CURRENT'"),
    # smoke, corpus: aws options on the local target
    (["smoke", "--tf-outputs", "x.json"], "--tf-outputs does not apply to --target local"),
    (["corpus", "load", "--profile", "p"], "--profile does not apply to --target local"),
    # bench
    (["bench", "load", "--out", "figures.json"], "--out names the directory the figures are written into"),
    (["bench", "load", "--soak", "5q"], "--soak: '5q' is not a duration"),
    (["bench", "gateway", "--profile", "prof"], "the py-spy profiles' directory is --py-spy-dir"),
    (["bench", "aws", "-t", "4"], "No such option '-t'"),
]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOADCHECK_STATE_DIR", str(tmp_path / "state"))
    for name in ("LOADCHECK_RESOLVE", "LOADCHECK_CHECK_BUDGET", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_there_are_at_least_35_cases() -> None:
    assert len(CASES) >= 35


@pytest.mark.parametrize(("args", "needle"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_bad_invocation_is_one_error_in_the_one_format(scratch: Path, args: list[str], needle: str) -> None:
    result = CliRunner().invoke(cli, args, prog_name="loadcheck", catch_exceptions=False)
    err = result.stderr
    assert result.exit_code == ExitCode.USAGE == 2, (args, result.output)
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("loadcheck: error: ")]
    assert len(errors) == 1, err
    assert needle in lines[errors[0]], err
    assert lines[errors[0] + 1].startswith("  fix: ") and len(lines[errors[0] + 1]) > len("  fix: "), err
    assert "Traceback" not in err and "Usage:" not in err and "Error:" not in err, err
    # Refused while reading the options: no stack, no run directory, nothing on stdout.
    assert not (scratch / "state" / "stack.json").exists() and not (scratch / "runs").exists()
    assert result.stdout == "", result.stdout


def test_an_old_option_name_warns_and_still_works(scratch: Path) -> None:
    """--rates is --steps now: it warns, then is read by the same rules."""
    result = CliRunner().invoke(cli, ["capacity", "--rates", "1,x"], prog_name="loadcheck")
    assert result.exit_code == 2 and "--rates: 'x' is not a rate" in result.stderr
    result = CliRunner().invoke(cli, ["run", "--rates", "1,2", "--shape", "constant-rate"], prog_name="loadcheck")
    assert "loadcheck: warning: --rates is deprecated; use --steps" in result.stderr
    assert result.exit_code == 2 and "--rates does not apply to --shape constant-rate" in result.stderr
