"""Starting and stopping service processes: the one launcher of the local stack.

The supervisor, the gateway harness (tests, ``loadcheck bench gateway``) and the load
generator's test server all start their processes here::

    proc = ServiceProcess.for_service("gateway", config, config_path=..., log_path=...)
    port = proc.launch(timeout_s=60, healthy=lambda port: ...)   # start + wait for ready_file
    ...
    status = proc.stop()                                         # SIGTERM, grace, kill the group

Each process runs in a session (process group) of its own, so the SIGKILL of its group that
ends :meth:`ServiceProcess.stop` also removes its children (Lambda execution environments) even
when the service itself crashed. The service itself gets SIGTERM first and up to ``grace_s`` to
flush and stop its children in order (the contract allows 10 s).
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

from loadcheck.core.errors import StackError
from loadcheck.core.state import write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
READY_POLL_S = 0.05
# The package each service runs as: ``python -m <module> --config FILE``.
SERVICE_MODULES = {
    "aws": "reference_stack.local.aws",
    "search": "reference_stack.local.search",
    "lambda": "reference_stack.local.lambda_",
    "gateway": "reference_stack.local.gateway",
}
# Services use identities.json, never the user's AWS profile.
_AWS_PROFILE_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE")


def child_env() -> dict[str, str]:
    """This process's environment for a child: the repository importable, output unbuffered,
    and no AWS profile variables."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    for var in _AWS_PROFILE_VARS:
        env.pop(var, None)
    return env


def kill_group(pid: int) -> None:
    """SIGKILL a process's whole process group (its children included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def log_tail(path: Path | None, lines: int = 15) -> str:
    """The last ``lines`` of a log file, for an error message."""
    if path is None:
        return "(its output went to this process's stderr)"
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ServiceProcess:
    """One child process that announces readiness with a ready file ``{"port", "pid"}``."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        ready_file: Path,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.ready_file = ready_file
        self.log_path = log_path
        self.env = env
        self.config: dict[str, Any] = {}  # the service config it runs with (for_service)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @classmethod
    def for_service(
        cls,
        name: str,
        config: dict[str, Any],
        *,
        config_path: Path,
        log_path: Path | None = None,
        module: str | None = None,
    ) -> ServiceProcess:
        """A local-stack service: writes ``config`` (0600; key order kept, as the access-log
        format's field order matters) to ``config_path`` and runs ``python -m <module> --config``."""
        write_json_atomic(config_path, config, mode=0o600, sort_keys=False)
        module = module or SERVICE_MODULES[name]
        proc = cls(
            name,
            [sys.executable, "-m", module, "--config", str(config_path)],
            ready_file=Path(config["ready_file"]),
            log_path=log_path if log_path is not None else config_path.with_suffix(".log"),
            env=child_env(),
        )
        proc.config = config
        return proc

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise StackError(f"{self.name} was never started", value=self.name, hint="call start() first")
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def start(self) -> ServiceProcess:
        """Start the process in its own session; a stale ready file is removed first."""
        self.ready_file.unlink(missing_ok=True)
        out: Any = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            out = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it once started
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                stdin=subprocess.DEVNULL,
                cwd=str(REPO_ROOT),
                env=self.env,
                start_new_session=True,
            )
        finally:
            if out is not None:
                out.close()
        return self

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S, *, healthy: Callable[[int], bool] | None = None) -> int:
        """Poll the ready file (and ``healthy(port)`` if given) against a deadline; the port.

        Raises StackError naming the log when the process exits first or the deadline passes.
        """
        proc = self.proc
        if proc is None:
            raise StackError(f"{self.name} was never started", value=self.name, hint="call start() first")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(
                    f"service {self.name} exited with status {proc.returncode} while starting",
                    value=self.name,
                    hint=f"see {self.log_path}:\n{log_tail(self.log_path)}",
                )
            port = self._ready_port()
            if port and (healthy is None or healthy(port)):
                self.port = port
                return port
            time.sleep(READY_POLL_S)  # polling the ready file against a deadline
        raise StackError(
            f"service {self.name} did not become ready within {timeout_s:.0f} s",
            value=self.name,
            hint=f"see {self.log_path}:\n{log_tail(self.log_path)}",
        )

    def launch(self, timeout_s: float = READY_TIMEOUT_S, *, healthy: Callable[[int], bool] | None = None) -> int:
        """Start and wait until ready; a process that fails to get ready is stopped. The port."""
        self.start()
        try:
            return self.wait_ready(timeout_s, healthy=healthy)
        except BaseException:
            self.stop()
            raise

    def _ready_port(self) -> int:
        try:
            return int(json.loads(self.ready_file.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0  # not written yet (it is written atomically, so never half-written)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM the process, wait up to ``grace_s``, then kill its whole group; its exit status.

        The status is the process's own when it exited within the grace period (0 after a clean
        shutdown), negative (the signal) when it had to be killed, None if never started.
        Calling it again returns the same status.
        """
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace_s)
        kill_group(proc.pid)  # whatever is left of its children, and itself if it did not stop
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        return proc.returncode
