"""Damaged run directories (issue 15 item 4): every reader names the file and the damage, the CLI
exits 2 (every loadcheck error's status), and nothing that was in the directory is written over.

A synthetic, complete run directory (loadcheck.bench.synthetic_reports: run.json, ledger,
histograms.json, results.json) is damaged one way per case, then read by `loadcheck check`,
`loadcheck report` or `loadcheck compare` as a user would. No stack is needed: every damage is
found before a check would reach one.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from loadcheck.bench.synthetic_checks import synthetic_target
from loadcheck.bench.synthetic_reports import sample_checks, write_run
from loadcheck.core.ledger import ledger_files

pytestmark = pytest.mark.e2e

CLI = [sys.executable, "-m", "loadcheck"]


def loadcheck(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def a_run(path: Path) -> Path:
    return write_run(path, seconds=10, rate=5, checks=sample_checks(), target=synthetic_target().to_public())


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def cut_ledger(run_dir: Path) -> str:
    path = ledger_files(run_dir)[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path.name


def flip_ledger_bytes(run_dir: Path) -> str:
    path = ledger_files(run_dir)[0]
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 64):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path.name


def cut_file(name: str) -> Callable[[Path], str]:
    def damage(run_dir: Path) -> str:
        path = run_dir / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return name

    return damage


def drop_run_field(field: str) -> Callable[[Path], str]:
    def damage(run_dir: Path) -> str:
        doc = json.loads((run_dir / "run.json").read_text())
        del doc[field]
        (run_dir / "run.json").write_text(json.dumps(doc))
        return "run.json"

    return damage


def newer_results(run_dir: Path) -> str:
    doc = json.loads((run_dir / "results.json").read_text())
    doc["schema_version"] = 99
    (run_dir / "results.json").write_text(json.dumps(doc))
    return "results.json"


CASES = [
    # (case, damage, command, words the error must hold besides the file's name)
    ("ledger gzip cut in half", cut_ledger, "check", ["record(s)"]),
    ("ledger bytes flipped", flip_ledger_bytes, "check", ["corrupt gzip data"]),
    ("histograms.json cut short", cut_file("histograms.json"), "report", ["is not JSON"]),
    ("histograms.json cut short (compare)", cut_file("histograms.json"), "compare", ["is not JSON"]),
    ("run.json cut short", cut_file("run.json"), "report", ["is not JSON"]),
    ("run.json without run_id", drop_run_field("run_id"), "report", ["lacks 'run_id'"]),
    ("run.json without status", drop_run_field("status"), "check", ["lacks 'status'"]),
    ("results.json cut short", cut_file("results.json"), "report", ["is not JSON"]),
    ("results.json of a newer schema", newer_results, "report", ["schema_version 99", "newer loadcheck"]),
]


@pytest.mark.parametrize("case,damage,command,words", CASES, ids=[c[0] for c in CASES])
def test_a_damaged_file_is_named_with_its_damage_and_left_as_it_was(
    tmp_path: Path, case: str, damage: Callable[[Path], str], command: str, words: list[str]
) -> None:
    run_dir = a_run(tmp_path / "run")
    name = damage(run_dir)
    before = snapshot(run_dir)
    if command == "compare":
        baseline = a_run(tmp_path / "baseline")
        out = loadcheck("compare", str(baseline), str(run_dir))
    elif command == "check":
        out = loadcheck("check", str(run_dir), "--state-dir", str(tmp_path / "no-stack"))
    else:
        out = loadcheck(command, str(run_dir))
    assert out.returncode == 4, (case, out.stdout, out.stderr)  # unreadable run directory: ExitCode.ERROR
    first = out.stderr.splitlines()[0]
    assert first.startswith("loadcheck: error: ") and name in first, (case, out.stderr)
    for w in words:
        assert w in out.stderr, (case, w, out.stderr)
    assert "fix:" in out.stderr and "Traceback" not in out.stderr
    after = snapshot(run_dir)
    assert {k: v for k, v in after.items() if k in before} == before, f"{case}: a file was written over"
    print(f"\nFIGURE damaged {case}: {first.removeprefix('loadcheck: error: ')[:160]}")


def test_check_on_a_cut_ledger_says_how_many_records_were_readable(tmp_path: Path) -> None:
    run_dir = a_run(tmp_path / "run")
    path = ledger_files(run_dir)[0]
    readable = 0
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    try:
        with gzip.open(path, "rt") as fh:
            for line in fh:
                if line.endswith("\n"):
                    readable += 1
    except EOFError:
        pass
    written = json.loads((run_dir / "run.json").read_text())["ledger_records"]
    out = loadcheck("check", str(run_dir), "--state-dir", str(tmp_path / "no-stack"))
    assert out.returncode == 4
    assert f"holds {readable} record(s) but run.json says {written} were written" in out.stderr, out.stderr
