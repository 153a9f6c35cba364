"""The default server-error threshold: a run full of 5xx or dropped connections cannot pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadcheck.commands.run_steps import evaluate_thresholds, ledger_summary
from loadcheck.core.ledger import LedgerWriter
from loadcheck.core.runconfig import RunOptions


def run_dir_with(tmp_path: Path, statuses: list[int]) -> Path:
    w = LedgerWriter(tmp_path / "ledger", "local")
    for seq, status in enumerate(statuses):
        w.write(
            {
                "run_id": "r",
                "worker": "local",
                "seq": seq,
                "t_start_ms": 1.0 * seq,
                "route": "POST /events",
                "method": "POST",
                "status": status,
                "error": None if status else "timeout",
                "latency_ms": 5.0,
            }
        )
    w.close()
    return tmp_path


def server_threshold(tmp_path: Path, statuses: list[int], **opts: object) -> dict[str, object]:
    run_dir = run_dir_with(tmp_path, statuses)
    out = evaluate_thresholds(RunOptions(**opts), run_dir, ledger_summary(run_dir))  # type: ignore[arg-type]
    return next(t for t in out if t["metric"] == "server_error_rate")


def test_on_by_default_and_fails_above_one_percent(tmp_path: Path) -> None:
    t = server_threshold(tmp_path, [201] * 97 + [429, 500, 503])
    assert t["name"] == "server_error_rate<=1%"
    assert t["limit"] == 0.01 and t["actual"] == 0.02 and t["passed"] is False


def test_exactly_one_percent_still_passes_as_it_always_did(tmp_path: Path) -> None:
    t = server_threshold(tmp_path, [201] * 99 + [500])
    assert t["actual"] == 0.01 and t["passed"] is True


def test_429_and_409_are_not_server_errors(tmp_path: Path) -> None:
    t = server_threshold(tmp_path, [201] * 50 + [429] * 40 + [409] * 10)
    assert t["actual"] == 0.0 and t["passed"] is True


def test_requests_without_a_response_count(tmp_path: Path) -> None:
    t = server_threshold(tmp_path, [201] * 98 + [0, 0])
    assert t["actual"] == 0.02 and t["passed"] is False


def test_can_be_turned_off(tmp_path: Path) -> None:
    run_dir = run_dir_with(tmp_path, [500] * 10)
    out = evaluate_thresholds(RunOptions(thresholds=()), run_dir, ledger_summary(run_dir))
    assert out == []


@pytest.mark.parametrize("bad", ["2", "-0.1", "lots"])
def test_bad_values_name_the_option(bad: str) -> None:
    from loadcheck.commands.run import build_options
    from loadcheck.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-server-error-rate"):
        build_options(
            target="local",
            duration="5s",
            rate=None,
            users=None,
            spawn_rate=None,
            shape=None,
            steps=None,
            step_duration=None,
            mix="writes=1",
            workers=0,
            seed=None,
            faults=(),
            collisions="0",
            think_time="1",
            max_server_error_rate=bad,
        )
