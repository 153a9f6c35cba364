"""The capacity model: per-table and per-partition-key token buckets and admission rules.

This is the state and rules half of the governor (``governor.py`` is the wire half). It knows
nothing of HTTP or moto; it is fed table settings and request costs and answers "admit or
throttle, and why".

Model (docs/aws-behaviour.md §7.2, §7.3; docs/fidelity.md section aws):

- Provisioned table: one read and one write bucket, refilling at the provisioned RCU / WCU per
  second, holding up to 300 s of unused capacity (burst). They start full (``burst_start:
  "full"``: a table idle for 5 minutes) or empty (``"empty"``).
- On-demand (PAY_PER_REQUEST) table: no provisioned rate; the table is limited to the default
  per-table maximum of 40,000 read / 40,000 write request units per second (a bucket of one
  second at that rate), plus the per-partition ceilings.
- Every partition-key value (per table, per index) has a read bucket of 3,000 RCU/s and a write
  bucket of 1,000 WCU/s holding one second (§7.3 per-partition hard limits). We treat each key
  value as its own partition (AWS may co-locate several keys in one partition, which can only
  throttle earlier; adaptive capacity isolates hot keys, which is what this models).
- Writes know their cost before they run: admitted only if every bucket involved holds the cost
  (or, for an item costing more than a bucket can ever hold, if the bucket is full), then
  charged at once. Reads cannot know their cost (a Query's result is unknown): admitted while the
  buckets are positive, charged the actual consumption afterwards, possibly into debt that
  refill repays. This matches what DynamoDB documents (reads are charged what they consumed;
  a throttled request consumes nothing); the exact admission rule of DynamoDB is not published
  (UNCONFIRMED), this one is our choice.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from loadcheck.core.capacity import BURST_SECONDS  # docs/aws-behaviour.md §7.3
from reference_stack.local.aws.buckets import Clock, TokenBucket

Kind = Literal["read", "write"]

KINDS: tuple[Kind, Kind] = ("read", "write")

PARTITION_READ_PER_S = 3000.0  # §7.3: per-partition hard limits
PARTITION_WRITE_PER_S = 1000.0
ON_DEMAND_TABLE_MAX_PER_S = 40000.0  # default per-table on-demand maximum (RRU / WRU per second)
MAX_KEY_BUCKETS = 20000  # prune full per-key buckets beyond this many


@dataclass(frozen=True)
class TableSettings:
    """What the governor reads from moto for a table (so UpdateTable applies live)."""

    name: str
    arn: str
    on_demand: bool
    read_capacity: float
    write_capacity: float


@dataclass
class Admission:
    admitted: bool
    reasons: list[str] = field(default_factory=list)


def reason(kind: Kind, limit: str) -> str:
    """ThrottlingReason text: ResourceType + OperationType + LimitType (§7.4)."""
    return f"Table{'Read' if kind == 'read' else 'Write'}{limit}"


@dataclass
class _TableState:
    settings: TableSettings
    read: TokenBucket
    write: TokenBucket

    def bucket(self, kind: Kind) -> TokenBucket:
        return self.read if kind == "read" else self.write


class Accounting:
    """Buckets for every table and hot key; thread-safe (one short lock around bucket arithmetic)."""

    def __init__(self, *, clock: Clock, burst_start: Literal["full", "empty"] = "full") -> None:
        self.clock = clock
        self.burst_start = burst_start
        self._lock = threading.Lock()
        self._tables: dict[str, _TableState] = {}
        self._keys: dict[tuple[str, Kind, Hashable], TokenBucket] = {}
        self._prune_at = MAX_KEY_BUCKETS

    # -- table settings ---------------------------------------------------------------------------

    @staticmethod
    def _rate_and_capacity(settings: TableSettings, kind: Kind) -> tuple[float, float]:
        if settings.on_demand:
            return ON_DEMAND_TABLE_MAX_PER_S, ON_DEMAND_TABLE_MAX_PER_S
        rate = settings.read_capacity if kind == "read" else settings.write_capacity
        return rate, rate * BURST_SECONDS

    def sync_table(self, settings: TableSettings) -> None:
        """Create the table's buckets, or retune them if its capacity or billing mode changed."""
        with self._lock:
            state = self._tables.get(settings.name)
            if state is not None and state.settings == settings:
                return
            if state is None:
                buckets = {}
                for kind in KINDS:
                    rate, cap = self._rate_and_capacity(settings, kind)
                    start = cap if (settings.on_demand or self.burst_start == "full") else 0.0
                    buckets[kind] = TokenBucket(rate=rate, capacity=cap, level=start, clock=self.clock)
                self._tables[settings.name] = _TableState(settings, buckets["read"], buckets["write"])
                return
            for kind in KINDS:
                rate, cap = self._rate_and_capacity(settings, kind)
                state.bucket(kind).reconfigure(rate=rate, capacity=cap)
            state.settings = settings

    def forget_table(self, name: str) -> None:
        with self._lock:
            self._tables.pop(name, None)
            for key in [k for k in self._keys if k[0] == name]:
                del self._keys[key]

    def settings(self, name: str) -> TableSettings | None:
        state = self._tables.get(name)
        return state.settings if state else None

    # -- buckets ----------------------------------------------------------------------------------

    def _key_bucket(self, table: str, kind: Kind, key: Hashable) -> TokenBucket:
        bucket = self._keys.get((table, kind, key))
        if bucket is None:
            if len(self._keys) >= self._prune_at:
                # A full bucket is indistinguishable from a fresh one: dropping it changes nothing.
                for k in [k for k, b in self._keys.items() if b.is_full()]:
                    del self._keys[k]
                # Sweep again only after the map has doubled: pruning stays amortised O(1) per key.
                self._prune_at = max(MAX_KEY_BUCKETS, 2 * len(self._keys))
            rate = PARTITION_READ_PER_S if kind == "read" else PARTITION_WRITE_PER_S
            bucket = TokenBucket(rate=rate, capacity=rate, level=rate, clock=self.clock)
            self._keys[(table, kind, key)] = bucket
        return bucket

    def _table_limit(self, state: _TableState) -> str:
        return "AccountLimitExceeded" if state.settings.on_demand else "ProvisionedThroughputExceeded"

    def admit_writes(self, table: str, costs: Sequence[tuple[Hashable | None, float]]) -> list[Admission]:
        """Admit each ``(partition key, WCU)`` in order, charging the admitted ones at once."""
        with self._lock:
            state = self._tables[table]
            out = []
            for key, cost in costs:
                buckets = [(state.write, self._table_limit(state))]
                if key is not None:
                    buckets.append((self._key_bucket(table, "write", key), "KeyRangeThroughputExceeded"))
                reasons = [
                    reason("write", limit) for bucket, limit in buckets if bucket.level < min(cost, bucket.capacity)
                ]
                if not reasons:
                    for bucket, _ in buckets:
                        bucket.charge(cost)
                out.append(Admission(not reasons, reasons))
            return out

    def admit_reads(self, table: str, keys: Sequence[Hashable | None]) -> list[Admission]:
        """Admit each read while its buckets are positive; charge later with ``charge``."""
        with self._lock:
            state = self._tables[table]
            out = []
            for key in keys:
                reasons = []
                if state.read.level <= 0:
                    reasons.append(reason("read", self._table_limit(state)))
                if key is not None and self._key_bucket(table, "read", key).level <= 0:
                    reasons.append(reason("read", "KeyRangeThroughputExceeded"))
                out.append(Admission(not reasons, reasons))
            return out

    def charge(self, table: str, kind: Kind, key: Hashable | None, units: float) -> None:
        """Take ``units`` from the table and key buckets (negative refunds); may leave debt."""
        if not units:
            return
        with self._lock:
            state = self._tables.get(table)
            if state is None:
                return
            state.bucket(kind).charge(units)
            if key is not None:
                self._key_bucket(table, kind, key).charge(units)

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Bucket levels for ``GET /_loadcheck/capacity`` (diagnostics)."""
        with self._lock:
            return {
                name: {
                    "billing_mode": "PAY_PER_REQUEST" if s.settings.on_demand else "PROVISIONED",
                    "read_capacity_units": s.settings.read_capacity,
                    "write_capacity_units": s.settings.write_capacity,
                    "read_level": round(s.read.level, 3),
                    "write_level": round(s.write.level, 3),
                    "read_bucket_capacity": s.read.capacity,
                    "write_bucket_capacity": s.write.capacity,
                    "hot_keys": sum(1 for k in self._keys if k[0] == name),
                }
                for name, s in self._tables.items()
            }
