"""`loadcheck capacity --write-description`: a changed, valid copy of the description, with a diff."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from loadcheck.bench.synthetic_reports import write_run
from loadcheck.cli import cli
from loadcheck.core.description import DEFAULT_DESCRIPTION, load_description
from loadcheck.core.description_copy import write_copy
from loadcheck.core.errors import ConfigError


def test_copy_applies_changes_and_keeps_the_handlers(tmp_path: Path) -> None:
    out = tmp_path / "planned.json"
    diff = write_copy(DEFAULT_DESCRIPTION, out, [(["table", "write_capacity"], 7), (["throttle", "rate_limit"], 250)])
    desc = load_description(out)
    assert desc.table.write_capacity == 7 and desc.throttle.rate_limit == 250
    assert desc.handlers_dir == load_description().handlers_dir  # still the reference handlers
    assert '-    "write_capacity": 1,' in diff and '+    "write_capacity": 7,' in diff
    assert '+    "rate_limit": 250,' in diff


def test_copy_never_replaces_the_tracked_description(tmp_path: Path) -> None:
    before = DEFAULT_DESCRIPTION.read_bytes()
    for target in (DEFAULT_DESCRIPTION, DEFAULT_DESCRIPTION.parent / "planned.auto.tfvars.json"):
        with pytest.raises(ConfigError, match="elsewhere"):
            write_copy(DEFAULT_DESCRIPTION, target, [(["table", "write_capacity"], 7)])
    assert DEFAULT_DESCRIPTION.read_bytes() == before
    assert not (DEFAULT_DESCRIPTION.parent / "planned.auto.tfvars.json").exists()


def test_copy_refuses_an_invalid_result(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no object at functions.nope"):
        write_copy(DEFAULT_DESCRIPTION, tmp_path / "x.json", [(["functions", "nope", "reserved_concurrency"], 3)])
    with pytest.raises(ConfigError):  # a capacity of 0 is not a valid description
        write_copy(DEFAULT_DESCRIPTION, tmp_path / "y.json", [(["table", "write_capacity"], 0)])
    assert not (tmp_path / "y.json").exists()


def test_capacity_writes_the_planned_description(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", steps=[0.5, 2, 4], step_duration_s=10, mix={"writes": 1}, burst_s=0, checks=None)
    out = tmp_path / "planned" / "stack.json"
    result = CliRunner().invoke(
        cli, ["capacity", "--from-run", str(run), "--target-rate", "4", "--write-description", str(out)]
    )
    assert result.exit_code == 0, result.output
    planned = load_description(out)
    # 4 writes/s of 1 WCU at 70 % target utilisation: ceil(4 / 0.7) = 6 WCU (the plan's recommendation)
    assert planned.table.write_capacity == 6
    assert '+    "write_capacity": 6,' in result.output and f"--description {out}" in result.output
