"""Token buckets for DynamoDB capacity, on an injectable clock.

A bucket refills at ``rate`` units per second up to ``capacity`` units. For a provisioned table
the capacity is 300 seconds of the provisioned rate: DynamoDB "currently retains up to five
minutes (300 seconds) of unused read and write capacity" (docs/aws-behaviour.md §7.3,
DDB:bp-partition-key-design). For a partition key the capacity is one second of the per-partition
ceiling (1,000 WCU / 3,000 RCU per second, §7.3).

The level may go below zero: a read is admitted while the bucket is positive and charged what it
actually consumed afterwards (DynamoDB cannot know a Query's cost before running it), so a bucket
can carry debt that later refill pays back. Writes, whose cost is known up front, are admitted
only if the bucket holds their cost (see ``accounting.py``).

Time comes from a :class:`loadcheck.core.clock.Clock`; tests use ``ManualClock`` and never sleep.
"""

from __future__ import annotations

from loadcheck.core.clock import Clock, ManualClock, SystemClock

__all__ = ["Clock", "ManualClock", "SystemClock", "TokenBucket"]


class TokenBucket:
    """Lazily refilled token bucket. Not thread-safe on its own: ``Accounting`` holds the lock."""

    __slots__ = ("_clock", "_level", "_stamp", "capacity", "rate")

    def __init__(self, *, rate: float, capacity: float, level: float, clock: Clock) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._level = min(float(level), self.capacity)
        self._stamp = clock.now()

    def _refill(self) -> None:
        now = self._clock.now()
        elapsed = now - self._stamp
        self._stamp = now
        # A wall clock may step backwards (NTP); never drain the bucket for it.
        if elapsed > 0 and self._level < self.capacity:
            self._level = min(self.capacity, self._level + elapsed * self.rate)

    @property
    def level(self) -> float:
        self._refill()
        return self._level

    def is_full(self) -> bool:
        return self.level >= self.capacity

    def charge(self, units: float) -> None:
        """Take ``units`` (may leave the bucket in debt); a negative amount refunds."""
        self._refill()
        self._level = min(self.capacity, self._level - units)

    def reconfigure(self, *, rate: float, capacity: float) -> None:
        """New provisioned rate (UpdateTable): the level carries over, clamped to the new capacity."""
        self._refill()
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._level = min(self._level, self.capacity)
