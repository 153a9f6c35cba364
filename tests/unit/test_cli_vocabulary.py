"""Every command and option of ``loadcheck`` follows docs/cli.md's vocabulary and exit codes.

The walk covers every subcommand (the benches too, loaded as ``--help`` loads them) and every
visible option: an option without help text, a name used outside its one meaning, a duration
that is not read as one, an exit status that is not in the table, or a docs/cli.md that lists
other options than the code has, each fails here.
"""

from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import click
import pytest

from loadcheck.core.errors import EXIT_PRECEDENCE, ExitCode
from loadcheck.core.runconfig import RunOptions
from loadcheck.params import Duration, Fraction, PercentagePoints, Rate, Rates
from tests.unit.cli_reference import DOC, options, render, section, walk

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [(path, cmd) for path, cmd in walk() if not isinstance(cmd, click.Group)]
OPTIONS = [(path, o) for path, cmd in COMMANDS for o in options(cmd)]
IDS = [f"{path} {o.opts[-1]}" for path, o in OPTIONS]

# Locust's short flags mean what they mean in Locust, wherever loadcheck uses them.
LOCUST_SHORT = {"-u": "--users", "-r": "--spawn-rate", "-t": "--duration", "-f": "--locustfile"}
DURATION_NAMES = {"--duration", "--run-time", "--step-duration", "--check-budget", "--warmup", "--soak"}
RATE_NAMES = {"--rate", "--target-rate"}
# Fractions whose syntax the thresholds own: plain text read by parse_fraction (5% or 0.05).
FRACTION_TEXT = {"--max-error-rate", "--max-server-error-rate"}
FRACTION_NAMES = {"--collisions", "--utilisation", *FRACTION_TEXT}
# Old spellings: kept only hidden (they warn or say the new name), never shown.
RETIRED = {"--rates", "--arrival-rate", "--json-out", "--identity-profile"}


def test_the_walk_reaches_every_command() -> None:
    paths = {p for p, _ in COMMANDS}
    assert {"loadcheck run", "loadcheck capacity", "loadcheck stack env", "loadcheck bench gateway"} <= paths
    assert len(OPTIONS) > 100


@pytest.mark.parametrize(("path", "opt"), OPTIONS, ids=IDS)
def test_every_option_has_help(path: str, opt: click.Option) -> None:
    assert (opt.help or "").strip(), f"{path} {opt.opts[-1]} has no help text"


@pytest.mark.parametrize(("path", "opt"), OPTIONS, ids=IDS)
def test_every_option_name_keeps_its_one_meaning(path: str, opt: click.Option) -> None:
    names = set(opt.opts) | set(opt.secondary_opts)
    where = f"{path} {'/'.join(opt.opts)}"
    assert not names & RETIRED, f"{where}: a retired name is shown"
    if "--json" in names:
        assert opt.is_flag and opt.name == "as_json", f"{where}: --json prints JSON on stdout; it takes no file"
    if "--out" in names:
        assert isinstance(opt.type, click.Path) and not opt.type.file_okay, f"{where}: --out is a directory"
        assert "director" in (opt.help or ""), f"{where}: --out's help says which directory"
    if "--state-dir" in names:
        assert isinstance(opt.type, click.Path) and not opt.type.file_okay, f"{where}: --state-dir is a directory"
    if "--profile" in names:
        assert opt.type is click.STRING and "AWS profile" in (opt.help or ""), f"{where}: --profile is the AWS profile"
    for short, long in LOCUST_SHORT.items():
        if short in names:
            assert long in names, f"{where}: {short} is Locust's {long}"
    if names & DURATION_NAMES:
        assert isinstance(opt.type, Duration), f"{where}: a duration is read by the Duration type"
    if names & RATE_NAMES:
        assert isinstance(opt.type, Rate), f"{where}: a rate is read by the Rate type"
    if "--steps" in names:
        assert isinstance(opt.type, Rates), f"{where}: --steps is a list of rates"
    if names & FRACTION_NAMES:
        text_ok = bool(names & FRACTION_TEXT) and opt.metavar == "FRACTION"
        assert isinstance(opt.type, Fraction) or text_ok, f"{where}: a fraction reads 5% and 0.05"
    if opt.type.name == "float" and not isinstance(opt.type, click.FloatRange):
        pytest.fail(f"{where}: a bare float: use Duration, Rate, Fraction or a FloatRange")


def test_the_vocabulary_types_read_both_spellings() -> None:
    assert Fraction().convert("5%", None, None) == Fraction().convert("0.05", None, None) == pytest.approx(0.05)
    assert PercentagePoints().convert("0.5pp", None, None) == pytest.approx(0.005)
    assert Duration().convert("1m30s", None, None) == 90.0 and Duration().convert("500ms", None, None) == 0.5
    assert Rates().convert("1,2,5", None, None) == (1.0, 2.0, 5.0)


def test_the_exit_code_table() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "PASSED": 0,
        "CHECK_FAILED": 1,
        "USAGE": 2,
        "THRESHOLD_FAILED": 3,
        "ERROR": 4,
        "TARGET_UNUSABLE": 5,
        "ABORTED": 6,
        "INTERRUPTED": 130,
    }
    assert [int(c) for c in EXIT_PRECEDENCE] == [4, 1, 130, 6, 3, 0]


def _exits(path: Path) -> list[tuple[int, str]]:
    """(line, argument) of every sys.exit / ctx.exit / SystemExit in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and node.args:
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("exit", "SystemExit"):
                found.append((node.lineno, ast.unparse(node.args[0])))
    return found


APP = sorted([REPO / "loadcheck" / "cli.py", *(REPO / "loadcheck" / "commands").glob("*.py")]) + sorted(
    (REPO / "loadcheck" / "bench").glob("*.py")
)


@pytest.mark.parametrize("module", APP, ids=[p.name for p in APP])
def test_every_exit_status_is_from_the_table(module: Path) -> None:
    """A command exits with an ExitCode (or a code a verdict or an error carries), never a bare number."""
    for line, arg in _exits(module):
        try:
            value = ast.literal_eval(arg)
        except ValueError:
            continue  # a name: an ExitCode, a verdict's code, an error's exit_code
        assert value in (0,), f"{module.name}:{line}: exits with the bare number {value}; use ExitCode"


def test_docs_cli_md_lists_the_options_the_code_has() -> None:
    assert section(DOC.read_text(encoding="utf-8")) == render(), (
        "docs/cli.md's option reference is out of date: run `.venv/bin/python -m tests.unit.cli_reference --write`"
    )


def test_docs_cli_md_shows_the_exit_code_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} | `{code.name}` |" in text, f"docs/cli.md lacks the row of {code.name}"


def test_vocabulary_values_are_plain_numbers_to_everything_else() -> None:
    """A duration or a list of rates keeps its text for --print-config, and copies, run options,
    run.json and the load config read it as plain numbers (capacity hands them to a run)."""
    seconds, rates = Duration().convert("2m", None, None), Rates().convert("1, 2,5", None, None)
    assert seconds == 120.0 and seconds.text == "2m" and rates == (1.0, 2.0, 5.0) and rates.text == "1, 2,5"
    assert copy.deepcopy(seconds).text == "2m" and copy.deepcopy(rates).text == "1, 2,5"
    opts = RunOptions(target="local", shape="step", steps=rates, step_duration_s=seconds, rate=None)
    data = json.loads(json.dumps(opts.to_dict()))
    assert data["steps"] == [1.0, 2.0, 5.0] and data["step_duration_s"] == 120.0
    assert RunOptions.from_dict(data).total_duration_s == 360.0
