"""Stage, route and account token buckets (docs/aws-behaviour.md §4, AGW:http-api-throttling).

AWS describes throttling as a token bucket: one token per request, refilled at the rate limit
(requests per second) up to the burst limit (bucket size); a request finding no token gets
``429 {"message":"Too Many Requests"}``. Each bucket starts full.

How the local buckets are arranged (AWS documents the settings, not their arrangement):

- Every route has its own bucket. Its limits are the route's ``route_throttle`` entry if it has
  one, else the stage's ``throttle`` (Terraform ``default_route_settings``: defaults that apply
  to each route). UNCONFIRMED: we read "default route settings" as per-route targets, not one
  bucket shared by the stage's routes.
- One account bucket (10,000 rps, burst 5,000, AGW:limits) sits in front of every route.
- Departure: AWS calls its limits "targets rather than guaranteed request ceilings" and enforces
  them across a fleet of hosts; the local buckets are exact, so a test can predict every 429.

The clock is injectable (``clock() -> seconds``, monotonic) so tests never sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from reference_stack.local.gateway.config import Limits

ACCOUNT_LIMITS = Limits(rate=10_000.0, burst=5_000)  # AGW:limits, per account per Region


class TokenBucket:
    """A thread-safe token bucket; ``try_take()`` is True when a token was available."""

    def __init__(self, *, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._tokens = float(limits.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            now = self._clock()
            elapsed = max(0.0, now - self._stamp)
            self._stamp = now
            self._tokens = min(float(self.limits.burst), self._tokens + elapsed * self.limits.rate)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    @property
    def tokens(self) -> float:
        with self._lock:
            return self._tokens


class Throttler:
    """Decides, per matched route, whether a request proceeds or gets 429."""

    def __init__(
        self,
        *,
        routes: list[str],
        stage: Limits | None,
        route_limits: dict[str, Limits],
        account: Limits | None = ACCOUNT_LIMITS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._account = TokenBucket(limits=account, clock=clock) if account else None
        self._routes: dict[str, TokenBucket] = {}
        for key in routes:
            limits = route_limits.get(key, stage)
            if limits is not None:
                self._routes[key] = TokenBucket(limits=limits, clock=clock)

    def admit(self, route_key: str) -> bool:
        """True to let the request through. The route bucket is asked first so a request the
        route refuses does not spend an account token."""
        bucket = self._routes.get(route_key)
        if bucket is not None and not bucket.try_take():
            return False
        return self._account is None or self._account.try_take()
