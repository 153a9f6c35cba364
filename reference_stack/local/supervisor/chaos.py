"""Chaos on a running local stack: SIGKILL a service or a Lambda execution environment.

``loadcheck run --chaos kill:gateway@10s`` and the reliability tests call :func:`kill`; the
supervisor notices a dead service within 0.2 s, restarts the stateless ones and records the
outage (:meth:`~reference_stack.local.supervisor.stack.Supervisor.handle_death`). A killed
Lambda environment is no service death: the lambda service replaces it on the next invocation
(docs/fidelity.md), so :func:`kill` records its instant as an outage of ``lambda-env`` itself,
so the run can attribute the invocations that were running in it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from loadcheck.core.chaos import SERVICES, TARGETS, Outage, read_outages, record_outage
from loadcheck.core.errors import ConfigError, StackError
from reference_stack.local.supervisor.admin import admin_request
from reference_stack.local.supervisor.control import pid_alive, require_stack


def kill(state_dir: Path, target: str) -> dict[str, Any]:
    """SIGKILL ``target`` (a service name or ``lambda-env``); ``{"target", "pid", "at"}`` (epoch s)."""
    if target not in TARGETS:
        raise ConfigError(f"chaos target {target!r} is unknown", value=target, hint=f"use one of {', '.join(TARGETS)}")
    stack = require_stack(state_dir)
    pid = int(stack["services"][target]["pid"]) if target in SERVICES else _lambda_environment_pid(state_dir, stack)
    at = time.time()
    os.kill(pid, signal.SIGKILL)
    if target == "lambda-env":
        record_outage(
            state_dir,
            Outage(service=target, pid=pid, down_at=at, detected_at=at, exit_status=-signal.SIGKILL, up_at=at),
        )
    return {"target": target, "pid": pid, "at": at}


def _lambda_environment_pid(state_dir: Path, stack: dict[str, Any]) -> int:
    url = stack["services"]["lambda"]["url"]
    _, envs = admin_request(f"{url}/_loadcheck/environments", timeout=10, state_dir=state_dir)
    pids = [
        int(e["pid"])
        for fn in (envs or {}).values()
        for e in fn.get("environments", [])
        if e.get("pid") and e.get("state") in ("ready", "busy", "init")
    ]
    if not pids:
        raise StackError(
            "no live Lambda execution environment to kill",
            value="lambda-env",
            hint="kill a Lambda environment after the load has started (e.g. --chaos kill:lambda-env@5s)",
        )
    return pids[0]


def wait_restarted(state_dir: Path, service: str, pid: int, *, timeout_s: float = 60.0) -> Outage:
    """The outage of ``service`` whose process ``pid`` died, once it is over (restarted or fatal).

    Raises StackError when the supervisor has not recorded its end within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for o in read_outages(state_dir):
            if o.service == service and o.pid == pid and (o.up_at is not None or o.fatal):
                return o
        time.sleep(0.1)  # polling outages.json against a deadline
    alive = pid_alive(pid)
    raise StackError(
        f"the supervisor recorded no end of the {service} outage (pid {pid}{', still alive' if alive else ''}) "
        f"within {timeout_s:.0f} s",
        value=service,
        hint=f"see {state_dir / 'logs' / 'supervisor.log'}",
    )
