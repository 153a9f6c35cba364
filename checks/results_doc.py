"""``runs/<id>/results.json``: what the checks build (schema in docs/results-schema.md; the file
itself is read and written by :mod:`loadcheck.core.rundir`).

The per-route figures come from the ledger (requests, failures, rps, status mix) and from the
run's HDR histograms (latency percentiles, microseconds in the file, milliseconds here). When a
run has no ``histograms.json`` (a killed run), percentiles are computed exactly from the
ledger's latencies instead and ``latency_source`` says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from checks.framework import RunWindow
from loadcheck.core import histograms
from loadcheck.core.ledger import failed, read_ledger, status_key
from loadcheck.core.results import CheckResult
from loadcheck.core.rundir import (
    RESULTS_SCHEMA_VERSION,
    ResultsWrite,
    ledger_state,
    now_iso,
    read_histograms,
    read_run,
    verdict,
)
from loadcheck.core.rundir import write_results as rundir_write_results

PERCENTILES = tuple(histograms.PERCENTILES.items())  # the percentiles every view of a run reports


def ledger_stats(run_dir: Path) -> tuple[dict[str, dict[str, Any]], RunWindow, dict[str, list[float]]]:
    """One pass over the ledger: per-route counts, the run window, latencies (ms) per route.

    Raises :class:`~loadcheck.core.errors.LedgerError` on a corrupt ledger (the caller exits 2).
    """
    routes: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {}
    start, end = math.inf, -math.inf
    for rec in read_ledger(run_dir):
        r = routes.setdefault(rec["route"], {"requests": 0, "failures": 0, "status": {}})
        r["requests"] += 1
        r["failures"] += int(failed(rec))
        key = status_key(rec)
        r["status"][key] = r["status"].get(key, 0) + 1
        lat = float(rec.get("latency_ms") or 0.0)
        latencies.setdefault(rec["route"], []).append(lat)
        t = float(rec["t_start_ms"])
        start, end = min(start, t), max(end, t + lat)
    window = RunWindow(start, end) if routes else RunWindow(0.0, 0.0)
    for r in routes.values():
        r["rps"] = round(r["requests"] / window.duration_s, 3)
    return routes, window, latencies


def _hdr_latency(encoded: str) -> dict[str, float]:
    h = histograms.decode(encoded)
    if not h.get_total_count():
        return {name: 0.0 for name, _ in PERCENTILES} | {"max": 0.0}
    return {k: float(v) for k, v in histograms.summary(h).items() if k != "count"}


def _exact_latency(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    out = {}
    for name, p in PERCENTILES:
        idx = max(0, math.ceil(p / 100.0 * len(ordered)) - 1)
        out[name] = round(ordered[idx], 3)
    out["max"] = round(ordered[-1], 3)
    return out


def route_latencies(run_dir: Path, routes: dict[str, dict[str, Any]], latencies: dict[str, list[float]]) -> str:
    """Fill ``latency_ms`` per route; returns where the figures came from."""
    data = read_histograms(run_dir)
    hist: dict[str, Any] = (data or {}).get("routes") or {}
    source = "histograms.json" if hist else "ledger"
    for route, r in routes.items():
        if route in hist:
            r["latency_ms"] = _hdr_latency(hist[route])
        elif latencies.get(route):
            r["latency_ms"] = _exact_latency(latencies[route])
            source = "histograms.json+ledger" if hist else "ledger"
    return source


def build_results(
    run_dir: Path,
    results: list[CheckResult],
    *,
    started_at: str,
    ended_at: str,
    options: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    check_options: dict[str, Any] | None = None,
    baseline_broken: list[str] | None = None,
) -> dict[str, Any]:
    """The results document. ``options``: the run's options (default: run.json's);
    ``check_options``: how the checks ran (budget, names), under ``options.check``.

    ``verdict`` is :func:`loadcheck.core.rundir.verdict` of the checks, the run's thresholds
    (run.json), how the run ended, the ledger's completeness and any broken baseline budget;
    ``verdict_reasons`` says why it is not a pass.
    """
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    routes, window, latencies = ledger_stats(run_dir)
    source = route_latencies(run_dir, routes, latencies)
    ledger = ledger_state(run_dir, run)
    final = verdict(
        results,
        thresholds=run.get("thresholds") or [],
        run_status=run.get("status"),
        ledger_problems=ledger.problems,
        baseline_broken=baseline_broken or [],
        outages=run.get("outages") or [],
        aborted=run.get("aborted"),
    )
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "run_id": run.get("run_id", run_dir.name),
        "target": target if target is not None else run.get("target"),
        "started_at": started_at,
        "ended_at": ended_at,
        "run": {
            "started_at": run.get("started_at"),
            "ended_at": run.get("ended_at"),
            "status": run.get("status"),
            "ledger_window_ms": [window.start_ms, window.end_ms],
            "latency_source": source,
            "ledger_records": ledger.records,
            "ledger_cut": list(ledger.cut),
            "note": run.get("note"),
            "aborted": run.get("aborted"),
        },
        "conditions": run.get("conditions") or {},
        "thresholds": run.get("thresholds") or [],
        "options": {**(run.get("options") or {}), **(options or {}), "check": check_options or {}},
        "routes": routes,
        "checks": [r.to_dict() for r in results],
        "verdict": final.value,
        "verdict_reasons": list(final.reasons),
    }


def write_results(run_dir: Path, results: list[CheckResult] | dict[str, Any], **kwargs: Any) -> ResultsWrite:
    """Write the results document (see :func:`loadcheck.core.rundir.write_results`: a document
    with less evidence than the one in place goes to results-history/ instead)."""
    if isinstance(results, dict):
        doc = results
    else:
        now = now_iso()
        kwargs.setdefault("started_at", now)
        kwargs.setdefault("ended_at", now)
        doc = build_results(Path(run_dir), results, **kwargs)
    return rundir_write_results(Path(run_dir), doc)
