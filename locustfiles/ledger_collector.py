"""Every request -> one ledger record and HDR histogram samples, in one load-generating process.

The ``request`` event is on every request's path, so :meth:`Collector.on_request` keeps only the
raw values (one tuple per request, whatever its outcome: connection errors, timeouts and TLS
failures included, with ``status`` 0 and an ``error`` kind). Once a second :meth:`Collector.drain`
turns them into JSON lines (orjson), counts and per-second HDR intervals, and hands them out in
payloads of at most ``BATCH_RECORDS`` records: to the :class:`locustfiles.ledger_aggregator.Aggregator`
in the same process, or to the master as ``loadcheck:batch`` messages (:mod:`locustfiles.ledgerhooks`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import orjson

from loadcheck.core import histograms
from loadcheck.core.ledger import item_digest, status_class

log = logging.getLogger("loadcheck.load")

BATCH_RECORDS = 500


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
        # This process's users at the last tick: {"pool": started users, "idle": waiting for an
        # arrival (None in the closed model)}; rides on each drain for progress.json.
        self.users: dict[str, int | None] | None = None

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

    def set_users(self, pool: int, idle: int | None) -> None:
        self.users = {"pool": int(pool), "idle": None if idle is None else int(idle)}

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
        route_status: dict[str, dict[str, int]] = {}
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
                if meta and "kind" in meta:
                    rec["kind"] = meta["kind"]
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
            counts = route_status.get(route)
            if counts is None:
                counts = route_status[route] = {}
            cls = status_class(status)
            counts[cls] = counts.get(cls, 0) + 1
            sec = int(t_end)
            lat_us = latency_ms * 1000.0
            us = round(lat_us) if 1.0 <= lat_us <= histograms.HIGHEST_US else histograms.to_us(latency_ms)
            sample = (sec, route, us)
            samples[sample] = samples.get(sample, 0) + 1
        route_seconds: dict[str, dict[str, int]] = {}
        for (sec, route, _), n in samples.items():
            per_second[sec] = per_second.get(sec, 0) + n
            secs = route_seconds.setdefault(route, {})
            secs[str(sec)] = secs.get(str(sec), 0) + n
        stats = {
            "errors": errors,
            "throttled": throttled,
            "per_second": {str(k): v for k, v in per_second.items()},
            "routes": {r: {"status": c, "per_second": route_seconds.get(r, {})} for r, c in route_status.items()},
        }
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
        payloads: list[dict[str, Any]] = []
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
            stats=stats,
            intervals={str(s): r for s, r in intervals.items()},
            dropped=dropped,
            final=final,
            users=self.users,
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
