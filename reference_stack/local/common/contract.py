"""The service process contract, written once (docs/internals.md, "Local stack processes").

Every service's ``__main__`` is one call::

    sys.exit(run_service(name="gateway", argv=None, parse=parse_config, serve=serve))

``run_service`` does, in this order:

1. parses ``--config FILE`` and reads the JSON object in it (:func:`read_config`);
2. hands it to the service's ``parse(data, where)`` and reads the admin token named by the
   common key ``admin_token_file`` into :attr:`Lifecycle.admin_token`; any :class:`LoadcheckError` raised there,
   or later while the service starts (a port in use, an unreadable certificate), is printed as
   ``<service>: error: <message>`` plus its ``fix:`` line on stderr, and the process exits with
   :data:`CONFIG_ERROR_EXIT` (2, the usage status of the loadcheck CLI: a service's own config is bad);
3. sets up logging on stderr at the config's ``log_level`` (the SDKs' debug chatter kept at
   WARNING: it would drown the service's own lines and may echo headers);
4. turns SIGTERM and SIGINT into :attr:`Lifecycle.stop`, and, when the config names a
   ``parent_pid``, watches it: once the process's parent is no longer that pid, ``stop`` is set;
5. runs ``serve(config, lifecycle)``: the service listens, calls :meth:`Lifecycle.ready` with
   its port (which writes ``ready_file`` atomically: ``{"port", "pid"}``), waits on
   ``lifecycle.stop``, flushes and stops its children, and returns its exit status (0).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from loadcheck.core.errors import ConfigError, ExitCode, LoadcheckError
from loadcheck.core.jsonfile import read_json_object
from loadcheck.core.state import write_json_atomic
from reference_stack.local.common.admin_token import read_token_file

CONFIG_ERROR_EXIT = int(ExitCode.USAGE)  # 2: a service refuses its configuration, whatever the error
PARENT_POLL_S = 0.5
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Libraries whose DEBUG/INFO lines would drown a service's own (and may echo request headers).
QUIET_LOGGERS = ("botocore", "boto3", "urllib3", "werkzeug")

log = logging.getLogger("loadcheck.service")


class ContractConfig(Protocol):
    """The common keys a parsed service config exposes to the contract."""

    @property
    def ready_file(self) -> str | Path | None: ...

    @property
    def parent_pid(self) -> int | None: ...

    @property
    def log_level(self) -> str: ...


C = TypeVar("C", bound=ContractConfig)


def read_config(path: str | Path, *, service: str) -> dict[str, Any]:
    """The JSON object in ``path``; a missing file, bad JSON or a non-object is a ConfigError."""
    return read_json_object(
        path,
        what=f"{service} service config",
        hint="write a JSON object with the keys in docs/internals.md (fix the JSON syntax at the position named)",
        missing_hint=f"pass the file the supervisor wrote: --config <state>/services/{service}.json",
    )


def log_level(data: dict[str, Any], *, where: str, default: str = "INFO") -> str:
    """The ``log_level`` key, upper-cased and checked: one rule for every service."""
    value = data.get("log_level", default)
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        raise ConfigError(
            f"{where}: log_level={value!r} is invalid", value=value, hint=f"use one of {', '.join(LOG_LEVELS)}"
        )
    return value.upper()


def write_ready_file(path: Path, port: int) -> None:
    """``{"port", "pid"}``, written atomically (the launcher never reads half a file)."""
    write_json_atomic(path, {"port": int(port), "pid": os.getpid()})


@dataclass
class Lifecycle:
    """What a running service gets from the contract: the stop event, the ready announcement and
    the admin token its ``/_loadcheck/*`` handler checks (:func:`~.admin_token.admin_refusal`)."""

    service: str
    stop: threading.Event
    ready_file: Path | None
    admin_token: str | None = None

    def ready(self, port: int) -> None:
        """Announce that the service listens on ``port``: write ``ready_file`` atomically."""
        if self.ready_file is not None:
            write_ready_file(self.ready_file, port)

    def watch_parent(self, parent_pid: int) -> None:
        """Set ``stop`` once this process's parent is no longer ``parent_pid`` (it died: we were re-parented)."""
        while not self.stop.wait(PARENT_POLL_S):
            if os.getppid() != parent_pid:
                log.warning("%s: parent process %d is gone; shutting down", self.service, parent_pid)
                self.stop.set()
                return


def report_error(service: str, exc: LoadcheckError) -> int:
    """Print ``<service>: error: <message>`` (and its fix) on stderr; the exit status to return."""
    print(f"{service}: error: {exc}", file=sys.stderr, flush=True)
    return CONFIG_ERROR_EXIT


def run_service(
    *,
    name: str,
    description: str,
    parse: Callable[[dict[str, Any], str], C],
    serve: Callable[[C, Lifecycle], int],
    argv: list[str] | None = None,
    module: str | None = None,
) -> int:
    """Run one service process under the contract; returns its exit status.

    ``module`` is the package run with ``python -m`` (default ``reference_stack.local.<name>``).
    """
    prog = f"python -m {module or 'reference_stack.local.' + name}"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help=f"the service config JSON (<state>/services/{name}.json)")
    args = parser.parse_args(argv)
    try:
        data = read_config(args.config, service=name)
        config = parse(data, args.config)
        admin_token = read_token_file(data.get("admin_token_file"))
    except LoadcheckError as exc:
        return report_error(name, exc)
    logging.basicConfig(level=config.log_level, stream=sys.stderr, format=LOG_FORMAT)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    lifecycle = Lifecycle(
        service=name,
        stop=threading.Event(),
        ready_file=Path(config.ready_file) if config.ready_file else None,
        admin_token=admin_token,
    )

    def on_signal(signum: int, _frame: object) -> None:
        log.info("%s: signal %d: shutting down", name, signum)
        lifecycle.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if config.parent_pid:
        threading.Thread(
            target=lifecycle.watch_parent, args=(config.parent_pid,), name="parent-watch", daemon=True
        ).start()
    try:
        return serve(config, lifecycle)
    except LoadcheckError as exc:
        return report_error(name, exc)
