"""Every request -> one ledger record + HDR histograms; shipped from workers to the master.

Roles (one per process, chosen by Locust's runner type at ``init``):

- ``Collector`` (local runner and every worker): Locust's ``request`` event makes one ledger
  record per request, whatever its outcome (connection errors, timeouts and TLS failures
  included, with ``status`` 0 and an ``error`` kind), and records the latency in per-second
  HDR intervals. ``drain()`` hands out what is pending in bounded batches.
- ``Aggregator`` (local runner and the master): accepts batches, appends records to
  ``ledger/<worker>-NNNN.jsonl.gz`` with :class:`loadcheck.core.ledger.LedgerWriter` (flushed and
  fsynced per batch, so a killed run keeps what was written), merges intervals exactly into
  :class:`loadcheck.core.histograms.RunHistograms`, writes ``progress.json`` every second and, at the
  end, ``histograms.json`` and ``loadgen.json`` (Locust's per-route counts, dropped arrivals,
  workers).

Wire (custom messages, docs/load-tools.md §4): a worker sends
``loadcheck:batch`` every second (at most ``BATCH_RECORDS`` records each; msgpack maps need
string keys, hence string seconds). When the master stops (``test_stopping``: run time over,
Ctrl-C, SIGTERM) it sends ``loadcheck:stop`` to every worker and waits, with a deadline, for
each connected worker's ``final`` batch: the worker stops its users, drains everything, pushes
Locust's own stats, and sends its last batch marked ``final``. Locust's built-in quit gives
workers only 0.5 s, which is why the drain does not ride on it. A worker that died is
reported in ``loadgen.json`` with what it had sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import orjson

from loadcheck.core import histograms
from loadcheck.core.ledger import LedgerWriter, item_digest
from loadcheck.core.state import write_json_atomic

log = logging.getLogger("loadcheck.load")

BATCH_RECORDS = 500
MSG_BATCH = "loadcheck:batch"
MSG_STOP = "loadcheck:stop"
MSG_DONE = "loadcheck:done"  # worker -> master: my arrival schedule is over
FINAL_WAIT_S = 30.0


def error_kind(exc: BaseException | None) -> str | None:
    """The ledger's ``error`` for a request that got no HTTP status."""
    if exc is None:
        return None
    name = type(exc).__name__.lower()
    if isinstance(exc, (TimeoutError, socket.timeout)) or "timeout" in name:
        return "timeout"
    if isinstance(exc, ssl.SSLError) or "ssl" in name or "certificate" in str(exc).lower():
        return "tls"
    if "parse" in name or "closed" in name:
        return "protocol"
    return "connection"


def _header(response: Any, name: str) -> str | None:
    headers = getattr(response, "headers", None)
    if headers is None:  # not `not headers`: geventhttpclient's Headers counts its lines for len()
        return None
    try:
        value = headers.get(name)
    except Exception:  # noqa: BLE001 - a broken response must not lose the record
        return None
    return value if value is None or type(value) is str else str(value)


class Collector:
    """Builds ledger records and interval histograms in one load-generating process.

    The request event is on every request's path, so :meth:`on_request` only keeps the raw
    values (one tuple); :meth:`drain`, once a second, turns them into JSON lines (orjson),
    counts and per-second histograms (:meth:`loadcheck.core.histograms.IntervalRecorder.record_counts`).
    A property test holds the lines to the record built field by field from the event.
    """

    def __init__(self, *, run_id: str, worker: str, clock: Callable[[], float] = time.time) -> None:
        self.run_id = run_id
        self.worker = worker
        self.client_id: str | None = None
        self.clock = clock
        self.seq = 0
        self.pending: list[tuple[Any, ...]] = []  # raw values, encoded by drain()
        self.intervals = histograms.IntervalRecorder()
        self.dropped_pending = 0

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        url: str | None = None,
        **_: Any,
    ) -> None:
        status = getattr(response, "status_code", 0) or 0
        error = None
        if not status:
            error = error_kind(getattr(response, "error", None) or exception) or "connection"
        self.pending.append(
            (
                self.seq,
                float(self.clock() if start_time is None else start_time),
                response_time,
                response_length,
                request_type,
                name,
                url,
                status,
                error,
                _header(response, "apigw-requestid"),
                _header(response, "retry-after") if status == 429 else None,
                context.get("loadcheck") if context else None,
            )
        )
        self.seq += 1

    def add_dropped(self, n: int) -> None:
        self.dropped_pending += n

    def records(
        self, raw: list[tuple[Any, ...]]
    ) -> tuple[list[bytes], dict[str, Any], dict[tuple[int, str, int], int]]:
        """(JSON lines, counts, histogram samples) for raw values kept by :meth:`on_request`.

        Samples are ``{(completion second, route, latency in us): count}`` for
        :meth:`loadcheck.core.histograms.IntervalRecorder.record_counts`. Times are milliseconds
        with microsecond precision (``round(t * 1e6) / 1000``).
        """
        run_id, worker = self.run_id, self.worker
        lines: list[bytes] = []
        samples: dict[tuple[int, str, int], int] = {}
        errors = throttled = 0
        per_second: dict[int, int] = {}
        for values in raw:
            try:
                seq, t_start, rt, length, method, name, url, status, error, request_id, retry, meta = values
                if meta:
                    t_intended = meta.get("t_intended", t_start)
                    route = meta.get("route", name)
                    path = meta.get("path")
                else:
                    t_intended, route, path = t_start, name, None
                if path is None and url:
                    rest = url.split("://", 1)[-1]
                    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
                latency_ms = (t_start - t_intended) * 1000.0 + (rt or 0.0)
                t_start_ms = round(t_start * 1e6) / 1000
                rec = {
                    "run_id": run_id,
                    "worker": worker,
                    "seq": seq,
                    "t_start_ms": t_start_ms,
                    "t_intended_ms": t_start_ms if t_intended == t_start else round(t_intended * 1e6) / 1000,
                    "route": route,
                    "method": method,
                    "path": path,
                    "status": status,
                    "error": error,
                    "latency_ms": round(latency_ms * 1000.0) / 1000,
                    "response_length": length or 0,
                    "request_id": request_id,
                }
                if status == 429:
                    rec["retry_after"] = retry
                if meta and "item" in meta:
                    rec["item_key"] = meta["item_key"]
                    rec["item"] = meta["item"]
                    rec["item_digest"] = _digest(meta["item"])
                    if meta.get("collision"):
                        rec["collision"] = True
                try:
                    # A copy of orjson's bytes: orjson hands out an over-allocated buffer, and
                    # keeping a second's worth of those costs fresh pages; the exact-size copy is
                    # 3x cheaper.
                    line = bytes(memoryview(_line(rec, option=_NEWLINE)))
                except TypeError:  # a value orjson refuses (a user's own item type): written as text
                    line = json.dumps(rec, default=str).encode() + b"\n"
                t_end = t_intended + latency_ms / 1000.0
                if type(route) is not str:
                    route = str(route)  # a histogram key
            except Exception as exc:  # noqa: BLE001 - a user's odd meta must not cost the batch
                line, status, route, t_end, latency_ms = _unencodable(values, run_id, worker, exc)
            lines.append(line)
            if status == 429:
                throttled += 1
            if not 200 <= status < 300:
                errors += 1
            sec = int(t_end)
            lat_us = latency_ms * 1000.0
            us = round(lat_us) if 1.0 <= lat_us <= histograms.HIGHEST_US else histograms.to_us(latency_ms)
            sample = (sec, route, us)
            samples[sample] = samples.get(sample, 0) + 1
        for (sec, _, _), n in samples.items():
            per_second[sec] = per_second.get(sec, 0) + n
        stats = {"errors": errors, "throttled": throttled, "per_second": {str(k): v for k, v in per_second.items()}}
        return lines, stats, samples

    def drain(self, *, final: bool = False) -> list[dict[str, Any]]:
        """Payloads with everything pending (closed seconds only unless ``final``); each bounded.

        Records travel as encoded JSON lines with their counts, so the master only appends
        them (it never decodes and re-encodes what a worker already encoded).
        """
        raw, self.pending = self.pending, []
        lines, stats, samples = self.records(raw)
        self.intervals.record_counts(samples)
        intervals = self.intervals.take(before_s=None if final else int(self.clock()))
        dropped, self.dropped_pending = self.dropped_pending, 0
        payloads = []
        for i in range(0, max(1, len(lines)), BATCH_RECORDS):
            payloads.append(
                {
                    "worker": self.worker,
                    "client_id": self.client_id,
                    "lines": lines[i : i + BATCH_RECORDS],
                    "stats": {},
                    "intervals": {},
                    "dropped": 0,
                    "final": False,
                    "sent_seq": self.seq,
                }
            )
        # Counts for the whole drain ride on its last payload (requests = lines in each).
        payloads[-1].update(
            stats=stats, intervals={str(s): r for s, r in intervals.items()}, dropped=dropped, final=final
        )
        return payloads


def _digest(item: Any) -> str:
    try:
        return item_digest(item)
    except (TypeError, ValueError):  # not plain JSON: digest its text form (it cannot match DynamoDB's anyway)
        return hashlib.sha256(json.dumps(item, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _unencodable(
    values: tuple[Any, ...], run_id: str, worker: str, exc: Exception
) -> tuple[bytes, int, str, float, float]:
    """A record for raw values the drain could not encode as usual: what can be read, as text.

    It keeps every field a reader requires (``loadcheck.core.ledger.REQUIRED_FIELDS``), the
    request's ``meta`` as text and ``encoding_error``, so the ledger stays readable and the
    record is counted.
    """
    seq, t_start, rt, length, method, name, url, status, error, request_id, retry, meta = values
    try:
        status = int(status)
    except (TypeError, ValueError):
        status = 0
    try:
        t = float(t_start)
    except (TypeError, ValueError):
        t = time.time()
    try:
        latency_ms = float(rt or 0.0)
    except (TypeError, ValueError):
        latency_ms = 0.0
    rec = {
        "run_id": run_id,
        "worker": worker,
        "seq": seq,
        "t_start_ms": round(t * 1e6) / 1000,
        "t_intended_ms": round(t * 1e6) / 1000,
        "route": str(name),
        "method": str(method),
        "path": url,
        "status": status,
        "error": error,
        "latency_ms": round(latency_ms * 1000) / 1000,
        "response_length": length,
        "request_id": request_id,
        "meta": meta,
        "encoding_error": f"{type(exc).__name__}: {exc}",
    }
    log.warning("ledger record %s could not be encoded as usual (%s); written with its meta as text", seq, exc)
    line = json.dumps(rec, default=str).encode() + b"\n"
    return line, status, str(name), t + latency_ms / 1000.0, latency_ms


_line = orjson.dumps  # C: a record dict to one JSON line, several times faster than json
_NEWLINE = orjson.OPT_APPEND_NEWLINE


class Aggregator:
    """Writes the run's ledger, histograms, progress and load-generator summary (master or local)."""

    def __init__(
        self, *, run_dir: Path, run_id: str, duration_s: float | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.duration_s = duration_s
        self.clock = clock
        self.writers: dict[str, LedgerWriter] = {}
        self.hist = histograms.RunHistograms()
        self.workers: dict[str, dict[str, Any]] = {}
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.requests = 0
        self.errors = 0
        self.throttled = 0
        self.dropped = 0
        self._per_second: dict[int, int] = {}
        self._pending: dict[str, list[bytes]] = {}  # accepted, written at the next flush()
        # How file work runs: inline by default; Locust processes run it in gevent's thread pool
        # so compressing and fsyncing a second of records never stalls the users' greenlets.
        self.run_io: Callable[[Callable[[], None]], Any] = lambda fn: fn()
        self.finished = False

    def start(self) -> None:
        self.started_at = self.started_at or self.clock()

    def accept(self, payload: dict[str, Any]) -> None:
        worker = str(payload["worker"])
        w = self.workers.setdefault(
            worker,
            {
                "client_id": payload.get("client_id"),
                "records": 0,
                "final": False,
                "dropped_arrivals": 0,
                "last_batch_at": None,
            },
        )
        lines = payload.get("lines") or []
        if lines:
            self._pending.setdefault(worker, []).extend(lines)
            self.requests += len(lines)
        stats = payload.get("stats") or {}
        self.errors += int(stats.get("errors", 0))
        self.throttled += int(stats.get("throttled", 0))
        for sec, n in (stats.get("per_second") or {}).items():
            self._per_second[int(sec)] = self._per_second.get(int(sec), 0) + int(n)
        if payload.get("intervals"):
            self.hist.add_intervals(payload["intervals"])
        w["records"] += len(lines)
        w["dropped_arrivals"] += int(payload.get("dropped") or 0)
        self.dropped += int(payload.get("dropped") or 0)
        w["last_batch_at"] = self.clock()
        if payload.get("final"):
            w["final"] = True

    def flush(self) -> None:
        """Append what was accepted to each worker's ledger file: one flush + fsync per worker."""
        pending, self._pending = self._pending, {}
        for worker, lines in pending.items():
            writer = self.writers.get(worker)
            if writer is None:
                writer = self.writers[worker] = LedgerWriter(self.run_dir / "ledger", worker)
            self.run_io(lambda w=writer, lines=lines: w.write_lines(lines))

    def progress(self) -> dict[str, Any]:
        now = self.clock()
        last_full = int(now) - 1
        window = [self._per_second.get(s, 0) for s in range(last_full - 4, last_full + 1)]
        total = self.hist.total()
        return {
            "run_id": self.run_id,
            "t": now,
            "elapsed_s": round(now - self.started_at, 1) if self.started_at else 0.0,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "rps": round(sum(window) / 5.0, 1),
            "errors": self.errors,
            "throttled": self.throttled,
            "dropped_arrivals": self.dropped,
            "p95_ms": total.get_value_at_percentile(95.0) / 1000.0 if total.get_total_count() else None,
            "workers": len(self.workers),
        }

    def write_progress(self) -> None:
        self.flush()
        write_json_atomic(self.run_dir / "progress.json", self.progress())

    def finish(
        self,
        *,
        locust_stats: Any,
        worker_states: dict[str, str] | None = None,
        known_workers: dict[str, str] | None = None,
    ) -> None:
        """Close the ledger, write histograms.json and loadgen.json. Idempotent."""
        if self.finished:
            return
        seen = {w.get("client_id") for w in self.workers.values()}
        for client_id, name in (known_workers or {}).items():
            if client_id not in seen and name not in self.workers:
                self.workers[name] = {
                    "client_id": client_id,
                    "records": 0,
                    "final": False,
                    "dropped_arrivals": 0,
                    "last_batch_at": None,
                }
        self.finished = True
        self.ended_at = self.clock()
        self.flush()
        for writer in self.writers.values():
            writer.close()
        self.hist.save(self.run_dir)
        for w in self.workers.values():
            if worker_states is not None:
                w["state"] = worker_states.get(w.get("client_id"), "gone")
            w["complete"] = bool(w["final"])
        summary = {
            "run_id": self.run_id,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "ledger_records": self.requests,
            "dropped_arrivals": self.dropped,
            "locust": locust_counts(locust_stats),
            "workers": self.workers,
        }
        write_json_atomic(self.run_dir / "loadgen.json", summary)
        self.write_progress()


def locust_counts(stats: Any) -> dict[str, Any]:
    """Locust's own per-route request/failure counts (and failure kinds) as it counted them."""
    if stats is None:
        return {}
    routes: dict[str, Any] = {}
    for (name, method), entry in sorted(stats.entries.items()):
        routes[name] = {"method": method, "requests": entry.num_requests, "failures": entry.num_failures}
    failures = [
        {"route": f.name, "method": f.method, "error": str(f.error), "occurrences": f.occurrences}
        for f in stats.errors.values()
    ]
    return {
        "routes": routes,
        "total": {"requests": stats.total.num_requests, "failures": stats.total.num_failures},
        "failures": sorted(failures, key=lambda f: (f["route"], f["error"])),
    }


# --------------------------------------------------------------------------------------------
# Wiring into Locust's runners


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
            runner._send_stats()
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
        known = {cid: f"w{idx}" for cid, idx in getattr(runner, "worker_indexes", {}).items()}
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
