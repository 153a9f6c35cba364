"""Renderers on synthetic run directories written with the real writers (LedgerWriter, HDR histograms)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from loadcheck.bench.synthetic_reports import sample_checks, write_run
from loadcheck.core.errors import RunDirError
from loadcheck.core.results import CheckResult
from reports import render_all
from reports.data import build_report_data, simulate_burst, status_category
from reports.markdown import render_markdown


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(
        tmp_path_factory.mktemp("runs") / "run-fail", checks=sample_checks(failing=True), seconds=40, rate=12
    )


def test_render_all_writes_three_files(failing_run: Path) -> None:
    paths = render_all(failing_run)
    assert [p.name for p in paths] == ["report.html", "summary.md", "junit.xml"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_html_verdict_first_failing_checks_first_and_self_contained(failing_run: Path) -> None:
    html = (render_all(failing_run)[0]).read_text(encoding="utf-8")
    body = html[html.index("<body>") :]
    assert body.index("FAIL") < body.index("Routes")
    # failing check listed before the passing ones, both in the summary list and the checks section
    checks = html[html.index('id="checks"') :]
    assert checks.index("dynamodb_contents") < checks.index("throttling") < checks.index("security")
    assert html.count("<svg") == 5  # throughput, latency, distribution, status mix, capacity
    assert "<script" not in html
    external = re.findall(r'(?:src|href)="(https?:)?//', html)
    assert not external, "the report must open from disk without network"
    assert "2 acknowledged writes missing from EventLog" in html
    assert "simulated" in html and "computed from the ledger" in html  # the capacity plot says its source


def test_report_data_figures_agree_with_ledger(failing_run: Path) -> None:
    d = build_report_data(failing_run)
    assert d.verdict == "fail"
    assert [c.status for c in d.checks] == ["fail", "pass", "pass", "skipped"]
    total = sum(r.requests for r in d.routes)
    per_second = sum(sum(s.throughput) * d.bucket_s for s in d.series.values())
    assert round(per_second) == total
    writes = next(r for r in d.routes if r.route == "POST /events")
    status_total = sum(sum(v) * d.bucket_s for v in d.series["POST /events"].status.values())
    assert round(status_total) == writes.requests
    assert d.capacity is not None and d.capacity.provisioned_wcu == 1.0
    # landed writes = 2xx; 429s consumed nothing
    landed = writes.status.get("201", 0)
    assert sum(d.capacity.consumed_wcu) == landed
    assert sum(d.capacity.throttled_writes) == writes.status.get("429", 0)
    for s in d.series.values():
        assert any(v is not None for v in s.p95)
        assert all(a is None or b is None or a <= b for a, b in zip(s.p50, s.p99, strict=True))


def test_markdown_summary(failing_run: Path) -> None:
    md = render_markdown(build_report_data(failing_run))
    assert md.startswith("### ❌ loadcheck FAIL")
    assert "| `POST /events` |" in md
    assert "- ❌ **dynamodb_contents** (fail): 2 acknowledged writes missing" in md
    assert len(md.splitlines()) < 30


def test_unchecked_run_renders_from_ledger_and_says_so(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", checks=None, seconds=10, rate=5)
    d = build_report_data(run)
    assert d.verdict == "unchecked"
    assert any("never checked" in n for n in d.notes)
    assert sum(r.requests for r in d.routes) > 0
    html = render_all(run)[0].read_text(encoding="utf-8")
    assert "UNCHECKED" in html and "No checks ran" in html


def test_missing_histograms_fall_back_to_exact_ledger_percentiles(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", checks=None, seconds=10, rate=5)
    (run / "histograms.json").unlink()
    d = build_report_data(run)
    assert any("no histograms.json" in n for n in d.notes)
    assert d.latency_source.startswith("ledger")
    assert all(r.latency_ms["p50"] > 0 for r in d.routes)


def test_unknown_results_version_is_refused_with_the_fix(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", checks=sample_checks(), seconds=5, rate=5)
    doc = json.loads((run / "results.json").read_text())
    doc["schema_version"] = 99
    (run / "results.json").write_text(json.dumps(doc))
    with pytest.raises(RunDirError) as err:
        render_all(run)
    assert "schema_version 99" in str(err.value) and "reads 1" in str(err.value)
    assert err.value.hint


def test_not_a_run_directory(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no run.json"):
        render_all(tmp_path)


def test_target_secrets_never_rendered(tmp_path: Path) -> None:
    target = {
        "kind": "local",
        "region": "us-east-1",
        "domain": "d.test",
        "table_name": "EventLog",
        "aws_secret_access_key": "SHOULD-NOT-APPEAR",
        "session_token": "NOR-THIS",
    }
    run = write_run(tmp_path / "r", checks=[CheckResult("security", "pass", "ok")], seconds=5, rate=5, target=target)
    for p in render_all(run):
        text = p.read_text(encoding="utf-8")
        assert "SHOULD-NOT-APPEAR" not in text and "NOR-THIS" not in text


def test_simulated_burst_bucket() -> None:
    # 1 WCU/s table, 300 WCU bucket full: 11 WCU/s drains 10 per second
    levels = simulate_burst([11.0] * 5, rate=1.0, burst=300.0)
    assert levels == [290.0, 280.0, 270.0, 260.0, 250.0]
    assert simulate_burst([5.0, 0.0, 0.0], rate=1.0, burst=3.0, start=0.0) == [0.0, 1.0, 2.0]
    assert simulate_burst([0.0] * 3, rate=2.0, burst=3.0) == [3.0, 3.0, 3.0]


@pytest.mark.parametrize(
    ("rec", "cat"),
    [
        ({"status": 201}, "2xx"),
        ({"status": 429}, "429"),
        ({"status": 404}, "404"),
        ({"status": 503}, "5xx"),
        ({"status": 0, "error": "timeout"}, "errors"),
        ({"status": 0}, "errors"),
    ],
)
def test_status_categories(rec: dict, cat: str) -> None:
    assert status_category(rec) == cat


def test_run_that_sent_nothing_still_renders(tmp_path: Path) -> None:
    import gzip

    run = write_run(
        tmp_path / "r", checks=[CheckResult("throttling", "skipped", "no requests", reason="none")], seconds=1, rate=1
    )
    for f in (run / "ledger").iterdir():
        f.unlink()
    with gzip.open(run / "ledger" / "local-0000.jsonl.gz", "wb"):
        pass  # a ledger file with no record: the load process started and sent nothing
    (run / "results.json").unlink()
    paths = render_all(run)
    html = paths[0].read_text(encoding="utf-8")
    assert "0 requests" in html and "<svg" not in html


def test_burst_bucket_anchored_at_first_throttled_write(tmp_path: Path) -> None:
    # the synthetic table starts with 30 WCU of burst (not the 300 an idle table would hold)
    run = write_run(tmp_path / "r", checks=None, seconds=20, rate=5, mix={"writes": 1}, burst_s=30)
    cap = build_report_data(run).capacity
    assert cap is not None and "anchored" in cap.burst_start
    first = next(i for i, n in enumerate(cap.throttled_writes) if n)
    assert cap.burst_level[first] < 2.0  # empty when the first write was refused
    assert 25.0 <= cap.burst_level[0] + cap.consumed_wcu[0] - cap.provisioned_wcu <= 31.0  # began near 30
    unthrottled = write_run(tmp_path / "u", checks=None, seconds=5, rate=2, mix={"writes": 1})
    assert build_report_data(unthrottled).capacity.burst_start == "assumed full at start"


def test_a_broken_renderer_does_not_cost_the_others(tmp_path: Path) -> None:
    from loadcheck.core.errors import LoadcheckError
    from reports.junit import JunitRenderer
    from reports.render import render_all as render_with

    class Broken:
        name, filename = "broken", "broken.txt"

        def render(self, data: object, out_dir: Path) -> Path:
            raise ZeroDivisionError("a bug")

    run = write_run(tmp_path / "r", checks=sample_checks(), seconds=5, rate=5)
    with pytest.raises(LoadcheckError) as err:
        render_with(run, renderers=[Broken(), JunitRenderer()])
    assert "broken.txt (ZeroDivisionError: a bug)" in str(err.value)
    assert (run / "junit.xml").is_file()
    assert "ZeroDivisionError" in (run / "report-error.txt").read_text()
    render_with(run, renderers=[JunitRenderer()])
    assert not (run / "report-error.txt").exists()


def test_report_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from loadcheck.cli import cli

    run = write_run(tmp_path / "r", checks=sample_checks(), seconds=5, rate=5)
    ok = CliRunner().invoke(cli, ["report", str(run), "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["junit.xml", "report.html", "summary.md"]
    missing = CliRunner().invoke(cli, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 4 and "is not a directory" in missing.output and "fix:" in missing.output


def test_saved_baseline_renders_from_results_only(tmp_path: Path) -> None:
    from reports.baseline import save_baseline

    run = write_run(tmp_path / "r", checks=sample_checks(failing=True), seconds=5, rate=5)
    base = save_baseline(run, name="b", directory=tmp_path / "baselines", allow_failed=True)
    paths = render_all(base, out_dir=tmp_path / "out")
    html = paths[0].read_text(encoding="utf-8")
    assert "no ledger in this directory" in html and "dynamodb_contents" in html
    assert "<svg" not in html
