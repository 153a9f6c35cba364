"""The one exception tree of loadcheck, and the exit codes of every command.

    LoadcheckError                 anything loadcheck reports to a user      exit 4 ERROR
    ├── ConfigError                bad option, environment variable or configuration file   2 USAGE
    │   └── DescriptionError       stack.auto.tfvars.json is missing or invalid             2 USAGE
    ├── StackError                 the local stack: cannot start, not running, already running
    │   ├── StackNotRunning                                                  5 TARGET_UNUSABLE
    │   └── StackAlreadyRunning                                              5 TARGET_UNUSABLE
    ├── RunDirError                a run directory is missing, corrupt or of an unknown version  4 ERROR
    │   └── LedgerError            a ledger file cannot be read (names file and line)           4 ERROR
    └── TargetError                the target (AWS or local) cannot be reached or described 5 TARGET_UNUSABLE

Every error carries the offending value and a hint that says how to fix it; ``str(err)``
renders both, so the CLI prints it as is, and exits with the error's ``exit_code``.

:class:`ExitCode` is the table docs/cli.md shows; when several apply to one run the verdict
(:func:`loadcheck.core.rundir.verdict`) picks one by :data:`EXIT_PRECEDENCE`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    """What a loadcheck command's exit status means (docs/cli.md, "Exit codes")."""

    PASSED = 0  # everything passed
    CHECK_FAILED = 1  # a check failed
    USAGE = 2  # bad options, arguments, environment variables or configuration file
    THRESHOLD_FAILED = 3  # checks passed but a threshold failed (or a compare budget broke)
    ERROR = 4  # checks could not run / verdict error / a run directory or baseline unreadable
    TARGET_UNUSABLE = 5  # the local stack is not running or cannot start, AWS unreachable
    ABORTED = 6  # --abort-on-fail stopped the load: a threshold could no longer pass
    INTERRUPTED = 130  # Ctrl-C / SIGINT


# When several codes apply to one run, the first of these present wins.
EXIT_PRECEDENCE = (
    ExitCode.ERROR,
    ExitCode.CHECK_FAILED,
    ExitCode.INTERRUPTED,
    ExitCode.ABORTED,
    ExitCode.THRESHOLD_FAILED,
    ExitCode.PASSED,
)


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The code of a run to which all of ``codes`` apply (:data:`EXIT_PRECEDENCE`); PASSED for none."""
    present = set(codes)
    return next((c for c in EXIT_PRECEDENCE if c in present), ExitCode.PASSED)


class LoadcheckError(Exception):
    """Base of every error loadcheck reports to its user."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, *, value: object = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.hint = hint

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


class ConfigError(LoadcheckError):
    """An option, environment variable or configuration value is invalid."""

    exit_code = ExitCode.USAGE


class DescriptionError(ConfigError):
    """The stack description (stack.auto.tfvars.json) is missing or invalid."""

    def __init__(
        self, message: str, *, path: str, field: str | None = None, value: object = None, hint: str | None = None
    ) -> None:
        where = f"{path}: {field}: " if field else f"{path}: "
        super().__init__(where + message, value=value, hint=hint)
        self.path = path
        self.field = field


class StackError(LoadcheckError):
    """The local stack could not be started, stopped or reached."""

    exit_code = ExitCode.TARGET_UNUSABLE


class StackNotRunning(StackError):
    """No local stack runs for the given state directory."""


class StackAlreadyRunning(StackError):
    """A local stack already runs for the given state directory."""


class RunDirError(LoadcheckError):
    """A run directory is missing, corrupt, or written by an unknown schema version."""


class LedgerError(RunDirError):
    """A ledger file cannot be read."""

    def __init__(self, message: str, *, path: str, line: int | None = None, hint: str | None = None) -> None:
        where = f"{path}" + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}", value=path, hint=hint)
        self.path = path
        self.line = line


class TargetError(LoadcheckError):
    """The target cannot be reached or described."""

    exit_code = ExitCode.TARGET_UNUSABLE
