"""The run's files from ledger batches: ledger, histograms, progress and load-generator summary.

One :class:`Aggregator` per run, in the local runner or the master. It accepts the payloads
:meth:`locustfiles.ledger_collector.Collector.drain` makes, appends their records to
``ledger/<worker>-NNNN.jsonl.gz`` with :class:`loadcheck.core.ledger.LedgerWriter` (flushed and
fsynced per batch, so a killed run keeps what was written), merges intervals exactly into
:class:`loadcheck.core.histograms.RunHistograms`, writes ``progress.json`` every second and, at the
end, ``histograms.json`` and ``loadgen.json`` (Locust's per-route counts, dropped arrivals,
workers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from loadcheck.core import histograms
from loadcheck.core.ledger import LedgerWriter
from loadcheck.core.state import write_json_atomic


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
        self._route_status: dict[str, dict[str, int]] = {}
        self._route_seconds: dict[str, dict[int, int]] = {}
        self._pending: dict[str, list[bytes]] = {}  # accepted, written at the next flush()
        self._users: dict[str, dict[str, Any]] = {}  # per worker: its users at its last batch
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
        for route, counts in (stats.get("routes") or {}).items():
            mine = self._route_status.setdefault(route, {})
            for cls, n in (counts.get("status") or {}).items():
                mine[cls] = mine.get(cls, 0) + int(n)
            secs = self._route_seconds.setdefault(route, {})
            for sec, n in (counts.get("per_second") or {}).items():
                secs[int(sec)] = secs.get(int(sec), 0) + int(n)
        if payload.get("intervals"):
            self.hist.add_intervals(payload["intervals"])
        w["records"] += len(lines)
        w["dropped_arrivals"] += int(payload.get("dropped") or 0)
        self.dropped += int(payload.get("dropped") or 0)
        w["last_batch_at"] = self.clock()
        if payload.get("final"):
            w["final"] = True
        if isinstance(payload.get("users"), dict):
            self._users[worker] = payload["users"]

    def flush(self) -> None:
        """Append what was accepted to each worker's ledger file: one flush + fsync per worker."""
        pending, self._pending = self._pending, {}
        for worker, lines in pending.items():
            writer = self.writers.get(worker)
            if writer is None:
                writer = self.writers[worker] = LedgerWriter(self.run_dir / "ledger", worker)
            self.run_io(partial(writer.write_lines, lines))

    def progress(self) -> dict[str, Any]:
        """progress.json: the run so far (schema in docs/internals.md, "progress.json")."""
        now = self.clock()
        last_full = int(now) - 1
        window = [self._per_second.get(s, 0) for s in range(last_full - 4, last_full + 1)]
        total = self.hist.total()
        routes: dict[str, Any] = {}
        for route in sorted(set(self._route_status) | set(self.hist.routes)):
            secs = self._route_seconds.get(route, {})
            status = self._route_status.get(route, {})
            whole = self.hist.routes.get(route)
            routes[route] = {
                "requests": sum(status.values()),
                "rps": round(sum(secs.get(s, 0) for s in range(last_full - 4, last_full + 1)) / 5.0, 1),
                "status": dict(sorted(status.items())),
                "hdr": histograms.encode(whole) if whole is not None else None,
            }
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
            "users": self.users(),
            "routes": routes,
        }

    def users(self) -> dict[str, int | None] | None:
        """``{"pool", "busy"}`` over every worker's last report; ``busy`` is None in the closed
        model (no pool of idle users there), the whole thing None before the first report."""
        if not self._users:
            return None
        reports = self._users.values()
        pool = sum(int(u.get("pool") or 0) for u in reports)
        idle = [u.get("idle") for u in reports]
        busy = None if any(i is None for i in idle) else max(0, pool - sum(int(i or 0) for i in idle))
        return {"pool": pool, "busy": busy}

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
                sender = w.get("client_id")  # None when the worker's payloads named no client id
                w["state"] = worker_states.get(sender, "gone") if sender is not None else "gone"
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
