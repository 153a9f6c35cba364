"""``runs/<id>/results.json``: build, write, read (schema in docs/results-schema.md).

The per-route figures come from the ledger (requests, failures, rps, status mix) and from the
run's HDR histograms (latency percentiles, microseconds in the file, milliseconds here). When a
run has no ``histograms.json`` (a killed run), percentiles are computed exactly from the
ledger's latencies instead and ``latency_source`` says so.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from checks.framework import RunWindow
from loadcheck.core import histograms
from loadcheck.core.errors import RunDirError
from loadcheck.core.ledger import read_ledger
from loadcheck.core.results import CheckResult
from loadcheck.core.state import write_json_atomic

SCHEMA_VERSION = 1
RESULTS_FILE = "results.json"
PERCENTILES = tuple(histograms.PERCENTILES.items())  # the percentiles every view of a run reports


def _status_key(rec: dict[str, Any]) -> str:
    if rec.get("error"):
        return str(rec["error"])
    status = int(rec.get("status") or 0)
    return str(status) if status else "no_status"


def _failed(rec: dict[str, Any]) -> bool:
    status = int(rec.get("status") or 0)
    return bool(rec.get("error")) or status == 0 or status >= 400


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
        r["failures"] += int(_failed(rec))
        key = _status_key(rec)
        r["status"][key] = r["status"].get(key, 0) + 1
        lat = float(rec.get("latency_ms") or 0.0)
        latencies.setdefault(rec["route"], []).append(lat)
        t = float(rec["t_start_ms"])
        start, end = min(start, t), max(end, t + lat)
    window = RunWindow(start, end) if routes else RunWindow(0.0, 0.0)
    for r in routes.values():
        r["rps"] = round(r["requests"] / window.duration_s, 3)
    return routes, window, latencies


def ledger_truncation(run_dir: Path) -> list[str]:
    """Ledger files whose last record is cut off (``file:line``): normal for a killed run,
    corruption for a run that says it completed."""
    from loadcheck.core.ledger import _decompressed_lines, ledger_files

    cut = []
    for path in ledger_files(run_dir):
        last = None
        for lineno, line, complete in _decompressed_lines(path):
            last = (lineno, line, complete)
        if last is not None and not last[2] and last[1].strip():
            try:
                json.loads(last[1])
            except json.JSONDecodeError:
                cut.append(f"{path}:{last[0]}")
    return cut


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
    path = Path(run_dir) / "histograms.json"
    hist: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise RunDirError(
                f"{path}: not valid JSON ({exc.msg})",
                value=str(path),
                hint="remove the file to fall back to ledger latencies",
            ) from exc
        if data.get("unit", "us") != "us":
            raise RunDirError(f"{path}: unit {data.get('unit')!r} is not 'us'", value=data.get("unit"))
        hist = data.get("routes") or {}
    source = "histograms.json" if hist else "ledger"
    for route, r in routes.items():
        if route in hist:
            r["latency_ms"] = _hdr_latency(hist[route])
        elif latencies.get(route):
            r["latency_ms"] = _exact_latency(latencies[route])
            source = "histograms.json+ledger" if hist else "ledger"
    return source


def verdict(results: list[CheckResult]) -> str:
    """``fail`` if any check failed, else ``error`` if any could not run, else ``pass``
    (skipped checks do not change the verdict; with no check run at all it is ``error``)."""
    statuses = {r.status for r in results}
    if "fail" in statuses:
        return "fail"
    if "error" in statuses or not statuses - {"skipped"}:
        return "error"
    return "pass"


def build_results(
    run_dir: Path,
    results: list[CheckResult],
    *,
    started_at: str,
    ended_at: str,
    options: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    check_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The results document. ``options``: the run's options (default: run.json's);
    ``check_options``: how the checks ran (budget, names), under ``options.check``."""
    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    routes, window, latencies = ledger_stats(run_dir)
    source = route_latencies(run_dir, routes, latencies)
    return {
        "schema_version": SCHEMA_VERSION,
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
        },
        "options": {**(run.get("options") or {}), **(options or {}), "check": check_options or {}},
        "routes": routes,
        "checks": [r.to_dict() for r in results],
        "verdict": verdict(results),
    }


def read_run_json(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise RunDirError(
            f"{run_dir} is not a run directory (no run.json)",
            value=str(run_dir),
            hint="pass a directory written by `loadcheck run`, e.g. runs/<run-id>",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})",
            value=str(path),
            hint="the run directory is damaged",
        ) from exc
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object", value=str(path))
    return data


def write_results(run_dir: Path, results: list[CheckResult] | dict[str, Any], **kwargs: Any) -> Path:
    """Write ``results.json`` atomically; ``results`` is the checks' list or a built document."""
    import datetime as _dt

    if isinstance(results, dict):
        doc = results
    else:
        now = _dt.datetime.now(_dt.UTC).isoformat()
        kwargs.setdefault("started_at", now)
        kwargs.setdefault("ended_at", now)
        doc = build_results(Path(run_dir), results, **kwargs)
    path = Path(run_dir) / RESULTS_FILE
    write_json_atomic(path, doc)
    return path


def read_results(path: Path) -> dict[str, Any]:
    """Read a results.json (or a run directory's); refuses versions this code does not know."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise RunDirError(f"no results at {path}", value=str(path), hint="run `loadcheck check RUNS/<run-id>` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(
            f"{path}: not valid JSON ({exc.msg})", value=str(path), hint="re-create it with `loadcheck check`"
        ) from exc
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise RunDirError(
            f"{path}: results schema_version {version!r} is not supported (this loadcheck reads "
            f"version {SCHEMA_VERSION})",
            value=version,
            hint="re-run `loadcheck check` on the run with this version, or use the loadcheck that wrote it",
        )
    return data
