"""The capacity model (buckets, burst, debt, per-key ceilings) on a manual clock: no sleeping."""

from __future__ import annotations

import pytest

from reference_stack.local.aws.accounting import Accounting, TableSettings
from reference_stack.local.aws.buckets import ManualClock, TokenBucket

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/T"


def provisioned(rcu: float = 1, wcu: float = 1) -> TableSettings:
    return TableSettings(name="T", arn=ARN, on_demand=False, read_capacity=rcu, write_capacity=wcu)


def make(burst_start: str = "empty", settings: TableSettings | None = None) -> tuple[Accounting, ManualClock]:
    clock = ManualClock(start=1_000_000.0)
    acc = Accounting(clock=clock, burst_start=burst_start)  # type: ignore[arg-type]
    acc.sync_table(settings or provisioned())
    return acc, clock


def writes_admitted(acc: Accounting, n: int, cost: float = 1, key: object = None) -> int:
    return sum(acc.admit_writes("T", [(key, cost)])[0].admitted for _ in range(n))


class TestTokenBucket:
    def test_refills_at_rate_up_to_capacity(self) -> None:
        clock = ManualClock(start=0)
        bucket = TokenBucket(rate=2, capacity=10, level=0, clock=clock)
        clock.advance(3)
        assert bucket.level == 6
        clock.advance(100)
        assert bucket.level == 10

    def test_debt_is_repaid_by_refill(self) -> None:
        clock = ManualClock(start=0)
        bucket = TokenBucket(rate=1, capacity=300, level=1, clock=clock)
        bucket.charge(5)
        assert bucket.level == -4
        clock.advance(4)
        assert bucket.level == 0

    def test_manual_clock_refuses_to_go_back(self) -> None:
        with pytest.raises(ValueError, match="advance_s=-1"):
            ManualClock().advance(-1)


class TestProvisionedTable:
    def test_empty_burst_admits_exactly_the_rate(self) -> None:
        acc, clock = make("empty")
        assert writes_admitted(acc, 5) == 0
        admitted = 0
        for _ in range(20):  # 20 seconds, 5 attempts per second, 1 WCU
            clock.advance(1)
            admitted += writes_admitted(acc, 5)
        assert admitted == 20

    def test_full_burst_holds_300_seconds_of_capacity(self) -> None:
        acc, _ = make("full")
        assert writes_admitted(acc, 400) == 300  # §7.3: up to 300 s of unused capacity

    def test_burst_refills_to_300_seconds_only(self) -> None:
        acc, clock = make("empty")
        clock.advance(10_000)
        assert writes_admitted(acc, 400) == 300

    def test_throttle_reason_names_the_table_limit(self) -> None:
        acc, _ = make("empty")
        decision = acc.admit_writes("T", [(None, 1)])[0]
        assert not decision.admitted
        assert decision.reasons == ["TableWriteProvisionedThroughputExceeded"]
        decision = acc.admit_reads("T", [None])[0]
        assert decision.reasons == ["TableReadProvisionedThroughputExceeded"]

    def test_reads_are_admitted_while_positive_and_may_go_into_debt(self) -> None:
        acc, clock = make("empty")
        clock.advance(1)  # 1 RCU available
        assert acc.admit_reads("T", [None])[0].admitted
        acc.charge("T", "read", None, 8)  # a 30 KB strongly consistent read
        assert not acc.admit_reads("T", [None])[0].admitted
        clock.advance(7)  # debt of 7 repaid, level 0: still not positive
        assert not acc.admit_reads("T", [None])[0].admitted
        clock.advance(0.5)
        assert acc.admit_reads("T", [None])[0].admitted

    def test_an_item_larger_than_the_bucket_is_admitted_from_a_full_bucket(self) -> None:
        acc, _ = make("full")  # 1 WCU: the bucket holds 300; a 400 KB item costs 400
        assert acc.admit_writes("T", [(None, 400)])[0].admitted
        assert acc.snapshot()["T"]["write_level"] == -100

    def test_update_table_applies_live_and_keeps_the_level(self) -> None:
        acc, clock = make("empty")
        clock.advance(1)
        acc.sync_table(provisioned(wcu=10))
        clock.advance(1)
        assert acc.snapshot()["T"]["write_level"] == 11  # 1 banked at 1 WCU/s + 10 at the new rate
        assert writes_admitted(acc, 20) == 11

    def test_lowering_capacity_clamps_the_burst(self) -> None:
        acc, _ = make("full", provisioned(wcu=10))
        acc.sync_table(provisioned(wcu=1))
        assert writes_admitted(acc, 1000) == 300


class TestPartitionCeilings:
    def test_a_hot_key_throttles_at_1000_wcu_while_the_table_has_capacity(self) -> None:
        acc, clock = make("full", provisioned(wcu=5000))
        assert writes_admitted(acc, 1200, key="hot") == 1000
        decision = acc.admit_writes("T", [("hot", 1)])[0]
        assert decision.reasons == ["TableWriteKeyRangeThroughputExceeded"]
        assert writes_admitted(acc, 10, key="cold") == 10
        clock.advance(0.5)
        assert writes_admitted(acc, 1000, key="hot") == 500

    def test_reads_per_key_stop_after_3000_rcu(self) -> None:
        acc, _ = make("full", provisioned(rcu=10_000))
        admitted = 0
        for _ in range(4000):
            if acc.admit_reads("T", ["hot"])[0].admitted:
                acc.charge("T", "read", "hot", 1)
                admitted += 1
        assert admitted == 3000


class TestOnDemand:
    def test_on_demand_has_no_provisioned_limit_but_a_table_maximum(self) -> None:
        settings = TableSettings(name="T", arn=ARN, on_demand=True, read_capacity=0, write_capacity=0)
        acc, _ = make("empty", settings)  # burst_start does not apply to on-demand tables
        keys = [(f"k{i}", 1.0) for i in range(40_001)]
        decisions = acc.admit_writes("T", keys)
        assert sum(d.admitted for d in decisions) == 40_000
        assert decisions[-1].reasons == ["TableWriteAccountLimitExceeded"]
