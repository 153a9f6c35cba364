"""One verdict in every artefact; a damaged ledger is never checked; evidence is never overwritten."""

from __future__ import annotations

import gzip
import json
import zlib
from html import escape
from pathlib import Path

import pytest
from click.testing import CliRunner

from loadcheck.bench.synthetic_checks import make_records
from loadcheck.bench.synthetic_checks import write_run as write_checks_run
from loadcheck.bench.synthetic_reports import sample_checks, write_run
from loadcheck.cli import cli
from loadcheck.core.errors import ConfigError
from loadcheck.core.results import CheckResult
from loadcheck.core.rundir import (
    HISTORY_DIR,
    RunRecord,
    ledger_state,
    read_run,
    verdict,
    write_results,
)
from loadcheck.core.rundir import (
    write_run as write_run_record,
)
from reports import render_all

P = CheckResult("a", "pass", "ok", figures={"n": 1})
S = CheckResult("b", "skipped", "nothing to judge", reason="no writes")
E = CheckResult("c", "error", "no data", reason="stack stopped")
F = CheckResult("d", "fail", "2 lost")


def test_verdict_rules() -> None:
    assert verdict([P, S]).value == "pass"
    assert verdict([S, S]).value == "error"  # nothing verified is not a pass
    assert verdict([E, S]).value == "error"
    assert verdict([P, E]).value == "error"
    assert verdict([P, E, F]).value == "fail"
    assert verdict([]).value == "error"
    bad = [{"name": "server error rate", "limit": 0.01, "actual": 0.1, "passed": False}]
    assert verdict([P], thresholds=bad).value == "fail"
    assert "threshold server error rate" in verdict([P], thresholds=bad).reasons[0]
    assert verdict([P], run_status="interrupted").value == "fail"
    assert verdict([P], ledger_problems=["ledger holds 0 of 192"]).value == "error"
    assert verdict([P], baseline_broken=["p95 +60%"]).value == "fail"
    assert verdict(None).value == "pass" and verdict(None).reasons == ("load only: no checks ran",)
    assert verdict(None, run_status="interrupted").value == "fail"
    assert verdict(None, unchecked=["checks could not run: no stack"]).value == "error"


def _run(tmp_path: Path, *, checks: list[CheckResult] | None = None) -> Path:
    return write_run(tmp_path / "r", checks=sample_checks() if checks is None else checks, seconds=5, rate=5)


ABORTED = {
    "threshold": "POST /events:p90<200ms",
    "reason": "25 requests already at or above 200ms, more than the 24 of at most 240 it allows",
    "elapsed_s": 8.1,
    "at": "2027-01-15T08:00:08.100+00:00",
}


def test_an_aborted_run_fails_and_says_why() -> None:
    v = verdict([P], run_status="aborted", aborted=ABORTED)
    assert v.value == "fail" and v.reasons == (
        "the run was aborted 8.1 s into the load (--abort-on-fail): threshold POST /events:p90<200ms could no "
        "longer pass (25 requests already at or above 200ms, more than the 24 of at most 240 it allows); not all "
        "planned load was sent",
    )
    assert "aborted (--abort-on-fail)" in verdict(None, run_status="aborted").reasons[0]


def test_aborted_run_everywhere(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    _set_run(run_dir, status="aborted", aborted=ABORTED)
    assert read_run(run_dir)["aborted"] == ABORTED  # run.json holds it, and reads back
    _rebuild_results(run_dir, sample_checks())
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["run"]["status"] == "aborted" and doc["run"]["aborted"] == ABORTED
    render_all(run_dir)
    assert "the run was aborted 8.1 s into the load" in (run_dir / "summary.md").read_text()
    junit = (run_dir / "junit.xml").read_text()
    assert 'name="run_completed"' in junit and "threshold POST /events:p90&lt;200ms could no longer pass" in junit
    assert "the run was aborted 8.1 s into the load" in (run_dir / "report.html").read_text()


def _set_run(run_dir: Path, **changes: object) -> None:
    record = RunRecord.from_dict(read_run(run_dir))
    for k, v in changes.items():
        setattr(record, k, v)
    write_run_record(run_dir, record)


def _rebuild_results(run_dir: Path, checks: list[CheckResult]) -> None:
    from checks.results_doc import build_results

    (run_dir / "results.json").unlink()
    write_results(run_dir, build_results(run_dir, checks, started_at="a", ended_at="b"))


@pytest.mark.parametrize(
    "change",
    [
        {"thresholds": [{"name": "server error rate", "limit": 0.01, "actual": 0.1, "passed": False}]},
        {"status": "interrupted"},
        {"status": "aborted", "aborted": ABORTED},
    ],
    ids=["failed-threshold", "interrupted", "aborted"],
)
def test_every_artefact_shows_the_one_verdict(tmp_path: Path, change: dict[str, object]) -> None:
    run_dir = _run(tmp_path)
    _set_run(run_dir, **change)
    _rebuild_results(run_dir, sample_checks())  # every check passes
    doc = json.loads((run_dir / "results.json").read_text())
    assert doc["verdict"] == "fail" and doc["verdict_reasons"]
    render_all(run_dir)
    html = (run_dir / "report.html").read_text()
    assert '<div class="big">FAIL</div>' in html and '<div class="big">PASS</div>' not in html
    assert escape(doc["verdict_reasons"][0]) in html
    md = (run_dir / "summary.md").read_text()
    assert md.startswith("### ❌ loadcheck FAIL") and "PASS" not in md.splitlines()[0]
    junit = (run_dir / "junit.xml").read_text()
    assert 'failures="0"' not in junit and 'name="verdict"' in junit


def test_a_passing_run_passes_everywhere(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    render_all(run_dir)
    assert '<div class="big">PASS</div>' in (run_dir / "report.html").read_text()
    assert (run_dir / "summary.md").read_text().startswith("### ✅ loadcheck PASS")
    assert 'failures="0"' in (run_dir / "junit.xml").read_text()


def test_conditions_reach_the_report(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    record = RunRecord.from_dict(read_run(run_dir))
    record.conditions.faults = {"drop-writes": 0.5}
    write_run_record(run_dir, record)
    _rebuild_results(run_dir, sample_checks())
    assert json.loads((run_dir / "results.json").read_text())["conditions"]["faults"] == {"drop-writes": 0.5}
    render_all(run_dir)
    assert "drop-writes=0.5" in (run_dir / "report.html").read_text()
    assert "drop-writes=0.5" in (run_dir / "summary.md").read_text()


# ---------------------------------------------------------------------------------------------
# the ledger against run.json
def _ledger_file(run_dir: Path) -> Path:
    return next((run_dir / "ledger").glob("*.jsonl.gz"))


def test_emptied_ledger_of_a_completed_run_is_damage(tmp_path: Path) -> None:
    run_dir = write_checks_run(tmp_path / "r", make_records(writes=20, reads=4))
    assert ledger_state(run_dir, read_run(run_dir)).problems == ()
    _ledger_file(run_dir).write_bytes(b"")
    problems = ledger_state(run_dir, read_run(run_dir)).problems
    assert any("holds 0 record(s) but run.json says 24" in p for p in problems), problems


def test_gzip_without_its_trailer_is_damage_for_a_completed_run(tmp_path: Path) -> None:
    run_dir = write_checks_run(tmp_path / "r", make_records(writes=20, reads=0))
    path = _ledger_file(run_dir)
    raw = gzip.decompress(path.read_bytes())
    comp = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    cut = comp.compress(raw) + comp.flush(zlib.Z_SYNC_FLUSH)  # whole lines, no end-of-stream
    path.write_bytes(cut)
    with pytest.raises(EOFError):
        gzip.decompress(cut)  # Python's own reader agrees the stream is incomplete
    state = ledger_state(run_dir, read_run(run_dir))
    assert any("no gzip end-of-stream" in p and "after 20 record(s)" in p for p in state.problems), state
    _set_run(run_dir, status="interrupted", ledger_records=None)  # a killed writer: normal
    assert ledger_state(run_dir, read_run(run_dir)).problems == ()


@pytest.mark.parametrize("damage", ["empty", "no-trailer"])
def test_check_refuses_a_damaged_ledger_and_keeps_previous_results(tmp_path: Path, damage: str) -> None:
    run_dir = write_checks_run(tmp_path / "r", make_records(writes=20, reads=4))
    previous = {"schema_version": 2, "verdict": "pass", "checks": [], "routes": {}, "marker": "earlier"}
    (run_dir / "results.json").write_text(json.dumps(previous))
    path = _ledger_file(run_dir)
    if damage == "empty":
        path.write_bytes(b"")
    else:
        comp = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        path.write_bytes(comp.compress(gzip.decompress(path.read_bytes())) + comp.flush(zlib.Z_SYNC_FLUSH))
    res = CliRunner().invoke(cli, ["check", str(run_dir), "--state-dir", str(tmp_path / "nostack"), "-q"])
    assert res.exit_code == 2, res.output
    assert str(run_dir / "ledger") in res.output and "fix:" in res.output
    assert ("holds 0 record(s)" in res.output) if damage == "empty" else ("no gzip end-of-stream" in res.output)
    assert json.loads((run_dir / "results.json").read_text())["marker"] == "earlier"


# ---------------------------------------------------------------------------------------------
# evidence is never overwritten by less evidence
def test_results_with_less_evidence_do_not_replace_results_json(tmp_path: Path) -> None:
    run_dir = _run(tmp_path)
    before = (run_dir / "results.json").read_text()
    _set_run(run_dir)  # unchanged run
    from checks.results_doc import build_results

    worse = [CheckResult(c.name, "error", "no local stack", reason="no stack.json") for c in sample_checks()]
    written = write_results(run_dir, build_results(run_dir, worse, started_at="a", ended_at="b"))
    assert written.kept
    assert written.path.parent.name == HISTORY_DIR and json.loads(written.path.read_text())["verdict"] == "error"
    assert (run_dir / "results.json").read_text() == before
    better = write_results(run_dir, build_results(run_dir, sample_checks(failing=True), started_at="c", ended_at="d"))
    assert not better.kept and better.replaced is not None and better.replaced.read_text() == before


def test_check_after_stack_down_keeps_the_previous_results(tmp_path: Path) -> None:
    run_dir = write_checks_run(tmp_path / "r", make_records(writes=5, reads=1))
    from checks.results_doc import build_results

    good = [CheckResult(n, "pass", "ok") for n in ("dynamodb_contents", "throttling", "access_logs", "security")]
    write_results(run_dir, build_results(run_dir, good, started_at="a", ended_at="b"))
    before = (run_dir / "results.json").read_text()
    res = CliRunner().invoke(
        cli, ["check", str(run_dir), "--state-dir", str(tmp_path / "nostack"), "--check-budget", "1s", "-q"]
    )
    assert res.exit_code == 1, res.output
    assert "kept" in res.output and "verdict: ERROR" in res.output
    assert (run_dir / "results.json").read_text() == before
    assert len(list((run_dir / HISTORY_DIR).glob("*not-current*.json"))) == 1


def test_baseline_save_refuses_a_run_that_did_not_pass(tmp_path: Path) -> None:
    from reports.baseline import save_baseline

    failing = write_run(tmp_path / "f", checks=sample_checks(failing=True), seconds=5, rate=5)
    with pytest.raises(ConfigError, match="verdict FAIL") as exc:
        save_baseline(failing, directory=tmp_path / "b")
    assert "--allow-failed" in str(exc.value)
    assert save_baseline(failing, directory=tmp_path / "b", allow_failed=True).is_dir()
    res = CliRunner().invoke(cli, ["baseline", "save", str(failing), "--dir", str(tmp_path / "c")])
    assert res.exit_code == 2 and "verdict FAIL" in res.output
