"""Configuration of every option: flags > environment > file > defaults, through the real CLI.

Each test invokes ``loadcheck`` in-process (click's CliRunner) in an empty working directory,
with every ``LOADCHECK_*`` variable of the caller's environment removed, and reads what
``--print-config`` says, or the error (``loadcheck: error: ...`` then ``  fix: ...``, exit 2).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from loadcheck.cli import cli
from loadcheck.commands import config

ROW = re.compile(r"^(?:# )?(?P<key>[\w-]+) = (?P<value>.+?)\s+# (?P<source>.+)$")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("LOADCHECK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="loadcheck")


def effective(result: Result) -> dict[str, tuple[str, str]]:
    """--print-config's rows: key -> (value as printed, source)."""
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.stdout.splitlines():
        m = ROW.match(line)
        if m:
            rows[m["key"]] = (m["value"], m["source"])
    return rows


def test_run_precedence_flag_env_file_default(tmp_path: Path) -> None:
    (tmp_path / "loadcheck.toml").write_text(
        'seed = 7\nstate-dir = ".lc"\n'
        '[run]\nduration = "2m"\nworkers = 1\nrate = 2.0\nfault = "ddb-latency=1ms"\nseed = 8\n'
    )
    env = {"LOADCHECK_WORKERS": "5", "LOADCHECK_RUN_WORKERS": "3", "LOADCHECK_RATE": "9", "LOADCHECK_STATE_DIR": ""}
    rows = effective(invoke("run", "--print-config", "--rate", "4", env=env))
    file = tmp_path / "loadcheck.toml"
    assert rows["rate"] == ("4.0", "flag --rate")  # flag over env over file
    assert rows["workers"] == ("3", "env LOADCHECK_RUN_WORKERS")  # the command's variable over the shared one
    assert rows["duration"] == ('"2m"', f"file {file} [run] duration")
    assert rows["seed"] == ("8", f"file {file} [run] seed")  # the command's table over the top level
    assert rows["state-dir"] == ('".lc"', f"file {file} state-dir")  # an empty variable is unset
    assert rows["fault"] == ('["ddb-latency=1ms"]', f"file {file} [run] fault")
    assert rows["think-time"] == ('"0.5-1.5"', "default")
    assert rows["users"] == ("(not set)", "default")
    assert not (tmp_path / ".lc").exists() and not (tmp_path / "runs").exists()  # nothing started


def test_capacity_precedence(tmp_path: Path) -> None:
    (tmp_path / "loadcheck.toml").write_text(
        'seed = 7\nmix = "writes=1"\n[capacity]\nrates = "1,2"\nutilisation = 0.5\n'
    )
    env = {"LOADCHECK_CAPACITY_STEP_DURATION": "5s", "LOADCHECK_SEED": "9", "LOADCHECK_UTILISATION": "0.6"}
    rows = effective(invoke("capacity", "--print-config", "--seed", "3", env=env))
    file = tmp_path / "loadcheck.toml"
    assert rows["seed"] == ("3", "flag --seed")
    assert rows["step-duration"] == ('"5s"', "env LOADCHECK_CAPACITY_STEP_DURATION")
    assert rows["utilisation"] == ("0.6", "env LOADCHECK_UTILISATION")  # env over the file's [capacity]
    assert rows["rates"] == ('"1,2"', f"file {file} [capacity] rates")
    assert rows["mix"] == ('"writes=1"', f"file {file} mix")
    assert rows["account-concurrency"] == ("1000", "default")


def test_pyproject_table_and_explicit_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.loadcheck.run]\nduration = "1m"\n')
    rows = effective(invoke("run", "--print-config"))
    assert rows["duration"] == ('"1m"', f"file {tmp_path / 'pyproject.toml'} [run] duration")
    # loadcheck.toml is preferred to pyproject.toml; --config / $LOADCHECK_CONFIG to both.
    (tmp_path / "loadcheck.toml").write_text('[run]\nduration = "2m"\n')
    assert effective(invoke("run", "--print-config"))["duration"][0] == '"2m"'
    other = tmp_path / "ci.toml"
    other.write_text('[run]\nduration = "3m"\n')
    assert effective(invoke("--config", str(other), "run", "--print-config"))["duration"][0] == '"3m"'
    assert effective(invoke("run", "--print-config", env={"LOADCHECK_CONFIG": str(other)}))["duration"][0] == '"3m"'


def test_repeatable_option_from_the_environment_splits_on_semicolons() -> None:
    env = {"LOADCHECK_RUN_MAX_P95_MS": "POST /events=300; all=500\n", "LOADCHECK_CHAOS": "kill:gateway@10s"}
    rows = effective(invoke("run", "--print-config", env=env))
    assert rows["max-p95-ms"] == ('["POST /events=300", "all=500"]', "env LOADCHECK_RUN_MAX_P95_MS")
    assert rows["chaos"] == ('["kill:gateway@10s"]', "env LOADCHECK_CHAOS")


def test_subcommands_of_groups_are_configured(tmp_path: Path) -> None:
    (tmp_path / "loadcheck.toml").write_text('[stack]\nstate-dir = "s1"\n[stack.up]\ndetach = true\n')
    rows = effective(invoke("stack", "up", "--print-config", env={"LOADCHECK_STACK_UP_BURST_START": "empty"}))
    assert rows["state-dir"] == ('"s1"', f"file {tmp_path / 'loadcheck.toml'} [stack] state-dir")
    assert rows["detach"] == ("true", f"file {tmp_path / 'loadcheck.toml'} [stack.up] detach")
    assert rows["burst-start"] == ('"empty"', "env LOADCHECK_STACK_UP_BURST_START")
    assert not (tmp_path / "s1").exists()


def _error(result: Result) -> tuple[str, str]:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("loadcheck: error: ") and lines[1].startswith("  fix: "), lines
    return lines[0], lines[1]


@pytest.mark.parametrize(
    "text,message,fix",
    [
        ("[run]\nworkrs = 2\n", "[run] workrs = 2: no command has an option --workrs", "did you mean 'workers'?"),
        (
            '[capacity]\nfault = "x=1"\n',
            '[capacity] fault = "x=1": `loadcheck capacity` has no option --fault',
            "move it to [run]",
        ),
        (
            '[run]\nworkers = "many"\n',
            "[run] workers = \"many\": 'many' is not a valid integer",
            "give --workers a valid value",
        ),
        (
            '[run]\ntarget = "azure"\n',
            "[run] target = \"azure\": 'azure' is not one of 'local', 'aws'",
            "give --target",
        ),
        (
            '[run]\nduration = ["1m", "2m"]\n',
            '[run] duration = ["1m", "2m"]: --duration takes one value',
            'duration = "1m"',
        ),
        ("[runn]\nseed = 1\n", "[runn]: `loadcheck runn` is no command", "name a table after a command"),
        ("[run\n", "not valid TOML", "fix the syntax"),
    ],
)
def test_a_bad_file_names_file_key_value_and_fix(tmp_path: Path, text: str, message: str, fix: str) -> None:
    (tmp_path / "loadcheck.toml").write_text(text)
    first, second = _error(invoke("stack", "status", "--print-config"))  # any command: the whole file is checked
    assert str(tmp_path / "loadcheck.toml") in first and message in first, first
    assert fix in second, second


def test_a_bad_environment_value_names_the_variable() -> None:
    first, second = _error(invoke("run", "--print-config", env={"LOADCHECK_RUN_WORKERS": "x"}))
    assert first == "loadcheck: error: LOADCHECK_RUN_WORKERS = 'x': --workers: 'x' is not a valid integer"
    assert second == "  fix: correct or unset LOADCHECK_RUN_WORKERS"


def test_a_value_the_command_refuses_names_where_it_came_from(tmp_path: Path) -> None:
    first, second = _error(invoke("run", "--out", str(tmp_path / "runs"), env={"LOADCHECK_RUN_DURATION": "10min"}))
    assert first == "loadcheck: error: --duration: '10min' is not a duration (from LOADCHECK_RUN_DURATION)", first
    assert second.endswith("(in LOADCHECK_RUN_DURATION)"), second
    (tmp_path / "loadcheck.toml").write_text('[run]\ncollisions = "2"\n')
    first, _ = _error(invoke("run", "--out", str(tmp_path / "runs")))
    assert f"(from {tmp_path / 'loadcheck.toml'} [run] collisions)" in first, first
    assert not (tmp_path / "runs").exists()


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    first, second = _error(invoke("run", "--print-config", env={"LOADCHECK_CONFIG": "nowhere.toml"}))
    assert first == "loadcheck: error: $LOADCHECK_CONFIG: 'nowhere.toml' is not a file"
    assert "unset LOADCHECK_CONFIG" in second
    first, _ = _error(invoke("--config", "nowhere.toml", "run"))
    assert first == "loadcheck: error: --config: 'nowhere.toml' is not a file"


def _leaf_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli)
    found = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if isinstance(cmd, click.Group):
                walk(cmd, (*path, name))
            elif cmd is not None:
                found.append(((*path, name), cmd))

    walk(cli, ())
    return found


def test_every_option_of_every_command_has_both_variables_and_print_config() -> None:
    commands = _leaf_commands()
    assert {p for p, _ in commands} >= {("run",), ("capacity",), ("stack", "up"), ("bench", "load")}
    for path, cmd in commands:
        assert config.PRINT_OPTION in [o for p in cmd.params for o in p.opts], path
        for opt in config.configurable(cmd):
            long = config.long_names(opt)[0]
            envvar = list(opt.envvar or ())
            specific = "_".join(("LOADCHECK", *path, long)).upper().replace("-", "_")
            assert envvar[0] == specific and f"LOADCHECK_{long.upper().replace('-', '_')}" in envvar, (path, envvar)


def test_no_variable_means_two_options() -> None:
    """LOADCHECK_RUN_ID must not be both `run --id` and `--run-id`: each name means one option name;
    the variables loadcheck reads for other purposes are no option's."""
    meaning: dict[str, str] = {}
    for path, cmd in _leaf_commands():
        for opt in config.configurable(cmd):
            for name in opt.envvar or ():
                long = next(n for n in config.long_names(opt) if name.endswith(n.upper().replace("-", "_")))
                assert meaning.setdefault(name, long) == long, (name, meaning[name], long, path)
    others = {config.CONFIG_ENV, "LOADCHECK_DISK_RESERVE_MB", "LOADCHECK_TERRAFORM", "LOADCHECK_AWS_TEST"}
    others |= {"LOADCHECK_FUZZ_EXAMPLES", "LOADCHECK_AWS_PROFILE", "LOADCHECK_API_URL", "LOADCHECK_ADMIN_TOKEN"}
    others |= {"LOADCHECK_SEARCH_ENDPOINT"}
    assert not others & set(meaning), others & set(meaning)
    assert {"LOADCHECK_STATE_DIR", "LOADCHECK_CHECK_BUDGET", "LOADCHECK_RESOLVE"} <= set(meaning)


def test_the_example_file_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "loadcheck.toml"
    rows = effective(invoke("--config", str(example), "run", "--print-config"))
    assert all(src.startswith(("file", "default")) for _, src in rows.values())
    assert any(src.startswith("file") for _, src in rows.values())


def test_an_option_with_two_long_names_reads_both_most_specific_first() -> None:
    cmd = click.Command("run", params=[click.Option(["-t", "--run-time", "--duration", "duration"])])
    config.prepare_command(cmd, ("run",))
    (opt, _print) = cmd.params
    assert opt.envvar == [
        "LOADCHECK_RUN_RUN_TIME",
        "LOADCHECK_RUN_DURATION",
        "LOADCHECK_RUN_TIME",
        "LOADCHECK_DURATION",
    ]
    assert config.long_names(opt) == ["run-time", "duration"]  # (the file takes either key)
