"""Token buckets with an injected clock (gateway throttle.py)."""

from __future__ import annotations

from reference_stack.local.gateway.config import Limits
from reference_stack.local.gateway.throttle import Throttler, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_starts_full_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(limits=Limits(rate=2.0, burst=3), clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5  # one token at 2/s
    assert [bucket.try_take() for _ in range(2)] == [True, False]
    clock.now += 100  # refill caps at the burst
    assert sum(bucket.try_take() for _ in range(10)) == 3


def test_zero_limits_reject_everything() -> None:
    # The Terraform pitfall (docs/aws-behaviour.md §4): 0/0 route settings throttle every request.
    clock = Clock()
    bucket = TokenBucket(limits=Limits(rate=0.0, burst=0), clock=clock)
    clock.now += 60
    assert not bucket.try_take()


def test_routes_have_their_own_buckets_and_overrides() -> None:
    clock = Clock()
    throttler = Throttler(
        routes=["GET /events", "POST /events"],
        stage=Limits(rate=1.0, burst=2),
        route_limits={"POST /events": Limits(rate=1.0, burst=1)},
        clock=clock,
    )
    assert [throttler.admit("GET /events") for _ in range(3)] == [True, True, False]
    assert [throttler.admit("POST /events") for _ in range(2)] == [True, False]
    clock.now += 1.0
    assert throttler.admit("GET /events") and throttler.admit("POST /events")


def test_account_bucket_caps_all_routes_together() -> None:
    clock = Clock()
    throttler = Throttler(
        routes=["GET /a", "GET /b"], stage=None, route_limits={}, account=Limits(rate=0.0, burst=3), clock=clock
    )
    results = [throttler.admit(r) for r in ("GET /a", "GET /b", "GET /a", "GET /b")]
    assert results == [True, True, True, False]


def test_a_route_refusal_does_not_spend_account_tokens() -> None:
    clock = Clock()
    throttler = Throttler(
        routes=["GET /a", "GET /b"],
        stage=None,
        route_limits={"GET /a": Limits(rate=0.0, burst=0)},
        account=Limits(rate=0.0, burst=1),
        clock=clock,
    )
    assert not throttler.admit("GET /a")
    assert throttler.admit("GET /b")
