"""Faults the lambda service can inject (docs/internals.md, lambda "Faults").

    lambda-error     fraction 0..1: the invocation fails as a function error (errorType
                     ``LoadcheckInjectedError``) without the handler running
    lambda-timeout   fraction 0..1: the invocation runs into the function timeout

Names, units, coercion and validation are the registry's (``loadcheck.core.faults``).
Faults exist so that checks can be proven able to fail; AWS has no such switch.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from loadcheck.core import faults as registry

SERVICE = "lambda"
FAULTS = {name: registry.FAULTS[name].effect for name in registry.names(SERVICE)}


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
        parsed: dict[str, float | None] = registry.validate_changes(SERVICE, changes)
        with self._lock:
            for name, rate in parsed.items():
                if rate is None:
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
