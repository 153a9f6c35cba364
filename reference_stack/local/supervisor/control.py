"""Running the supervisor: in the foreground, as a detached daemon, and stopping it.

loadcheck stack up            -> run_foreground(): supervise here until Ctrl-C
loadcheck stack up --detach   -> start_detached(): a daemon (`python -m
                                 reference_stack.local.supervisor`) supervises; the
                                 command returns once every service is healthy
loadcheck stack down          -> stop_stack(): SIGTERM the supervisor, then kill whatever
                                 is left of every service's process group
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from loadcheck.core import faults as fault_registry
from loadcheck.core.description import load_description
from loadcheck.core.errors import StackAlreadyRunning, StackError, StackNotRunning
from loadcheck.core.state import make_state_dir, read_stack_json, stack_command
from reference_stack.local.common.launcher import REPO_ROOT, child_env, kill_group, log_tail
from reference_stack.local.supervisor.stack import Progress, Supervisor, no_progress


def pid_alive(pid: int | None) -> bool:
    """True if ``pid`` runs (a zombie does not)."""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def running_stack(state_dir: Path) -> dict[str, Any] | None:
    """stack.json if a stack runs for ``state_dir`` and its supervisor is alive, else None."""
    try:
        stack = read_stack_json(state_dir)
    except StackNotRunning:
        return None
    if not pid_alive(stack.get("supervisor_pid")):
        return None
    return stack


def require_stack(state_dir: Path) -> dict[str, Any]:
    """The running stack of ``state_dir``, or StackNotRunning naming the fix."""
    stack = running_stack(state_dir)
    if not stack:
        raise StackNotRunning(
            f"no local stack runs for {state_dir}",
            value=str(state_dir),
            hint=f"start one with `{stack_command('up --detach', state_dir)}`",
        )
    return stack


def _refuse_second_stack(state_dir: Path) -> None:
    if running_stack(state_dir):
        raise StackAlreadyRunning(
            f"a local stack already runs for {state_dir}",
            value=str(state_dir),
            hint=f"use it (`{stack_command('status', state_dir)}`), "
            f"or stop it with `{stack_command('down', state_dir)}`",
        )


def _cleanup_stale(state_dir: Path) -> None:
    """A crashed supervisor may leave services and stack.json behind: remove both."""
    path = state_dir / "stack.json"
    if not path.is_file():
        return
    try:
        stack = json.loads(path.read_text())
    except ValueError:
        stack = {}
    for svc in stack.get("services", {}).values():
        kill_group(int(svc.get("pid", 0)) or -1)
    path.unlink(missing_ok=True)


def run_foreground(
    state_dir: Path,
    *,
    description: str | None = None,
    ports: dict[str, int] | None = None,
    faults: dict[str, Any] | None = None,
    burst_start: str = "full",
    progress: Progress = no_progress,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
    load_corpus: bool = True,
) -> int:
    """Start the stack and supervise it until SIGINT/SIGTERM. Returns an exit status.

    A stateless service that dies (gateway, lambda, search) is restarted on its port and the
    outage recorded (:meth:`Supervisor.handle_death`); the death of the aws endpoint, or a
    restart that fails, stops the stack with status 1.
    """
    _refuse_second_stack(state_dir)
    _cleanup_stale(state_dir)
    desc = load_description(description)
    sup = Supervisor(
        state_dir=state_dir,
        description=desc,
        ports=ports,
        faults=faults,
        burst_start=burst_start,
        progress=progress,
        load_corpus=load_corpus,
    )
    stopping = {"flag": False}

    def _handler(signum: int, _frame: object) -> None:
        stopping["flag"] = True

    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        try:
            stack = sup.start()
        except BaseException as exc:
            (state_dir / "supervisor.error").write_text(str(exc))
            raise
        (state_dir / "supervisor.error").unlink(missing_ok=True)
        if on_ready:
            on_ready(stack)
        while not stopping["flag"]:
            dead = sup.check_children()
            if dead:
                log = state_dir / "logs" / f"{dead}.log"
                outage = sup.handle_death(dead)
                if outage.fatal:
                    progress(f"service {dead} exited unexpectedly ({outage.reason}); stopping the stack (see {log})")
                    status = 1
                    break
                progress(f"service {dead} exited unexpectedly; restarted in {outage.restart_s:.2f} s (see {log})")
            time.sleep(0.2)
    finally:
        progress("stopping the local stack")
        sup.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return status


def start_detached(
    state_dir: Path,
    *,
    description: str | None = None,
    ports: dict[str, int] | None = None,
    faults: dict[str, Any] | None = None,
    burst_start: str = "full",
    progress: Progress = no_progress,
    timeout_s: float = 180.0,
    load_corpus: bool = True,
) -> dict[str, Any]:
    """Start a supervisor daemon and return stack.json once every service is healthy."""
    _refuse_second_stack(state_dir)
    _cleanup_stale(state_dir)
    load_description(description)  # fail fast, in the caller's terminal, on a bad description
    make_state_dir(state_dir)
    (state_dir / "logs").mkdir(exist_ok=True)
    (state_dir / "supervisor.error").unlink(missing_ok=True)
    args = [
        sys.executable,
        "-m",
        "reference_stack.local.supervisor",
        "--state-dir",
        str(state_dir),
        "--burst-start",
        burst_start,
    ]
    if description:
        args += ["--description", str(description)]
    if not load_corpus:
        args.append("--no-corpus")
    for name, port in (ports or {}).items():
        args += ["--port", f"{name}={port}"]
    for name, value in {n: fault_registry.validate(n, v) for n, v in (faults or {}).items()}.items():
        if value is not None:  # a new stack has nothing to clear
            args += ["--fault", fault_registry.describe_value(name, value)]
    env = os.environ.copy()
    env["PYTHONPATH"] = child_env()["PYTHONPATH"]  # the daemon keeps the user's AWS variables
    log_path = state_dir / "logs" / "supervisor.log"
    # The log is appended to: an earlier stack's lines are not this start's progress.
    seen = len(log_path.read_text(errors="replace").splitlines()) if log_path.is_file() else 0
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = log_path.read_text(errors="replace").splitlines()
        for line in lines[seen:]:
            if line.startswith("  ") or line.startswith("starting"):
                progress(line)
        seen = len(lines)
        stack = running_stack(state_dir)
        if stack and stack.get("supervisor_pid") == proc.pid:
            return stack
        if proc.poll() is not None:
            err = state_dir / "supervisor.error"
            detail = err.read_text() if err.is_file() else log_tail(log_path)
            raise StackError(
                f"the local stack failed to start: {detail}",
                value=str(state_dir),
                hint=f"logs are in {state_dir / 'logs'}",
            )
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    raise StackError(
        f"the local stack did not become healthy within {timeout_s:.0f} s",
        value=str(state_dir),
        hint=f"logs are in {state_dir / 'logs'}",
    )


def stop_stack(state_dir: Path, *, timeout_s: float = 60.0) -> bool:
    """Stop the stack of ``state_dir``; True if something was running. Leaves no process behind."""
    path = state_dir / "stack.json"
    if not path.is_file():
        return False
    stack = json.loads(path.read_text())
    sup_pid = stack.get("supervisor_pid")
    if pid_alive(sup_pid) and sup_pid != os.getpid():
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(sup_pid):
            time.sleep(0.1)
        if pid_alive(sup_pid):
            kill_group(sup_pid)
    for svc in stack.get("services", {}).values():
        kill_group(int(svc.get("pid", 0)) or -1)
    path.unlink(missing_ok=True)
    return True
