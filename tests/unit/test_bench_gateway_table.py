"""The figures `loadcheck bench gateway` holds against the local stack's speed goals (no processes)."""

from __future__ import annotations

from typing import Any

import pytest

from loadcheck.bench import profiling
from loadcheck.bench.gateway import GOALS, table
from loadcheck.core.errors import ConfigError


def _noop(rps: float, p99: float) -> dict[str, Any]:
    return {"requests": 100, "requests_per_s": rps, "latency_ms": {"p99": p99}}


def _post(share: float, lambda_ms: float, gateway_ms: float) -> dict[str, Any]:
    return {
        "share_of_aws_alone": share,
        "cpu_ms_per_request": {"lambda service + environments": lambda_ms, "gateway": gateway_ms},
    }


def test_each_goal_is_judged_on_its_own_figure() -> None:
    rows = table(_noop(1600, 12.0), _post(0.9, 1.2, 0.4), {"ratio": 0.95})
    assert [r["met"] for r in rows] == [True] * len(GOALS)
    rows = table(_noop(1400, 16.0), _post(0.8, 1.6, 0.6), {"ratio": 0.85})
    assert [r["met"] for r in rows] == [False] * len(GOALS)
    assert [r["value"] for r in rows] == [1400, 16.0, 0.8, 1.6, 0.6, 0.85]


def test_figures_not_measured_are_not_judged() -> None:
    rows = table(_noop(700, 26.0), None, None)
    assert [r["met"] for r in rows] == [False, False, None, None, None, None]


def test_profile_without_py_spy_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ConfigError, match="py-spy") as err:
        profiling.py_spy()
    assert "pip install" in (err.value.hint or "")
