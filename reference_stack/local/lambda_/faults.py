"""Faults the lambda service can inject (docs/internals.md, lambda "Faults").

    lambda-error     rate 0..1: the invocation fails as a function error (errorType
                     ``LoadcheckInjectedError``) without the handler running
    lambda-timeout   rate 0..1: the invocation runs into the function timeout

Faults exist so that checks can be proven able to fail; AWS has no such switch.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from loadcheck.core.errors import ConfigError

FAULTS = {
    "lambda-error": "rate 0..1: invocations fail as a function error without running the handler",
    "lambda-timeout": "rate 0..1: invocations run into the function timeout",
}


class Faults:
    """The active faults, changed at run time by ``POST /_loadcheck/faults``; thread-safe.

    ``rng`` is injectable so that tests can make the rolls deterministic.
    """

    def __init__(self, *, initial: dict[str, Any] | None = None, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = rng or random.Random()
        self._active: dict[str, float] = {}
        if initial:
            self.update(initial)

    def update(self, changes: Any) -> dict[str, float]:
        """Apply ``{name: rate | None}`` all-or-nothing; returns the active faults afterwards."""
        if not isinstance(changes, dict):
            raise ConfigError(
                f"faults must be a JSON object, got {type(changes).__name__}",
                value=changes,
                hint='send e.g. {"lambda-error": 0.5} or {"lambda-error": null} to clear',
            )
        parsed: dict[str, float | None] = {}
        for name, value in changes.items():
            if name not in FAULTS:
                raise ConfigError(
                    f"unknown fault {name!r} on the lambda service",
                    value=name,
                    hint=f"use one of: {', '.join(sorted(FAULTS))}",
                )
            if value is None:
                parsed[name] = None
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ConfigError(
                    f"fault {name!r} needs a rate between 0 and 1, got {value!r}",
                    value=value,
                    hint=f'send e.g. {{"{name}": 0.25}}, or null to clear it',
                )
            parsed[name] = float(value)
        with self._lock:
            for name, rate in parsed.items():
                if rate is None or rate == 0:
                    self._active.pop(name, None)
                else:
                    self._active[name] = rate
            return dict(self._active)

    def active(self) -> dict[str, float]:
        with self._lock:
            return dict(self._active)

    def roll(self, name: str) -> bool:
        """True when the fault ``name`` hits this invocation."""
        with self._lock:
            rate = self._active.get(name, 0.0)
            return rate > 0 and self._rng.random() < rate
