"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local stack of the module's own (its state directory), stopped after the module's tests.
    Modules that need another kind (an empty burst, no corpus) define their own ``stack``."""
    supervisor = pytest.importorskip("reference_stack.local.supervisor")
    state = tmp_path_factory.mktemp("stack") / "state"
    try:
        supervisor.ensure_stack(state)
        yield state
    finally:
        supervisor.stop_stack(state)
