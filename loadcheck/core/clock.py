"""The clock every part of loadcheck takes as an argument (injected, so tests never sleep).

    Clock         the protocol: ``time()`` (epoch seconds), ``monotonic()``, ``sleep(s)``, ``now()``
    SystemClock   the real one; the only place anything waits
    ManualClock   moves only when told to (``advance``) or when something sleeps on it

``now()`` is ``time()``: the local stack's capacity buckets and metrics speak of wall time (so
metric timestamps are real minutes), the checks of deadlines (``monotonic``) and waits (``sleep``).
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def now(self) -> float: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to (tests, and the test-only ``clock: "manual"`` config of
    the aws service); ``sleep`` advances it at once."""

    def __init__(self, *, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def now(self) -> float:
        return self.time()

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError(f"a clock only moves forward; advance_s={seconds!r} must be >= 0")
        with self._lock:
            self._now += seconds
            return self._now
