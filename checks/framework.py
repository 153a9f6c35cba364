"""What every check shares: the context it runs in, its time budget, polling and backoff.

A check is a module with ``run(ctx: CheckContext) -> CheckResult``. It reads the run's ledger
(``ctx.ledger()``), the target's AWS state through ``ctx.client(service)``, and answers within
``ctx.budget_s`` seconds. Sources that are eventually consistent (CloudWatch Logs delivery,
CloudWatch metrics) are polled with :func:`poll` until the expected data is there or the budget
is spent; DynamoDB reads go through :func:`call_with_backoff`, which waits out
``ProvisionedThroughputExceededException`` (docs/aws-behaviour.md §7.4) instead of failing, and
counts how long it waited so the check can report it.

Nothing here sleeps directly: the clock is injected (``Clock``), so unit tests drive time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from loadcheck.core.chaos import Outage, covering, outages_of
from loadcheck.core.clock import Clock, SystemClock
from loadcheck.core.description import StackDescription
from loadcheck.core.ledger import read_ledger
from loadcheck.core.target import Target

T = TypeVar("T")

# DynamoDB's throttling error codes (docs/aws-behaviour.md §7.4, §7.5 standard-mode throttling codes).
THROTTLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "Throttling",
    }
)
PROBE_USER_AGENT = "loadcheck-check-probe/1"  # marks the security check's own requests
# How long after a request AWS may still be delivering its access-log record and its CloudWatch
# datapoints (docs/aws-behaviour.md §2.6): ListMetrics may take up to 15 minutes to show a new
# metric; log delivery documents no bound (§10.6) and gets the same. Data younger than this that
# are not there yet are "not delivered yet", not missing. Also the default budget on AWS.
AWS_DELIVERY_S = 900.0


class Budget:
    """A deadline for one check: how long it may wait for eventually consistent sources."""

    def __init__(self, seconds: float, *, clock: Clock) -> None:
        self.seconds = seconds
        self.clock = clock
        self.started = clock.monotonic()

    @property
    def elapsed(self) -> float:
        return self.clock.monotonic() - self.started

    @property
    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed)

    @property
    def expired(self) -> bool:
        return self.remaining <= 0


class BudgetExceeded(Exception):
    """A check ran out of its budget before it could gather its inputs."""


@dataclass(frozen=True)
class RunWindow:
    """When the run's requests were sent and answered, in epoch milliseconds."""

    start_ms: float
    end_ms: float

    @property
    def duration_s(self) -> float:
        return max(0.001, (self.end_ms - self.start_ms) / 1000.0)


@dataclass
class CheckContext:
    """Everything a check may use, built once by the runner (or a test) and passed down.

    ``clients`` maps a service name ("dynamodb", "logs", "cloudwatch") to a boto3 client; the
    runner builds clients without SDK retries so that backoff (and its cost) is ours to count.
    ``flush`` pushes buffered access logs and metrics out of the local stack (None on AWS).
    ``ledger_tail_unknown``: see the field.
    ``delivery_s``: how long after a request its log record or metric datapoint may still be on
    its way (0 when ``flush`` delivers everything before each read; ``AWS_DELIVERY_S`` on AWS).
    ``stack_note`` says why the target's state cannot hold this run (e.g. the local stack was
    restarted after the run): checks that read state then answer ``error`` with that reason.
    """

    run_dir: Path
    run: dict[str, Any]
    target: Target
    description: StackDescription
    clients: Callable[[str], Any]
    budget_s: float = 60.0
    clock: Clock = field(default_factory=SystemClock)
    progress: Callable[[str], None] | None = None
    flush: Callable[[], None] | None = None
    stack_note: str | None = None
    window: RunWindow | None = None  # from the ledger; the runner fills it
    time_tolerance_s: float = 2.0  # client clock vs. server clock (loopback: same clock)
    options: dict[str, Any] = field(default_factory=dict)  # per-check tunables, e.g. dynamodb_page_limit
    cache: dict[str, Any] = field(default_factory=dict)
    # True when the ledger may lack the last requests sent (an interrupted run whose writer was
    # killed mid-record): items and log records after its last record are "unrecorded", not phantoms.
    ledger_tail_unknown: bool = False
    delivery_s: float = 0.0

    def outage_of(self, rec: dict[str, Any], services: tuple[str, ...] | None = None) -> Outage | None:
        """The outage (run.json ``outages``) a ledger record's request fell in, if any: its
        failure, or a record lost with the service, is the outage's, not the system's."""
        if "outages" not in self.cache:
            self.cache["outages"] = outages_of(self.run)
        return covering(rec, self.cache["outages"], services=services)

    def client(self, service: str) -> Any:
        if service not in self.cache:
            self.cache[service] = self.clients(service)
        return self.cache[service]

    def ledger(self) -> Iterator[dict[str, Any]]:
        return read_ledger(self.run_dir)

    def budget(self) -> Budget:
        return Budget(self.budget_s, clock=self.clock)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def still_in_delivery(self, sent_ms: float) -> bool:
        """True when data about something that happened at ``sent_ms`` may still be on its way."""
        return self.delivery_s > 0 and self.clock.time() * 1000.0 - sent_ms < self.delivery_s * 1000.0

    def rerun_hint(self) -> str:
        """What a check says of data that the budget ended before (the one wording, docs/checks.md)."""
        return f"not delivered yet: re-run `loadcheck check {self.run_dir}` later"

    def run_window(self) -> RunWindow:
        if self.window is None:
            self.window = ledger_window(self.ledger())
        return self.window


def ledger_window(records: Iterator[dict[str, Any]]) -> RunWindow:
    start = float("inf")
    end = float("-inf")
    for rec in records:
        t = float(rec["t_start_ms"])
        start = min(start, t)
        end = max(end, t + float(rec.get("latency_ms") or 0.0))
    if start == float("inf"):
        return RunWindow(0.0, 0.0)
    return RunWindow(start, end)


def poll(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    *,
    budget: Budget,
    initial_s: float = 0.5,
    factor: float = 1.6,
    max_interval_s: float = 5.0,
    before_each: Callable[[], None] | None = None,
    on_wait: Callable[[T, float], None] | None = None,
) -> tuple[T, bool]:
    """Fetch until ``done(value)`` or the budget is spent; returns (last value, satisfied).

    ``before_each`` runs before every fetch (the local stack's flush, so that buffered logs
    and metrics are pushed out before we look). Waits grow geometrically, capped, and never
    overrun the budget.
    """
    interval = initial_s
    while True:
        if before_each is not None:
            before_each()
        value = fetch()
        if done(value):
            return value, True
        if budget.expired:
            return value, False
        wait = min(interval, max_interval_s, budget.remaining)
        if on_wait is not None:
            on_wait(value, wait)
        budget.clock.sleep(wait)
        interval *= factor


@dataclass
class BackoffStats:
    throttles: int = 0
    waited_s: float = 0.0


def call_with_backoff(
    fn: Callable[[], T],
    *,
    budget: Budget,
    stats: BackoffStats,
    base_s: float = 0.25,
    max_s: float = 8.0,
    on_throttle: Callable[[int, float], None] | None = None,
) -> T:
    """Call ``fn``; on a throttling ClientError wait (exponential, capped) and try again.

    DynamoDB lets a provisioned table's read bucket go into debt after a large page
    (docs/aws-behaviour.md §7.2/§7.3: a 1 MB page costs 128 RCU eventually consistent), so a 1-RCU
    table may refuse our next page for minutes: we wait it out, count the throttles and the
    time, and raise :class:`BudgetExceeded` when the budget is spent.
    """
    delay = base_s
    while True:
        try:
            return fn()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in THROTTLE_CODES:
                raise
            stats.throttles += 1
            if budget.remaining <= 0:
                raise BudgetExceeded(
                    f"still throttled ({code}) after {stats.throttles} attempts and {stats.waited_s:.1f}s of backoff"
                ) from exc
            wait = min(delay, max_s, budget.remaining)
            if on_throttle is not None:
                on_throttle(stats.throttles, wait)
            budget.clock.sleep(wait)
            stats.waited_s += wait
            delay *= 2


# ----------------------------------------------------------------------------------------------
# Small helpers the checks share


def is_write(rec: dict[str, Any]) -> bool:
    return rec.get("item_key") is not None


def key_str(key: dict[str, Any] | None) -> str:
    if not key:
        return "?"
    return "/".join(str(v) for _, v in sorted(key.items()))


def budget_note(budget: Budget) -> str:
    return f"budget {budget.seconds:.0f}s, used {budget.elapsed:.1f}s"
