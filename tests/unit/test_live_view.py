"""The live view of ``loadcheck run`` drawn from progress.json documents recorded in real runs.

``tests/fixtures/progress/``: ``early.json`` (1 s into a 40 s run; two routes without a closed
second yet, so no histogram), ``steady.json`` (23 s in), ``throttled-final.json`` (the last
document of a default 45 s run, after the 1-WCU table's burst ran out: 251 writes answered 429).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from loadcheck.commands import live
from loadcheck.core import histograms
from loadcheck.core.errors import StackError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "progress"
# The aws service's GET /_loadcheck/capacity answer (reference_stack/local/aws/accounting.py snapshot).
SNAPSHOT = {
    "EventLog": {
        "billing_mode": "PROVISIONED",
        "read_capacity_units": 1.0,
        "write_capacity_units": 1.0,
        "read_level": 299.6,
        "write_level": 61.7,
        "read_bucket_capacity": 300.0,
        "write_bucket_capacity": 300.0,
        "hot_keys": 4,
    }
}


def doc(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def text_of(renderable, width: int = 130) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def row(text: str, route: str) -> list[str]:
    """The cells of a route's row, split on runs of two or more spaces."""
    line = next(line for line in text.splitlines() if line.startswith(route + " "))
    return [c.strip() for c in line[len(route) :].split("  ") if c.strip()]


def test_every_route_row_shows_rate_count_percentiles_and_answer_classes():
    p = doc("throttled-final")
    text = text_of(live.render(p, burst=live.Burst.from_snapshot(SNAPSHOT, "EventLog")))
    lines = text.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("route"))
    assert lines[header].split()[1:] == ["req/s", "requests", "p50", "p95", "p99", "2xx", "4xx", "429", "5xx", "answer"]
    assert lines[header - 1].split() == ["no"]  # "no answer" on two lines keeps the table narrow
    for route, r in p["routes"].items():
        h = histograms.decode(r["hdr"])
        cells = row(text, route)
        assert cells[0] == f"{r['rps']:.1f}" and cells[1] == str(r["requests"])
        assert cells[2:5] == [live.ms(h.get_value_at_percentile(q) / 1000.0) for q in (50.0, 95.0, 99.0)]
        assert cells[5:] == [str(r["status"].get(c, 0)) for c in ("2xx", "4xx", "429", "5xx", "none")]
    assert row(text, "POST /events")[7] == "251"  # the throttled writes
    every = row(text, "all")
    assert every[1] == str(sum(r["requests"] for r in p["routes"].values())) == "720"
    assert every[5:8] == ["469", "0", "251"]
    assert f"run {p['run_id']}" in text and "46/45 s" in text  # elapsed/total (drained after the schedule)
    assert "users busy 0/0" in text and "dropped arrivals 0" in text
    assert "table EventLog burst left: write 62/300 (21%) WCU, read 300/300 (100%) RCU" in text


def test_the_all_row_merges_the_routes_histograms():
    p = doc("steady")
    merged = histograms.new_histogram()
    for r in p["routes"].values():
        merged.add(histograms.decode(r["hdr"]))
    (every,) = [f for f in live.route_figures(p) if f.route == "all"]
    assert every.percentiles_ms["p99"] == merged.get_value_at_percentile(99.0) / 1000.0
    assert every.rps == round(sum(r["rps"] for r in p["routes"].values()), 1)


def test_a_route_without_a_closed_second_shows_no_percentiles_yet():
    p = doc("early")
    assert p["routes"]["GET /events"]["hdr"] is None  # as recorded: 1 s into the run
    text = text_of(live.render(p))
    assert row(text, "GET /events")[2:5] == ["-", "-", "-"]
    assert row(text, "POST /events")[2] != "-"
    assert "users busy 4/64" in text and "1/40 s" in text and "burst" not in text


def test_a_3xx_column_appears_only_when_there_are_any():
    p = doc("steady")
    assert "3xx" not in text_of(live.render(p))
    p["routes"]["GET /events"]["status"]["3xx"] = 2
    assert row(text_of(live.render(p)), "GET /events")[5:7] == [str(p["routes"]["GET /events"]["status"]["2xx"]), "2"]


def test_before_the_first_document_the_view_says_it_waits():
    assert "waiting for Locust to start" in text_of(live.render({}))


@pytest.mark.parametrize("name", ["early", "steady", "throttled-final"])
def test_a_plain_line_is_one_complete_line(name):
    p = doc(name)
    line = live.plain_line(p, burst=live.Burst.from_snapshot(SNAPSHOT, "EventLog"))
    assert "\r" not in line and "\n" not in line
    assert line.startswith(f"progress [{p['elapsed_s']:.0f}/{p['duration_s']:.0f} s]")
    assert f"requests {p['requests']}" in line and f"dropped {p['dropped_arrivals']}" in line
    assert "burst write 21% read 100%" in line


def test_the_plain_line_counts_every_route():
    line = live.plain_line(doc("throttled-final"))
    assert "2xx 469 4xx 0 429 251 5xx 0 no-answer 0" in line and "p95 " in line


def test_plain_lines_come_every_5_s_of_load_and_at_the_end(tmp_path):
    lines: list[str] = []
    view = live.LiveView(run_dir=tmp_path, tty=False, echo=lines.append)
    base = doc("steady")
    for elapsed in (0.0, 1.0, 4.9, 5.1, 6.0, 9.9, 17.2, 18.0):
        view.update({**base, "elapsed_s": elapsed})
    view.update({}, final=False)  # progress.json unreadable for a moment: nothing printed
    view.update({**base, "elapsed_s": 18.5}, final=True)
    assert [line.split("]")[0] for line in lines] == [
        "progress [5/40 s",
        "progress [17/40 s",  # 10 s and 15 s fell between two reads: one line, not three
        "progress [18/40 s",
    ]
    assert not view.active


def test_on_a_terminal_the_table_is_drawn_and_messages_go_above_it(tmp_path):
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=130, color_system=None)
    view = live.LiveView(run_dir=tmp_path, tty=True, console=console)
    view.update(doc("early"))
    assert view.active
    view.say("chaos kill:gateway@10s: SIGKILL pid 4242 at 10.0s into the load")
    view.update(doc("steady"), final=True)
    assert not view.active
    screen = out.getvalue()
    assert "chaos kill:gateway@10s" in screen and "POST /events" in screen
    # The last document stays on screen below the message once the view is closed.
    assert screen.index("chaos kill") < screen.rindex("23/40 s") and screen.index("1/40 s") < screen.index("chaos")


def test_the_burst_is_read_at_most_every_2_s_and_a_failure_keeps_the_last_figures(tmp_path):
    now = [100.0]
    answers: list[object] = [SNAPSHOT, StackError("the aws service answered 500"), OSError("refused")]
    calls = []

    def read() -> live.Burst | None:
        calls.append(now[0])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return live.Burst.from_snapshot(answer, "EventLog")

    lines: list[str] = []
    view = live.LiveView(run_dir=tmp_path, tty=False, burst=read, echo=lines.append, clock=lambda: now[0])
    view.update(doc("steady"))
    now[0] += 1.0
    view.update(doc("steady"))
    now[0] += 1.5
    view.update(doc("steady"))  # the aws service fails: the view goes on with what it had
    view.update(doc("steady"), final=True)  # the last document reads the buckets again
    assert calls == [100.0, 102.5, 102.5]
    assert view.burst is not None and view.burst.write_left == 61.7
    assert all("burst write 21%" in line for line in lines)


def test_an_on_demand_table_has_no_burst_bucket():
    snap = {"EventLog": {**SNAPSHOT["EventLog"], "billing_mode": "PAY_PER_REQUEST"}}
    burst = live.Burst.from_snapshot(snap, "EventLog")
    assert burst is not None and burst.describe() == "table EventLog: on-demand (no burst bucket)"
    assert live.Burst.from_snapshot(SNAPSHOT, "OtherTable") is None


LOCUST_LOG = """\
[2026-12-02 08:36:18,306] vm/INFO/locust.main: Starting Locust 2.47.0
[2026-12-02 08:36:18,418] vm/INFO/locust.runners: Ramping to 64 users at a rate of 64.00 per second
[2026-12-02 08:36:28,001] vm/WARNING/locust.runners: CPU usage above 90%! This may constrain your throughput
"""


def test_locust_warnings_are_shown_as_they_appear_and_listed_in_the_summary(tmp_path):
    lines: list[str] = []
    view = live.LiveView(run_dir=tmp_path, tty=False, echo=lines.append)
    log = tmp_path / "locust.log"
    log.write_text(LOCUST_LOG + "[2026-12-02 08:36:29,5] vm/ERROR/loadcheck.load: could not ship a ledger")
    view.update({})
    assert lines == [
        "locust WARNING (locust.log, locust.runners): CPU usage above 90%! This may constrain your throughput"
    ]
    with log.open("a") as fh:  # the line being written is read once it is whole
        fh.write(" batch to the master; will retry\n")
        fh.write(
            "[2026-12-02 08:36:30,001] vm/WARNING/locust.runners: CPU usage above 90%! This may constrain your throughput\n"
        )
    (tmp_path / "worker-1.log").write_text("[2026-12-02 08:36:31,0] vm/CRITICAL/locust.runners: worker gone\n")
    view.update({})
    assert lines[1:] == [
        "locust ERROR (locust.log, loadcheck.load): could not ship a ledger batch to the master; will retry",
        "locust WARNING (locust.log, locust.runners): CPU usage above 90%! This may constrain your throughput",
        "locust CRITICAL (worker-1.log, locust.runners): worker gone",
    ]
    view.update({})
    assert len(lines) == 4  # nothing read twice
    assert view.summary_lines() == [
        "  Locust warned 4 time(s) (run directory's Locust logs):",
        "    locust WARNING (locust.log, locust.runners): CPU usage above 90%! This may constrain your throughput  (x2)",
        "    locust ERROR (locust.log, loadcheck.load): could not ship a ledger batch to the master; will retry",
        "    locust CRITICAL (worker-1.log, locust.runners): worker gone",
    ]


def test_no_warnings_no_summary_lines(tmp_path):
    (tmp_path / "locust.log").write_text(LOCUST_LOG.splitlines(keepends=True)[0])
    view = live.LiveView(run_dir=tmp_path, tty=False, echo=lambda _: None)
    view.update(doc("steady"), final=True)
    assert view.summary_lines() == []


def test_on_an_80_column_terminal_no_figure_is_cut():
    p = doc("throttled-final")
    text = text_of(live.render(p), width=80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for figure in ("1025 ms", "251", "469", "720", "16.6"):
        assert figure in text
