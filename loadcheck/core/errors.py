"""The one exception tree of loadcheck.

    LoadcheckError                 anything loadcheck reports to a user (exit status 2)
    ├── ConfigError                bad option, environment variable or configuration file
    │   └── DescriptionError       stack.auto.tfvars.json is missing or invalid
    ├── StackError                 the local stack: cannot start, not running, already running
    │   ├── StackNotRunning
    │   └── StackAlreadyRunning
    ├── RunDirError                a run directory is missing, corrupt or of an unknown version
    │   └── LedgerError            a ledger file cannot be read (names file and line)
    └── TargetError                the target (AWS or local) cannot be reached or described

Every error carries the offending value and a hint that says how to fix it; ``str(err)``
renders both, so the CLI prints it as is.
"""

from __future__ import annotations

from enum import IntEnum


class LoadcheckError(Exception):
    """Base of every error loadcheck reports to its user."""

    exit_status = 2

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


class ExitCode(IntEnum):
    """The exit codes of every command (docs/cli.md). When several apply to one run, the
    precedence is ERROR > CHECK_FAILED > INTERRUPTED > ABORTED > THRESHOLD_FAILED > PASSED."""

    PASSED = 0  # everything passed
    CHECK_FAILED = 1  # a check failed
    USAGE = 2  # bad options, arguments, environment variables or configuration file
    THRESHOLD_FAILED = 3  # checks passed but a threshold failed (or a compare budget broke)
    ERROR = 4  # checks could not run, verdict `error`, a run directory or baseline unreadable
    TARGET_UNUSABLE = 5  # the local stack is not running / cannot start, AWS unreachable
    ABORTED = 6  # --abort-on-fail stopped the load because a threshold could no longer pass
    INTERRUPTED = 130  # Ctrl-C / SIGINT
