"""Load shapes: the open model (constant-rate, step) as an arrival scheduler; ramp is Locust's own.

Locust has only a closed model: N users loop, so when responses slow down the offered load
drops with them and the slow period is under-sampled (coordinated omission). The open model
here works like k6's ``constant-arrival-rate`` executor (both in docs/load-tools.md §1):

- a scheduler greenlet per load process emits arrivals at the asked rate, evenly spaced
  (``1/rate`` apart), whatever the responses do. In a distributed run every worker emits
  ``rate / workers``;
- a pool of users waits for arrivals; each arrival carries its *intended* start time and the
  kind of request (drawn by ``--mix`` weights from a seeded RNG), and latency is measured from
  the intended start (``t_intended_ms`` in the ledger), as wrk2 does;
- an arrival that finds no idle user at its intended time is *dropped*, counted and reported in
  run.json (k6's ``dropped_iterations``), never silently delayed;
- the schedule starts when the first user is ready and lasts exactly the run's duration; when
  it is over the run ends (Locust's own ``--run-time`` is only a safety net above it), so
  Locust's start-up time does not shorten the schedule.

``step`` is the same scheduler with the rate changing every ``--step-duration`` (the capacity
probe); ``ramp`` uses Locust's own ``-u/-r`` users with think time (closed model).
"""

from __future__ import annotations

import random
import time
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate

import gevent
import gevent.event
from gevent.queue import Queue

from loadcheck.core.runconfig import RunOptions


@dataclass(frozen=True)
class Arrival:
    t_intended: float  # epoch seconds
    kind: str  # one of the workload's request kinds


class KindPicker:
    """Draws request kinds by ``--mix`` weights (in the mix's order) from its own seeded RNG."""

    def __init__(self, mix: dict[str, int], rng: random.Random) -> None:
        self.kinds = [k for k, w in mix.items() if w > 0]
        self.weights = [mix[k] for k in self.kinds]
        self.rng = rng
        self._cum = list(accumulate(self.weights))
        self._total = float(self._cum[-1]) if self._cum else 0.0
        self._hi = len(self.kinds) - 1

    def pick(self) -> str:
        # random.choices(kinds, weights) without rebuilding the cumulative weights on every
        # call: the same draw from the same random() (unit-tested).
        return self.kinds[bisect(self._cum, self.rng.random() * self._total, 0, self._hi)]


class ArrivalScheduler:
    """Emits arrivals to idle users at the rate of each piece of ``options.segments()`` times ``share``.

    ``share`` is this process's part of the rate (``1 / workers``). The clock and the sleep are
    injectable so unit tests can run it without waiting.
    """

    def __init__(
        self,
        *,
        options: RunOptions,
        share: float,
        picker: KindPicker,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = gevent.sleep,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self.options = options
        self.on_done = on_done  # called once the schedule has run its course (not on an early stop)
        self.share = share
        self.picker = picker
        self.clock = clock
        self.sleep = sleep
        self._queue: Queue = Queue()
        self._idle = 0
        self._first_idle = gevent.event.Event()
        self._stopped = False
        self._greenlet: gevent.Greenlet | None = None
        self.started_at: float | None = None
        self.emitted = 0
        self.dropped = 0
        self.dropped_unreported = 0

    # -- scheduler side --------------------------------------------------------------------
    def start(self) -> None:
        self._greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        # The schedule starts when the first user is ready, not when spawning begins: arrivals
        # before any user exists would all count as dropped.
        self._first_idle.wait()
        self.started_at = t0 = self.clock()
        # Arrival k of a piece is at start + k / rate, computed from k (not by adding 1/rate
        # up), so float error never adds or loses an arrival at a piece's end.
        for start, end, rate in self.options.segments():
            rate *= self.share
            if rate <= 0:
                continue
            k = 0
            while not self._stopped:
                offset = start + k / rate
                if offset >= end - 1e-9:
                    break
                due = t0 + offset
                now = self.clock()
                if due > now:
                    self.sleep(due - now)
                    continue
                self.offer(Arrival(due, self.picker.pick()))
                k += 1
        finished = not self._stopped
        self.stop()
        if finished and self.on_done is not None:
            self.on_done()

    def offer(self, arrival: Arrival) -> bool:
        """Hand ``arrival`` to an idle user, or count it dropped."""
        self.emitted += 1
        if self._idle > 0:
            self._idle -= 1  # claimed now, so two arrivals in one tick never go to one user
            self._queue.put(arrival)
            return True
        self.dropped += 1
        self.dropped_unreported += 1
        return False

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # Wake every waiting user so they can end.
        for _ in range(self._idle + 1024):
            self._queue.put(None)
        if self._greenlet is not None and self._greenlet is not gevent.getcurrent():
            self._greenlet.kill(block=False)

    @property
    def idle(self) -> int:
        """Users waiting for an arrival now (the rest of the pool is busy or not started yet)."""
        return self._idle

    def take_dropped(self) -> int:
        n, self.dropped_unreported = self.dropped_unreported, 0
        return n

    # -- user side --------------------------------------------------------------------------
    def take(self, timeout: float | None = None) -> Arrival | None:
        """Wait for the next arrival for this user; None once the scheduler stopped."""
        if self._stopped:
            return None
        self._idle += 1
        self._first_idle.set()
        try:
            return self._queue.get(timeout=timeout)
        except gevent.queue.Empty:
            self._idle -= 1
            return None
        except BaseException:
            # A user killed while waiting (the run stops) is no longer idle.
            self._idle = max(0, self._idle - 1)
            raise
