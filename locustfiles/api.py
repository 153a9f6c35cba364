"""loadcheck's public load API: what a workload (a Locust file) uses to be run and judged by loadcheck.

A workload is a Locust file with one or more :class:`LoadcheckUser` subclasses. Each action the
user can take is a method marked with :func:`kind`; ``--mix`` weights the kinds (by default the
weights the workload gives them). Every request goes out SigV4-signed through :meth:`LoadcheckUser.send`
and lands in the run's ledger; a write names the table key and the item it expects the API to
store (:class:`Write`), so the ``dynamodb_contents`` check reconciles it exactly as it does the
reference workload's writes. ::

    from locustfiles.api import KeyMaker, LoadcheckUser, Write, kind

    class OrdersUser(LoadcheckUser):
        @kind(weight=3)
        def orders(self) -> None:
            key, collision = self.table_keys(hash_key="day", range_key="at").next_key()
            item = {**key, "sku": self.rng.choice(["a", "b"])}
            self.send("POST", "POST /orders", "/orders", json_body=item, write=Write(key, item, collision))

        @kind(weight=1)
        def reads(self) -> None:
            day = self.rng.choice(self.table_keys(hash_key="day", range_key="at").dates)
            self.send("GET", "GET /orders/{day}", f"/orders/{day}")

Run it with ``loadcheck run --locustfile orders.py`` (``--mix orders=1,reads=1``), or plainly
with ``locust -f orders.py --host https://... --aws-profile ... --region ...``. The reference
workload, ``locustfiles/eventlog.py``, is written on this API alone. Everything named in
``__all__`` is stable; docs/extending.md walks through a workload.
"""

from __future__ import annotations

from locust import task
from locust.contrib.fasthttp import FastResponse

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import gevent

from locustfiles import wiring
from locustfiles.sigv4user import SigV4FastHttpUser
from locustfiles.wiring import LoadContext
from locustfiles.workload import KeyMaker, encode_query

__all__ = ["KeyMaker", "LoadcheckUser", "RunInfo", "Write", "encode_query", "kind"]

T = TypeVar("T")
_KIND_ATTR = "_loadcheck_kind"
# The wiring's event listeners are registered when it is imported; this keeps the import used.
_WIRING = wiring


@dataclass(frozen=True)
class Write:
    """A write the API is expected to store: the table ``key`` (every key attribute by name, as the
    stack description's key schema names them) and the ``item`` it should store under it (plain
    JSON). ``collision`` marks a write that reuses an earlier key on purpose (expect 409)."""

    key: dict[str, Any]
    item: dict[str, Any]
    collision: bool = False


@dataclass(frozen=True)
class RunInfo:
    """The run a user belongs to: its id, this process's worker name and index, and the seed."""

    run_id: str
    worker: str
    worker_index: int
    seed: int
    collisions: float  # the fraction of writes to send as forced collisions (--collisions)


def kind(*, weight: int = 1, name: str | None = None) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Mark a method of a :class:`LoadcheckUser` as one request kind (named after the method unless
    ``name`` is given), with its default ``--mix`` weight."""
    if weight < 0:
        raise ValueError(f"kind weight {weight} is below 0")

    def mark(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        setattr(fn, _KIND_ATTR, (name or fn.__name__, weight))
        return fn

    return mark


class LoadcheckUser(SigV4FastHttpUser):
    """A signed user whose actions are the methods marked with :func:`kind`.

    Open model (``--shape constant-rate``/``step``): the user waits for an arrival, which names the
    kind; closed model (``ramp``): it picks a kind by the mix, acts, then thinks (``--think-time``).
    Attributes: ``run_info`` (:class:`RunInfo`), ``rng`` (a ``random.Random`` seeded by the run's seed,
    the worker and the user's number: a run with ``--seed`` repeats its requests), ``user_no``.
    """

    abstract = True
    _kinds: ClassVar[dict[str, tuple[str, int]]] = {}  # kind -> (method name, default weight)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        kinds: dict[str, tuple[str, int]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                marked = getattr(value, _KIND_ATTR, None)
                if marked is not None:
                    kinds[marked[0]] = (attr, marked[1])
        cls._kinds = kinds

    @classmethod
    def default_mix(cls) -> dict[str, int]:
        """The kinds this user declares, with their default weights."""
        return {k: w for k, (_, w) in cls._kinds.items()}

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        ctx: LoadContext = environment.loadcheck
        self._ctx = ctx
        ctx.users_started += 1
        self.user_no = ctx.users_started
        self.run_info = RunInfo(
            run_id=ctx.run_id,
            worker=ctx.worker,
            worker_index=ctx.worker_index,
            seed=ctx.seed,
            collisions=ctx.options.collisions,
        )
        self.rng = random.Random(f"{ctx.seed}:{ctx.worker}:{self.user_no}")
        own = {k: w for k, w in ctx.mix.items() if k in self._kinds}
        self._picker = wiring.KindPicker(own or self.default_mix(), self.rng)
        self._kind: str | None = None
        self._t_intended: float | None = None

    def table_keys(self, *, hash_key: str = "date", range_key: str = "time") -> KeyMaker:
        """This process's :class:`KeyMaker` (shared by its users): run-scoped unique keys named as
        the table's key schema names them, with ``--collisions`` reusing earlier keys."""

        def make() -> KeyMaker:
            rng = random.Random(f"{self.run_info.seed}:{self.run_info.worker}:keys")
            return KeyMaker(
                run_id=self.run_info.run_id,
                worker_index=self.run_info.worker_index,
                collisions=self.run_info.collisions,
                rng=rng,
                hash_key=hash_key,
                range_key=range_key,
            )

        return self.shared(f"keys:{hash_key}:{range_key}", make)

    def shared(self, name: str, make: Callable[[], T]) -> T:
        """A per-process object every user of the run shares (made once by ``make``), e.g. a
        :class:`KeyMaker` so keys stay unique across users."""
        if name not in self._ctx.shared:
            self._ctx.shared[name] = make()
        value: T = self._ctx.shared[name]
        return value

    def wait_time(self) -> float:
        if self._ctx.scheduler is not None:
            return 0.0  # open model: the wait is for the next arrival, inside the task
        lo, hi = self._ctx.options.think_time_s
        return self.rng.uniform(lo, hi)

    @task
    def _act(self) -> None:
        sched = self._ctx.scheduler
        if sched is None:
            self._do(self._picker.pick(), None)
            return
        arrival = sched.take()
        if arrival is None:
            gevent.sleep(0.5)  # the schedule is over; Locust stops the run at its run time
            return
        self._do(arrival.kind, arrival.t_intended)

    def _do(self, name: str, t_intended: float | None) -> None:
        entry = self._kinds.get(name)
        if entry is None:
            return  # another user class's kind
        self._kind, self._t_intended = name, t_intended
        try:
            getattr(self, entry[0])()
        finally:
            self._kind = self._t_intended = None

    def send(
        self,
        method: str,
        route: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        json_body: Any = None,
        write: Write | None = None,
    ) -> FastResponse:
        """Sign and send one request; ``route`` is the route key of the stack description it is
        for (``"GET /events/{date}"``), ``path`` the path as sent. The response is returned
        (already reported to Locust: 2xx success, anything else a failure named by its status).
        The first request of an action carries the arrival's intended start time (latency is
        measured from it in an open-model run); every request records the action's kind."""
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
        meta: dict[str, Any] = {}
        if self._t_intended is not None:
            meta["t_intended"] = self._t_intended
            self._t_intended = None
        if self._kind is not None:
            meta["kind"] = self._kind
        if write is not None:
            meta.update(item=write.item, item_key=write.key, collision=write.collision)
        return self.signed_request(method, route, path, query=query, body=body, meta=meta or None)
