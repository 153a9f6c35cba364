"""Environments initialised ahead of load are ready and reused. (The cap, reserved concurrency or
the account quota when a function is unreserved as the reference description has it, is held by
tests/unit/test_lambda_environments.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from loadcheck.core.errors import StackError
from loadcheck.core.state import admin_headers
from reference_stack.local import supervisor

pytestmark = pytest.mark.integration


def envs(stack: dict[str, Any], fn: str) -> list[dict[str, Any]]:
    url = stack["services"]["lambda"]["url"]
    headers = admin_headers(stack["state_dir"])
    return requests.get(f"{url}/_loadcheck/environments", timeout=10, headers=headers).json()[fn]["environments"]


def test_prewarm_starts_ready_environments_and_never_exceeds_the_cap(local_stack: dict[str, Any]) -> None:
    sd = Path(local_stack["state_dir"])
    fn = local_stack["function_names"]["search"]
    ready = supervisor.prewarm(sd, {fn: 2})
    assert ready[fn] >= 2
    assert sum(e["state"] == "ready" for e in envs(local_stack, fn)) >= 2
    # Asking again for as many reuses the ready environments instead of starting more.
    before = len(envs(local_stack, fn))
    supervisor.prewarm(sd, {fn: 2})
    assert len(envs(local_stack, fn)) == before


def test_prewarm_refuses_an_unknown_function(local_stack: dict[str, Any]) -> None:
    with pytest.raises(StackError, match="prewarm"):
        supervisor.prewarm(Path(local_stack["state_dir"]), {"no-such-function": 1})
