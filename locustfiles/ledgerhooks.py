"""Every request -> one ledger record + HDR histograms; shipped from workers to the master.

This module wires the two roles into Locust's runners (one role per process, chosen by Locust's
runner type at ``init``):

- :class:`locustfiles.ledger_collector.Collector` (local runner and every worker): one ledger
  record and one histogram sample per request; ``drain()`` hands out what is pending in
  bounded batches.
- :class:`locustfiles.ledger_aggregator.Aggregator` (local runner and the master): writes the
  ledger, histograms, ``progress.json`` and ``loadgen.json``.

Wire (Locust's custom messages between master and workers, docs/load-tools.md §4): a worker sends ``loadcheck:batch``
every second (at most ``BATCH_RECORDS`` records each; msgpack maps need string keys, hence
string seconds). When the master stops (``test_stopping``: run time over, Ctrl-C, SIGTERM) it
sends ``loadcheck:stop`` to every worker and waits, with a deadline, for each connected worker's
``final`` batch: the worker stops its users, drains everything, pushes Locust's own stats, and
sends its last batch marked ``final``. Locust's built-in quit gives workers only 0.5 s, which is
why the drain does not ride on it. A worker that died is reported in ``loadgen.json`` with what
it had sent.

The two Locust internals this needs (a worker's ``_send_stats`` and the master's
``worker_indexes``) go through :mod:`locustfiles.locust_compat`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent

from locustfiles import locust_compat
from locustfiles.ledger_aggregator import Aggregator
from locustfiles.ledger_collector import Collector

log = logging.getLogger("loadcheck.load")

MSG_BATCH = "loadcheck:batch"
MSG_STOP = "loadcheck:stop"
MSG_DONE = "loadcheck:done"  # worker -> master: my arrival schedule is over
FINAL_WAIT_S = 30.0


def in_thread(fn: Callable[[], None]) -> Any:
    """Run blocking file work in gevent's thread pool; the calling greenlet waits, the others run."""
    return gevent.get_hub().threadpool.apply(fn)


def wire_local(environment: Any, collector: Collector, aggregator: Aggregator, *, on_tick: Callable[[], None]) -> None:
    """One process: the collector feeds the aggregator directly, every second and at the end."""
    aggregator.run_io = in_thread
    loop: dict[str, Any] = {}

    def pump(final: bool = False) -> None:
        on_tick()
        for p in collector.drain(final=final):
            aggregator.accept(p)

    def every_second() -> None:
        while True:
            gevent.sleep(1.0)
            pump()
            aggregator.write_progress()

    def on_test_start(**_: Any) -> None:
        aggregator.start()
        loop["g"] = gevent.spawn(every_second)

    def on_test_stop(**_: Any) -> None:
        if "g" in loop:
            loop.pop("g").kill(block=False)
        pump(final=True)
        aggregator.finish(locust_stats=environment.stats)

    def on_quitting(**_: Any) -> None:
        # Ctrl-C / SIGTERM fire `quitting` before the runner stops: stop the users first, so
        # nothing is recorded after the final drain.
        environment.runner.stop()
        on_test_stop()

    environment.events.request.add_listener(collector.on_request)
    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stop.add_listener(on_test_stop)
    environment.events.quitting.add_listener(on_quitting)


def wire_worker(
    environment: Any, collector: Collector, *, on_tick: Callable[[], None], on_stop: Callable[[], None]
) -> None:
    """A worker: ship batches every second; on the master's stop, drain and send the final batch."""
    runner = environment.runner
    loop: dict[str, Any] = {}
    sent_final = {"done": False}

    def send(final: bool) -> None:
        on_tick()
        collector.client_id = runner.client_id
        for p in collector.drain(final=final):
            runner.send_message(MSG_BATCH, p)

    def every_second() -> None:
        while True:
            gevent.sleep(1.0)
            try:
                send(False)
            except Exception:  # noqa: BLE001 - keep shipping; Locust reconnects
                log.exception("could not ship a ledger batch to the master; will retry")

    def on_test_start(**_: Any) -> None:
        sent_final["done"] = False
        if "g" not in loop:
            loop["g"] = gevent.spawn(every_second)

    def final_flush(**_: Any) -> None:
        if sent_final["done"]:
            return
        sent_final["done"] = True
        on_stop()
        if "g" in loop:
            loop.pop("g").kill(block=False)
        # Locust's own stats first, so the master's counts are final when our final batch lands.
        try:
            locust_compat.send_stats(runner)
        except Exception:  # noqa: BLE001
            log.exception("could not send Locust stats to the master")
        send(True)

    def on_stop_message(environment: Any, msg: Any, **_: Any) -> None:
        on_stop()
        runner.stop()  # stops users; fires test_stop -> final_flush
        final_flush()

    def on_quitting(**_: Any) -> None:
        runner.stop()
        final_flush()

    environment.events.request.add_listener(collector.on_request)
    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stop.add_listener(final_flush)
    environment.events.quitting.add_listener(on_quitting)
    runner.register_message(MSG_STOP, on_stop_message, concurrent=True)


def wire_master(environment: Any, aggregator: Aggregator, *, final_wait_s: float = FINAL_WAIT_S) -> None:
    """The master: accept batches; at stop, collect every worker's final batch, then write the files."""
    aggregator.run_io = in_thread
    runner = environment.runner
    locust_compat.check_master(runner)  # at start-up, not when the run ends
    loop: dict[str, Any] = {}

    def on_batch(environment: Any, msg: Any, **_: Any) -> None:
        aggregator.accept(msg.data)

    def maybe_quit() -> None:
        # Open model: once every connected worker's schedule is over, end the run. Checked on
        # each "done" and every second, so a worker that died (and went missing) does not
        # hold the run open until Locust's safety-net run time.
        done = loop.get("done")
        if done is None or loop.get("quitting"):
            return
        if all(c.id in done for c in runner.clients.all if c.state != "missing"):
            loop["quitting"] = True
            log.info("every worker's arrival schedule is over: stopping the run")
            gevent.spawn(runner.quit)

    def on_done(environment: Any, msg: Any, **_: Any) -> None:
        loop.setdefault("done", set()).add(msg.node_id)
        maybe_quit()

    def every_second() -> None:
        while True:
            gevent.sleep(1.0)
            aggregator.write_progress()
            maybe_quit()

    def on_test_start(**_: Any) -> None:
        aggregator.start()
        loop.pop("stopping", None)
        loop.pop("done", None)
        if "g" not in loop:
            loop["g"] = gevent.spawn(every_second)

    def on_test_stopping(**_: Any) -> None:
        if loop.get("stopping"):
            return
        loop["stopping"] = True
        clients = list(runner.clients.all)
        for c in clients:
            runner.send_message(MSG_STOP, None, client_id=c.id)
        deadline = time.monotonic() + final_wait_s
        while time.monotonic() < deadline:
            waiting = [
                c
                for c in runner.clients.all
                if c.state != "missing"
                and not any(w.get("client_id") == c.id and w["final"] for w in aggregator.workers.values())
            ]
            if not waiting:
                break
            gevent.sleep(0.1)
        else:
            log.warning("workers did not send their final ledger batch within %.0f s", final_wait_s)

    def on_test_stop(**_: Any) -> None:
        if "g" in loop:
            loop.pop("g").kill(block=False)
        states = {c.id: c.state for c in runner.clients.all}
        # Every worker that ever connected, by the index the master gave it (w<index>), so one
        # that died before sending anything is still listed.
        known = {cid: f"w{idx}" for cid, idx in locust_compat.worker_indexes(runner).items()}
        aggregator.finish(locust_stats=environment.stats, worker_states=states, known_workers=known)

    def on_quitting(**_: Any) -> None:
        # Ctrl-C / SIGTERM fire `quitting` before the runner stops: collect the finals first.
        on_test_stopping()
        on_test_stop()

    runner.register_message(MSG_BATCH, on_batch)
    runner.register_message(MSG_DONE, on_done)
    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stopping.add_listener(on_test_stopping)
    environment.events.test_stop.add_listener(on_test_stop)
    environment.events.quitting.add_listener(on_quitting)
