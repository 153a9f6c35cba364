"""``--run-id``, ``runs/latest`` and the ``--json`` document's schema (loadcheck/core/rundir.py,
loadcheck/commands/run_driver.py run_summary)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from loadcheck.bench.synthetic_reports import sample_checks
from loadcheck.bench.synthetic_reports import write_run as write_synthetic_run
from loadcheck.cli import cli
from loadcheck.commands.run_driver import run_summary
from loadcheck.core.errors import ConfigError, RunDirError
from loadcheck.core.results import CheckResult
from loadcheck.core.rundir import RunRecord, run_dir_of, verdict, write_run
from loadcheck.core.runids import LATEST, check_run_id, claim_run_dir, mark_latest, resolve_latest

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "run-summary.schema.json").read_text())


@pytest.mark.parametrize("good", ["ci-1234-1", "20261202T083459Z-a1b2c3", "nightly.3", "A_b"])
def test_safe_run_ids_are_taken(good: str) -> None:
    assert check_run_id(good) == good


@pytest.mark.parametrize("bad", ["", ".", "..", "../x", "a/b", "-x", ".hidden", "a b", "latest", "x" * 129, "é"])
def test_unsafe_run_ids_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_run_id(bad)
    assert repr(bad) in err.value.message and "letters, digits" in (err.value.hint or "")


def test_a_run_directory_is_never_reused(tmp_path: Path) -> None:
    first = claim_run_dir(tmp_path / "runs", "ci-1")
    assert first.is_dir() and first == (tmp_path / "runs" / "ci-1").resolve()
    (first / "run.json").write_text("{}")
    with pytest.raises(ConfigError, match="already exists"):
        claim_run_dir(tmp_path / "runs", "ci-1")
    assert (first / "run.json").read_text() == "{}"


def _run(runs: Path, run_id: str) -> Path:
    run_dir = claim_run_dir(runs, run_id)
    write_run(run_dir, RunRecord(run_id=run_id, status="complete"))
    return run_dir


def test_latest_symlink_is_replaced_and_followed(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    a = _run(runs, "a")
    mark_latest(a)
    assert os.readlink(runs / LATEST) == "a" and run_dir_of(runs / LATEST) == runs / "a"
    b = _run(runs, "b")
    mark_latest(b)
    assert os.readlink(runs / LATEST) == "b" and run_dir_of(runs / LATEST) == runs / "b"
    assert sorted(p.name for p in runs.iterdir()) == ["a", "b", LATEST]  # no temporary link left


def _no_symlinks(*args: object, **kwargs: object) -> None:
    raise OSError(1, "Operation not permitted")


def test_latest_text_file_where_symlinks_cannot_be_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    monkeypatch.setattr(os, "symlink", _no_symlinks)
    mark_latest(_run(runs, "a"))
    mark_latest(_run(runs, "b"))
    latest = runs / LATEST
    assert latest.is_file() and not latest.is_symlink() and latest.read_text() == "b\n"
    assert resolve_latest(latest) == runs / "b" and run_dir_of(latest) == runs / "b"
    latest.write_text("../../etc\n")
    with pytest.raises(RunDirError, match="does not hold a run id"):
        run_dir_of(latest)


@pytest.mark.parametrize("symlinks", [True, False])
def test_report_accepts_runs_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, symlinks: bool) -> None:
    runs = tmp_path / "runs"
    write_synthetic_run(runs / "a", checks=sample_checks(), seconds=5, rate=2)
    if not symlinks:
        monkeypatch.setattr(os, "symlink", _no_symlinks)
    mark_latest(runs / "a")
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(cli, ["report", "runs/latest"], prog_name="loadcheck")
    assert out.exit_code == 0, out.output
    assert (runs / "a" / "report.html").is_file() and (runs / "a" / "junit.xml").is_file()
    assert "runs/a/report.html" in out.stdout and "latest" not in out.stdout  # the run's own directory


def test_run_refuses_an_existing_run_id_before_anything_starts(tmp_path: Path) -> None:
    runs, state = tmp_path / "runs", tmp_path / "state"
    (runs / "ci-7").mkdir(parents=True)
    args = ["run", "--out", str(runs), "--state-dir", str(state), "--run-id"]
    out = CliRunner().invoke(cli, [*args, "ci-7"], prog_name="loadcheck")
    assert out.exit_code == 2, out.output
    assert out.stderr.splitlines()[0] == f"loadcheck: error: --run-id: {runs / 'ci-7'} already exists"
    assert "fix: choose a new run id" in out.stderr
    bad = CliRunner().invoke(cli, [*args, "../x"], prog_name="loadcheck")
    assert bad.exit_code == 2 and "'../x' is not a usable run id" in bad.stderr, bad.output
    assert not state.exists() and sorted(p.name for p in runs.iterdir()) == ["ci-7"]


def test_summary_document_matches_the_schema(tmp_path: Path) -> None:
    run = RunRecord(
        run_id="ci-1",
        status="complete",
        target={"kind": "local"},
        started_at="2026-12-02T08:00:00.000+00:00",
        ended_at="2026-12-02T08:00:10.000+00:00",
        thresholds=[
            {"name": "p95 all", "limit": 300.0, "actual": 412.5, "passed": False},
            {"name": "error rate", "limit": 0.01, "actual": None, "passed": False, "reason": "no requests"},
        ],
    )
    results = [
        CheckResult(name="dynamodb_contents", status="pass", summary="all 10 writes stored"),
        CheckResult(name="security", status="fail", summary="1 of 12 probes let through"),
    ]
    (tmp_path / "junit.xml").write_text("<testsuites/>")
    final = verdict(results, thresholds=run.thresholds)
    doc = run_summary(tmp_path, run, final, results, final.exit_status)
    jsonschema.validate(doc, SCHEMA)
    assert doc["verdict"] == "fail" and doc["exit_code"] == final.exit_status != 0
    assert doc["thresholds"][0] == {"name": "p95 all", "value": 412.5, "limit": 300.0, "passed": False}
    assert doc["reports"] == {"junit.xml": str(tmp_path / "junit.xml")}
    # --no-checks: no check list, and it says so.
    bare = run_summary(tmp_path, run, verdict(None), None, 0)
    jsonschema.validate(bare, SCHEMA)
    assert bare["checks_ran"] is False and bare["checks"] == []
    broken = dict(doc, verdict="maybe")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_a_directory_named_latest_is_left_alone(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    (runs / LATEST).mkdir(parents=True)
    with pytest.raises(OSError):
        mark_latest(_run(runs, "a"))
    assert sorted(p.name for p in runs.iterdir()) == ["a", LATEST]  # no temporary link left behind
