"""``--py-spy-dir DIR``: a py-spy profile of each service process over a benchmark's measured interval.

py-spy samples a running process from outside (no change to the service, no restart), so the
profile shows the service exactly as the benchmark measured it. Each process gets
``DIR/<name>.svg`` (a flame graph) and ``DIR/<name>.txt`` (py-spy's collapsed stacks, one line
per stack with its sample count) for the next person to read or diff.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from loadcheck.core.errors import ConfigError

RATE_HZ = 200


def py_spy() -> str:
    """The py-spy executable, or a ConfigError that says how to get it."""
    found = shutil.which("py-spy")
    if found is None:
        raise ConfigError(
            "--profile needs py-spy, which is not on PATH",
            value="py-spy",
            hint="pip install 'py-spy>=0.3' into the environment that runs loadcheck (it may need ptrace rights)",
        )
    return found


@dataclass
class Profiles:
    """py-spy recorders started for one measured interval; :meth:`wait` collects them."""

    directory: Path
    running: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, pids: dict[str, int], seconds: float) -> None:
        exe = py_spy()
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            for fmt, suffix in (("flamegraph", "svg"), ("raw", "txt")):
                out = self.directory / f"{name}.{suffix}"
                cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
                cmd += [
                    "--rate",
                    str(RATE_HZ),
                    "--nonblocking",
                    "--subprocesses",
                    "--format",
                    fmt,
                    "--output",
                    str(out),
                ]
                self.running.append((name, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))

    def wait(self, timeout_s: float = 60.0) -> list[str]:
        """Wait for every recorder; the files written (a recorder that failed writes none)."""
        written = []
        for _name, proc in self.running:
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for path in sorted(self.directory.glob("*")):
            written.append(str(path))
        self.running.clear()
        return written
