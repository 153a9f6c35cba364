"""The gateway's injectable faults (docs/internals.md, section "gateway").

    drop-access-logs=FRACTION    0..1: that share of access-log records is never shipped
    blank-access-log-field=NAME  the access-log field NAME (a key of the format) renders as "-"
    throttle-status=CODE         a 429 returned by the integration reaches the client as CODE
    log-delay=SECONDS            0..3600 (3, 3s, 3000ms) added to the delivery delay
    allow-denied=1               the `denied` identity is evaluated with an allow-all policy

Names, units, coercion and validation are the registry's (``loadcheck.core.faults``); this
module keeps the active set and what the gateway asks of it.

Faults exist to prove the checks can fail; none is active unless set.
"""

from __future__ import annotations

import threading
from typing import Any

from loadcheck.core import faults as registry

SERVICE = "gateway"


class Faults:
    """The active faults; thread-safe. ``log_fields`` bounds ``blank-access-log-field``."""

    def __init__(self, *, log_fields: tuple[str, ...] = (), initial: dict[str, Any] | None = None) -> None:
        self._lock = threading.Lock()
        self._log_fields = log_fields
        self._active: dict[str, Any] = {}
        if initial:
            self.update(initial)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Set (value) or clear (None, or a value of no effect) faults; all-or-nothing.

        Raises ConfigError naming the bad fault, its value, unit and a correct example.
        """
        validated = registry.validate_changes(SERVICE, changes, fields=self._log_fields)
        with self._lock:
            for name, value in validated.items():
                if value is None:
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
