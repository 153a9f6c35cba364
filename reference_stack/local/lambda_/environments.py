"""Execution environments: the model of one awslambdaric process and of a function's pool.

    FunctionPool        start on demand, reuse idle environments, cap concurrency
    └── Environment     one runtime process + its Runtime API listener + its log stream
        └── Invocation  one request: assigned -> delivered (/next) -> finished (one Outcome)

An :class:`Environment` runs one invocation at a time, as on AWS (docs/aws-behaviour.md §8.1: the
runtime asks ``/next`` for its next event only after posting the previous result). The
Runtime API wire protocol (runtime_api.py) calls ``next_invocation``/``post_*``; the invoker
(invoke.py) calls ``assign`` and waits on the invocation. Processes are started by
launcher.py; this module holds state and rules only.

Departures from AWS (also in docs/fidelity.md, section lambda):

- Idle environments are reclaimed after ``idle_timeout_s`` (config, default 600 s) without an
  invocation; AWS reclaims idle environments after an undocumented time (UNCONFIRMED).
- Environments are never frozen between invocations: background threads of a handler keep
  running (AWS freezes the sandbox).
- ``Max Memory Used`` is the process's peak resident set size (``VmHWM`` from
  /proc/<pid>/status, else psutil's current RSS); memory is measured, not enforced (AWS kills
  the sandbox above Memory Size).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from reference_stack.local.lambda_.config import FunctionConfig
from reference_stack.local.lambda_.logs import OutputPump, StreamLog

log = logging.getLogger("loadcheck.lambda.environments")

# The sync response payload quota (docs/aws-behaviour.md §8.4: 6 MB); the exact byte figure is
# what Lambda names in its Function.ResponseSizeTooLarge message.
MAX_RESPONSE_BYTES = 6_291_556


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended. ``kind``: response | error | init_error | exit | timeout |
    injected | too_large. Anything but ``response`` is a function error (``Unhandled``)."""

    kind: str
    body: bytes
    error_type: str | None = None
    content_type: str = "application/json"

    @property
    def is_error(self) -> bool:
        return self.kind != "response"


class Invocation:
    """One synchronous invocation; its events are the Runtime API's ``/next`` headers."""

    def __init__(
        self,
        *,
        request_id: str,
        payload: bytes,
        function_arn: str,
        trace_id: str,
        timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.request_id = request_id
        self.payload = payload
        self.function_arn = function_arn
        self.trace_id = trace_id
        self.timeout_s = timeout_s
        self._clock = clock
        self._wall = wall
        self.assigned_at = clock()
        self.delivered_at: float | None = None  # monotonic, when the runtime got it from /next
        self.deadline_ms: int | None = None  # epoch ms, the Lambda-Runtime-Deadline-Ms header
        self.finished_at: float | None = None
        self.outcome: Outcome | None = None
        self._cond = threading.Condition()

    def deliver(self) -> bool:
        """Mark the invocation handed to the runtime; False when it already ended."""
        with self._cond:
            if self.outcome is not None:
                return False
            self.delivered_at = self._clock()
            self.deadline_ms = int((self._wall() + self.timeout_s) * 1000)
            self._cond.notify_all()
            return True

    def finish(self, outcome: Outcome) -> bool:
        """Record the outcome once; False when another outcome got there first."""
        with self._cond:
            if self.outcome is not None:
                return False
            self.outcome = outcome
            self.finished_at = self._clock()
            self._cond.notify_all()
            return True

    def wait(self, *, init_limit_s: float, stop: threading.Event | None = None) -> Outcome | None:
        """Wait for the outcome; None when the time limit passed first.

        Before delivery the limit is ``init_limit_s`` after assignment (a cold start's init
        phase); after delivery it is the function timeout counted from delivery.
        """
        with self._cond:
            while self.outcome is None:
                if self.delivered_at is None:
                    limit = self.assigned_at + init_limit_s
                else:
                    limit = self.delivered_at + self.timeout_s
                remaining = limit - self._clock()
                if remaining <= 0 or (stop is not None and stop.is_set()):
                    return None
                self._cond.wait(min(remaining, 0.5))
            return self.outcome

    def duration_ms(self) -> float:
        """Handler time: delivery to outcome (or to now), in milliseconds."""
        start = self.delivered_at if self.delivered_at is not None else self.assigned_at
        end = self.finished_at if self.finished_at is not None else self._clock()
        return max(0.0, (end - start) * 1000)


class Environment:
    """One execution environment: state shared by the Runtime API and the invoker.

    ``state``: ``init`` (process started, no ``/next`` yet) -> ``ready`` -> ``dead``; an
    environment that reported an init error is ``failed``, one about to be killed is
    ``retired``; neither is ever reused.
    """

    def __init__(
        self, *, env_id: str, function: FunctionConfig, log: StreamLog, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.env_id = env_id
        self.function = function
        self.log = log
        self._clock = clock
        self.created_at = clock()
        self.state = "init"
        self.busy = False  # owned by FunctionPool
        self.idle_since = self.created_at  # owned by FunctionPool: when the last invocation ended
        self.invocations = 0
        self.init_duration_ms: float | None = None
        self._init_reported = False
        self.init_error: Outcome | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.pump: OutputPump | None = None
        self.runtime_address: str | None = None
        self.exit_reason: str | None = None
        self.peak_rss_mb = 0
        self._pending: Invocation | None = None
        self._current: Invocation | None = None
        self._cond = threading.Condition()
        self._on_exit: list[Callable[[Environment], None]] = []
        self._status: ProcStatus | None = None  # the runtime's /proc status, read per REPORT

    # -- identity -------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.state in ("init", "ready")

    def retire(self) -> None:
        """Take the environment out of service now (it is about to be killed), so that no
        invocation is assigned to it between the kill and the process's exit."""
        with self._cond:
            if self.alive:
                self.state = "retired"
            self._cond.notify_all()

    def on_exit(self, callback: Callable[[Environment], None]) -> None:
        self._on_exit.append(callback)

    # -- invoker side ---------------------------------------------------------------------
    def assign(self, invocation: Invocation) -> None:
        """Give the environment its next invocation; a blocked ``/next`` returns it."""
        with self._cond:
            if self.init_error is not None:
                invocation.finish(self.init_error)
                return
            if not self.alive:
                invocation.finish(exit_outcome(invocation.request_id, self.exit_reason or "exit status 1"))
                return
            self._pending = invocation
            self._cond.notify_all()

    def take_init_duration(self) -> float | None:
        """The Init Duration, once: only the environment's first REPORT carries it (§8.3)."""
        with self._cond:
            if self._init_reported or self.init_duration_ms is None:
                return None
            self._init_reported = True
            return self.init_duration_ms

    def drain_output(self) -> None:
        if self.pump is not None:
            self.pump.drain()

    def measure_memory_mb(self) -> int:
        """Peak RSS of the runtime process in MB (kept when the process is gone)."""
        pid = self.pid
        if pid is not None and self.state != "dead":
            if self._status is None or self._status.pid != pid:
                self._status = ProcStatus(pid)
            self.peak_rss_mb = max(self.peak_rss_mb, self._status.peak_rss_mb())
        return self.peak_rss_mb

    # -- Runtime API side -----------------------------------------------------------------
    def next_invocation(self, *, stop: threading.Event | None = None) -> Invocation | None:
        """Block until an invocation is assigned (None when the environment stops)."""
        with self._cond:
            if self.init_duration_ms is None:
                self.init_duration_ms = (self._clock() - self.created_at) * 1000
                if self.state == "init":
                    self.state = "ready"
                self.measure_memory_mb()
            self._current = None
            while True:
                if not self.alive or (stop is not None and stop.is_set()):
                    return None
                invocation, self._pending = self._pending, None
                if invocation is not None and invocation.deliver():
                    self._current = invocation
                    self.invocations += 1
                    self.log.line(f"START RequestId: {invocation.request_id} Version: $LATEST")
                    return invocation
                self._cond.wait(0.5)

    def post_result(self, request_id: str, outcome: Outcome) -> bool:
        """The runtime posted /response or /error; False for an id it does not hold."""
        with self._cond:
            current = self._current
            if current is None or current.request_id != request_id:
                return False
            self._current = None
        current.finish(outcome)
        return True

    def post_init_error(self, outcome: Outcome) -> bool:
        """The runtime posted /init/error; False when init is already over (403 on AWS)."""
        with self._cond:
            if self.invocations > 0:
                return False
            self.init_duration_ms = (self._clock() - self.created_at) * 1000
            self.init_error = outcome
            self.state = "failed"
            pending, self._pending = self._pending, None
            self._cond.notify_all()
        if pending is not None:
            pending.finish(outcome)
        return True

    # -- process side ---------------------------------------------------------------------
    def process_exited(self, returncode: int) -> None:
        """Called by the launcher's watcher once the runtime process has exited."""
        reason = describe_exit(returncode)
        with self._cond:
            self.exit_reason = reason
            self.state = "dead"
            if self._status is not None:
                self._status.close()
            orphans = [i for i in (self._pending, self._current) if i is not None]
            self._pending = self._current = None
            self._cond.notify_all()
        for invocation in orphans:
            invocation.finish(exit_outcome(invocation.request_id, reason))
        for callback in self._on_exit:
            try:
                callback(self)
            except Exception:  # one broken listener must not keep the others from hearing
                log.exception("exit callback failed for environment %s", self.env_id)

    def describe(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "function": self.function.name,
            "pid": self.pid,
            "state": self.state,
            "busy": self.busy,
            "invocations": self.invocations,
            "log_stream": self.log.stream,
            "runtime_api": self.runtime_address,
            "init_duration_ms": self.init_duration_ms,
        }


def exit_outcome(request_id: str, reason: str) -> Outcome:
    """Runtime.ExitError as Lambda reports a runtime that exits mid-invocation (public
    captures of the Invoke response: ``RequestId: <id> Error: Runtime exited with error: exit
    status 1``)."""
    message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
    return Outcome(kind="exit", body=_error_json(message, "Runtime.ExitError"), error_type="Runtime.ExitError")


def timeout_outcome(request_id: str, elapsed_s: float) -> Outcome:
    """Sandbox.Timedout as the Invoke API answers it (public captures: ``{"errorType":
    "Sandbox.Timedout", "errorMessage": "RequestId: <id> Error: Task timed out after 3.00
    seconds"}``; docs/internals.md)."""
    message = f"RequestId: {request_id} Error: Task timed out after {elapsed_s:.2f} seconds"
    return Outcome(kind="timeout", body=_error_json(message, "Sandbox.Timedout"), error_type="Sandbox.Timedout")


def _error_json(message: str, error_type: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


# Go's os.ProcessState strings, which Lambda's "Runtime exited with error: ..." carries.
_SIGNAL_NAMES = {
    9: "killed",
    15: "terminated",
    6: "aborted",
    11: "segmentation fault",
    2: "interrupt",
    1: "hangup",
    7: "bus error",
    8: "floating point exception",
    13: "broken pipe",
}


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"signal: {_SIGNAL_NAMES.get(-returncode, f'signal {-returncode}')}"
    return f"exit status {returncode}"


class ProcStatus:
    """``/proc/<pid>/status`` held open: each reading is one ``pread`` instead of an open, a
    read and a close (the REPORT line of every invocation needs the peak RSS). The descriptor
    belongs to that process: once it has exited a read fails instead of reading a reused pid.
    Without /proc (or once closed) it falls back to :func:`peak_rss_mb`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._lock = threading.Lock()
        try:
            self._fd: int | None = os.open(f"/proc/{pid}/status", os.O_RDONLY)
        except OSError:
            self._fd = None

    def peak_rss_mb(self) -> int:
        with self._lock:  # a pread on a closed (and maybe reused) descriptor would read another file
            fd = self._fd
            if fd is None:
                return peak_rss_mb(self.pid)
            try:
                text = os.pread(fd, 8192, 0)
            except OSError:
                return 0  # the process is gone: the caller keeps its last measurement
        at = text.find(b"VmHWM:")
        if at < 0:
            return peak_rss_mb(self.pid)
        try:
            kb = int(text[at + 6 : text.index(b"kB", at)])
        except ValueError:
            return peak_rss_mb(self.pid)
        return max(1, round(kb / 1024))

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def peak_rss_mb(pid: int) -> int:
    """Peak resident set size of ``pid`` in MB (binary megabytes, as Lambda's REPORT uses)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return max(1, round(int(line.split()[1]) / 1024))
    except (OSError, ValueError, IndexError):
        pass
    try:
        return max(1, round(psutil.Process(pid).memory_info().rss / 1048576))
    except Exception:  # the process is gone: the caller keeps its last measurement
        return 0


class FunctionPool:
    """A function's environments: reuse an idle one, else start one, else throttle.

    ``launcher(function) -> Environment`` starts a process (slow; called outside the lock).
    The cap counts environments being started, so concurrent cold starts cannot overshoot
    reserved concurrency (docs/aws-behaviour.md §8.4).
    """

    def __init__(
        self,
        *,
        function: FunctionConfig,
        launcher: Callable[[FunctionConfig], Environment],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function = function
        self._launcher = launcher
        self._clock = clock
        self._lock = threading.Lock()
        self._envs: list[Environment] = []
        self._starting = 0
        self._closed = False
        self.throttles = 0
        self.cold_starts = 0

    def acquire(self) -> Environment | None:
        """A busy-marked environment for one invocation, or None when at the cap."""
        with self._lock:
            if self._closed:
                return None
            # Most recently used first keeps the working set warm, as Lambda's routing tends to.
            for env in reversed(self._envs):
                if env.alive and not env.busy and env.init_error is None:
                    env.busy = True
                    self._envs.remove(env)
                    self._envs.append(env)
                    return env
            if len(self._envs) + self._starting >= self.function.concurrency_cap:
                self.throttles += 1
                return None
            self._starting += 1
        try:
            env = self._launcher(self.function)
        except BaseException:
            with self._lock:
                self._starting -= 1
            raise
        env.busy = True
        env.on_exit(self._forget)
        with self._lock:
            self._starting -= 1
            self.cold_starts += 1
            if env.alive:
                self._envs.append(env)
        return env

    def release(self, env: Environment) -> None:
        with self._lock:
            env.busy = False
            env.idle_since = self._clock()
            if not env.alive and env in self._envs:
                self._envs.remove(env)

    def _forget(self, env: Environment) -> None:
        with self._lock:
            if env in self._envs:
                self._envs.remove(env)

    def reap_idle(self, idle_s: float) -> list[Environment]:
        """Take out environments idle for ``idle_s`` or more; the caller kills them."""
        now = self._clock()
        with self._lock:
            stale = [e for e in self._envs if not e.busy and now - e.idle_since >= idle_s]
            for env in stale:
                self._envs.remove(env)
                env.retire()
            return stale

    def environments(self) -> list[Environment]:
        with self._lock:
            return list(self._envs)

    def close(self) -> list[Environment]:
        """Refuse new work; returns the environments for the caller to stop."""
        with self._lock:
            self._closed = True
            return list(self._envs)
