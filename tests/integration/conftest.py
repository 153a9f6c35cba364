"""Fixtures that start the real local stack (processes on 127.0.0.1) and always stop it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from loadcheck.core.target import Target


def _descendants_of_state(state_dir: Path) -> list[psutil.Process]:
    """Processes whose command line names this state directory's service configs."""
    needle = str(state_dir)
    found = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(needle in part for part in (p.info["cmdline"] or [])):
                found.append(p)
    return found


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One local stack for the whole session (starting one takes seconds); stopped at the end."""
    from reference_stack.local import supervisor

    state_dir = tmp_path_factory.mktemp("stack") / ".loadcheck"
    stack = supervisor.start_detached(state_dir)
    try:
        yield stack
    finally:
        supervisor.stop_stack(state_dir)
        leftovers = _descendants_of_state(state_dir)
        for p in leftovers:
            with contextlib.suppress(psutil.Error):
                p.kill()
        assert not leftovers, f"processes left behind: {[p.pid for p in leftovers]}"


@pytest.fixture(scope="session")
def local_target(local_stack: dict[str, Any]) -> Target:
    return Target.from_stack_json(local_stack)


@pytest.fixture
def stack_state_dir(local_stack: dict[str, Any]) -> Path:
    return Path(local_stack["state_dir"])
