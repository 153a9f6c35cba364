"""The gateway's injectable faults (docs/internals.md, section "gateway").

    drop-access-logs=RATE        0..1: that share of access-log records is never shipped
    blank-access-log-field=NAME  the access-log field NAME (a key of the format) renders as "-"
    throttle-status=CODE         a 429 returned by the integration reaches the client as CODE
    log-delay=SECONDS            added to the delivery delay before records are shipped
    allow-denied=1               the `denied` identity is evaluated with an allow-all policy

Faults exist to prove the checks can fail; none is active unless set.
"""

from __future__ import annotations

import threading
from typing import Any

from loadcheck.core.errors import ConfigError

NAMES = ("drop-access-logs", "blank-access-log-field", "throttle-status", "log-delay", "allow-denied")


class Faults:
    """The active faults; thread-safe. ``log_fields`` bounds ``blank-access-log-field``."""

    def __init__(self, *, log_fields: tuple[str, ...] = (), initial: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._log_fields = log_fields
        self._active: dict[str, Any] = {}
        if initial:
            self.update(initial)

    def _validate(self, name: str, value: Any) -> Any:
        if name not in NAMES:
            raise ConfigError(f"unknown gateway fault {name!r}", value=name, hint=f"use one of {', '.join(NAMES)}")
        bad = ConfigError(
            f"bad value {value!r} for gateway fault {name!r}",
            value=value,
            hint={
                "drop-access-logs": "give a rate between 0 and 1",
                "blank-access-log-field": f"give one of the access-log fields {list(self._log_fields)}",
                "throttle-status": "give an HTTP status code 100..599",
                "log-delay": "give seconds >= 0",
                "allow-denied": "give 1 (on) or 0 (off)",
            }[name],
        )
        if name == "blank-access-log-field":
            if not isinstance(value, str) or value not in self._log_fields:
                raise bad
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad
        try:
            number = float(value)
        except ValueError:
            raise bad from None
        if name == "drop-access-logs" and not 0 <= number <= 1:
            raise bad
        if name == "throttle-status" and not (number.is_integer() and 100 <= number <= 599):
            raise bad
        if name == "log-delay" and number < 0:
            raise bad
        if name == "allow-denied" and number not in (0, 1):
            raise bad
        return int(number) if name in ("throttle-status", "allow-denied") else number

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Set (value) or clear (None) faults; all-or-nothing; raises ConfigError naming the bad one."""
        if not isinstance(changes, dict):
            raise ConfigError("faults must be a JSON object", value=changes, hint='POST {"name": value or null}')
        validated = {k: (None if v is None else self._validate(k, v)) for k, v in changes.items()}
        for name in changes:
            if name not in NAMES:
                raise ConfigError(f"unknown gateway fault {name!r}", value=name, hint=f"use one of {', '.join(NAMES)}")
        with self._lock:
            for name, value in validated.items():
                if value is None or (name == "allow-denied" and value == 0):
                    self._active.pop(name, None)
                else:
                    self._active[name] = value
            return dict(self._active)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._active)

    def get(self, name: str) -> Any:
        with self._lock:
            return self._active.get(name)
