"""Synthetic run directories for tests and demos (the run-directory contract, docs/internals.md).

``write_run(run_dir, ...)`` writes run.json, a ledger through :class:`loadcheck.core.ledger.LedgerWriter`,
histograms.json through :class:`loadcheck.core.histograms.RunHistograms` (real HDR encodings) and,
unless ``checks`` is None, a results.json, so report code is tested against files of the exact
shape the real writers produce. The load is deterministic (seeded).

A writes-only table model decides 429s: a bucket of ``300 * wcu`` refilled at ``wcu`` per
second, full at start, as the throttling check's model (docs/aws-behaviour.md §7.2, §7.3).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from checks.results_doc import build_results
from loadcheck.core.capacity import BURST_SECONDS
from loadcheck.core.histograms import IntervalRecorder, RunHistograms
from loadcheck.core.ledger import LedgerWriter, item_digest
from loadcheck.core.results import CheckResult
from loadcheck.core.rundir import RunConditions, RunRecord, write_results
from loadcheck.core.rundir import write_run as write_run_record

T0_MS = 1_790_000_000_000.0  # 2026-09-21, a fixed origin so outputs are reproducible


def write_run(
    run_dir: Path,
    *,
    run_id: str | None = None,
    seconds: int = 30,
    rate: float = 10.0,
    mix: dict[str, int] | None = None,
    latency_ms: float = 20.0,
    latency_factor: float = 1.0,
    error_share: float = 0.0,
    wcu: float = 1.0,
    burst_s: float = BURST_SECONDS,
    payload_bytes: int = 40,
    checks: list[CheckResult] | None = None,
    target: dict[str, Any] | None = None,
    seed: int = 7,
    steps: list[float] | None = None,
    step_duration_s: float | None = None,
    slow_above_rate: float | None = None,
) -> Path:
    """Write a complete synthetic run; returns ``run_dir``.

    ``steps``/``step_duration_s``: a step shape (``rate`` is ignored); ``slow_above_rate``: steps
    above this rate get 10x the latency (a latency knee)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = run_id or run_dir.name
    mix = mix or {"writes": 8, "reads": 1, "search": 1}
    rng = random.Random(seed)
    routes = {
        "writes": ("POST", "/events", "POST /events"),
        "reads": ("GET", "/events?date=2100-01-01&limit=25", "GET /events"),
        "search": ("GET", "/search?q=ab", "GET /search"),
    }
    kinds = [k for k, w in mix.items() for _ in range(w)]
    if steps:
        assert step_duration_s
        seconds = int(len(steps) * step_duration_s)
    writer = LedgerWriter(run_dir / "ledger", "local")
    rec_hist = IntervalRecorder()
    cap = max(burst_s * wcu, wcu)  # the bucket holds at least one second of refill
    level = cap
    last_t = 0.0
    seq = 0
    t = 0.0
    while t < seconds:  # as locustfiles/shapes.py schedules: first arrival at 0, then 1/rate(t) apart
        r = steps[min(int(t // step_duration_s), len(steps) - 1)] if steps and step_duration_s else rate
        kind = rng.choice(kinds)
        method, path, route = routes[kind]
        lat = latency_ms * latency_factor * (0.6 + 0.8 * rng.random())
        if slow_above_rate is not None and r > slow_above_rate:
            lat *= 10
        status, error = 200, None
        rec: dict[str, Any] = {}
        if kind == "writes":
            level = min(cap, level + wcu * (t - last_t))
            last_t = t
            item = {"date": "2100-01-01", "time": f"{seq:09d}", "payload": "x" * payload_bytes}
            units = max(1, -(-(4 + 10 + 4 + 9 + 7 + payload_bytes) // 1024))
            if level >= units:
                level -= units
                status = 201
            else:
                status = 429
            rec.update(
                {
                    "item_key": {"date": item["date"], "time": item["time"]},
                    "item": item,
                    "item_digest": item_digest(item),
                }
            )
        if status < 400 and rng.random() < error_share:
            status = 500
        t_ms = T0_MS + t * 1000.0
        rec.update(
            {
                "run_id": run_id,
                "worker": "local",
                "seq": seq,
                "t_start_ms": t_ms,
                "t_intended_ms": t_ms,
                "kind": kind,
                "route": route,
                "method": method,
                "path": path,
                "status": status,
                "error": error,
                "latency_ms": round(lat, 3),
                "response_length": 120,
                "request_id": f"req-{seq}",
            }
        )
        writer.write(rec)
        rec_hist.record(route, (t_ms + lat) / 1000.0, lat)
        seq += 1
        t += 1.0 / r
    writer.close()
    hist = RunHistograms()
    taken: dict[int | str, dict[str, str]] = {k: v for k, v in rec_hist.take().items()}
    hist.add_intervals(taken)
    hist.save(run_dir)
    shape = "step" if steps else "constant-rate"
    options = {
        "target": "local",
        "shape": shape,
        "rate": None if steps else rate,
        "steps": list(steps or []),
        "step_duration_s": step_duration_s,
        "mix": mix,
        "duration_s": float(seconds),
        "faults": {},
        "workers": 0,
    }
    tgt = target or {
        "kind": "local",
        "region": "us-east-1",
        "domain": "events.loadcheck.test",
        "table_name": "EventLog",
        "api_id": "abc123",
        "url": "https://events.loadcheck.test:4443",
    }
    started = "2026-09-21T14:13:20.000+00:00"
    write_run_record(
        run_dir,
        RunRecord(
            run_id=run_id,
            status="complete",
            target=tgt,
            options=options,
            conditions=RunConditions(shape=shape, mix=dict(mix)),
            versions={"python": "3.11"},
            started_at=started,
            ended_at=started,
            ledger_records=writer.count,
        ),
    )
    if checks is not None:
        write_results(run_dir, build_results(run_dir, checks, started_at=started, ended_at=started, target=tgt))
    return run_dir


def sample_checks(*, failing: bool = False) -> list[CheckResult]:
    """Four checks as the real ones name them; ``failing`` makes dynamodb_contents fail."""
    out = [
        CheckResult(
            "dynamodb_contents",
            "fail" if failing else "pass",
            "2 acknowledged writes missing from EventLog" if failing else "all 210 acknowledged writes present",
            figures={"acknowledged": 210, "lost": 2 if failing else 0},
            evidence=[{"kind": "lost", "key": {"date": "2100-01-01", "time": "000000003"}, "request_id": "req-3"}]
            if failing
            else [],
            duration_s=1.2,
        ),
        CheckResult(
            "throttling",
            "pass",
            "throttling began at 12.0s",
            figures={"provisioned_wcu": 1.0, "billing_mode": "PROVISIONED", "burst_wcu": BURST_SECONDS},
            duration_s=2.0,
        ),
        CheckResult("access_logs", "pass", "one record per request", duration_s=0.5),
        CheckResult("security", "skipped", "not run", reason="--only excluded it"),
    ]
    return out
