"""Faults the aws service can inject (all off by default), with validation.

| fault | value | effect |
|---|---|---|
| ``drop-writes`` | fraction 0..1 | that share of successful PutItems is answered as success (and charged) but not stored |
| ``phantom-writes`` | int N >= 0 | the next N successful PutItems each also store one extra item in the same partition, with a sort key no request wrote (the request's sort key + ``#phantom-<n>``; numbers get ``+0.000001*n``) |
| ``ddb-latency`` | milliseconds 0..60000 (``200``, ``200ms``, ``0.2s``) | every DynamoDB call is delayed by this much before it is handled |

Set with config ``faults`` or ``POST /_loadcheck/faults`` (a JSON object; ``null`` clears one).
Names, units, coercion and validation are the registry's (``loadcheck.core.faults``); this
module keeps only what the faults do at run time.
These exist so the checks can prove they catch lost and unexpected writes and slow storage.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from loadcheck.core import faults as registry

SERVICE = "aws"


def validate(name: str, value: Any) -> float | int | None:
    """The fault's value in canonical form (None: off), or ConfigError naming value, unit and fix.

    Names, units, ranges and messages come from ``loadcheck.core.faults``.
    """
    result: float | int | None = registry.validate(name, value, service=SERVICE)
    return result


class Faults:
    """Active faults; thread-safe. ``rng`` is injectable so tests can pin drop decisions."""

    def __init__(self, *, initial: dict[str, Any] | None = None, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, float | int] = {}
        self._rng = rng or random.Random()
        self._phantoms_made = 0
        if initial:
            self.update(initial)

    def update(self, changes: dict[str, Any]) -> dict[str, float | int]:
        """Apply all changes or none (every value is validated first); None or a zero clears one."""
        clean = registry.validate_changes(SERVICE, changes)
        with self._lock:
            for name, value in clean.items():
                if value is None:
                    self._active.pop(name, None)
                else:
                    self._active[name] = value
            return dict(self._active)

    def active(self) -> dict[str, float | int]:
        with self._lock:
            return dict(self._active)

    @property
    def latency_s(self) -> float:
        return float(self._active.get("ddb-latency", 0)) / 1000.0

    def should_drop(self) -> bool:
        with self._lock:
            rate = float(self._active.get("drop-writes", 0))
            return rate > 0 and self._rng.random() < rate

    def take_phantom(self) -> int | None:
        """The phantom's serial number if a phantom is due for this PutItem, else None."""
        with self._lock:
            left = int(self._active.get("phantom-writes", 0))
            if left <= 0:
                return None
            if left == 1:
                del self._active["phantom-writes"]
            else:
                self._active["phantom-writes"] = left - 1
            self._phantoms_made += 1
            return self._phantoms_made
