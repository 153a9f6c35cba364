"""Faults the aws service can inject (all off by default), with validation.

| fault | value | effect |
|---|---|---|
| ``drop-writes`` | rate 0..1 | that share of successful PutItems is answered as success (and charged) but not stored |
| ``phantom-writes`` | int N >= 0 | the next N successful PutItems each also store one extra item in the same partition, with a sort key no request wrote (the request's sort key + ``#phantom-<n>``; numbers get ``+0.000001*n``) |
| ``ddb-latency`` | ms 0..60000 | every DynamoDB call is delayed by this much before it is handled |

Set with config ``faults`` or ``POST /_loadcheck/faults`` (a JSON object; ``null`` clears one).
These exist so the checks can prove they catch lost and unexpected writes and slow storage.
"""

from __future__ import annotations

import random
import threading
from typing import Any

from loadcheck.core.errors import ConfigError

FAULT_NAMES = ("drop-writes", "phantom-writes", "ddb-latency")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(
            f"fault {name}={value!r} is not a number",
            value=value,
            hint=f"give {name} a number, e.g. {name}=0.1, or null to clear it",
        )
    try:
        return float(value)
    except ValueError:
        raise ConfigError(
            f"fault {name}={value!r} is not a number",
            value=value,
            hint=f"give {name} a number, e.g. {name}=0.1, or null to clear it",
        ) from None


def validate(name: str, value: Any) -> float | int:
    """The fault's value in canonical form, or ConfigError naming the bad name/value and the fix."""
    if name not in FAULT_NAMES:
        raise ConfigError(
            f"unknown fault {name!r} for the aws service", value=name, hint=f"known faults: {', '.join(FAULT_NAMES)}"
        )
    number = _number(name, value)
    if name == "drop-writes":
        if not 0.0 <= number <= 1.0:
            raise ConfigError(
                f"fault drop-writes={value!r} is not a rate",
                value=value,
                hint="use a rate between 0 and 1, e.g. drop-writes=0.01",
            )
        return number
    if name == "phantom-writes":
        if number < 0 or number != int(number):
            raise ConfigError(
                f"fault phantom-writes={value!r} is not a whole count",
                value=value,
                hint="use a whole number of PutItems >= 0, e.g. phantom-writes=3",
            )
        return int(number)
    if not 0.0 <= number <= 60000.0:
        raise ConfigError(
            f"fault ddb-latency={value!r} is outside 0..60000 ms",
            value=value,
            hint="give the added latency in milliseconds, e.g. ddb-latency=50",
        )
    return number


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
        """Apply all changes or none (every value is validated first)."""
        if not isinstance(changes, dict):
            raise ConfigError(
                f"faults must be a JSON object, got {type(changes).__name__}",
                value=changes,
                hint='send e.g. {"drop-writes": 0.1} or {"drop-writes": null}',
            )
        clean = {name: (None if value is None else validate(name, value)) for name, value in changes.items()}
        with self._lock:
            for name, value in clean.items():
                if value is None or (name != "ddb-latency" and value == 0):
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
