"""Saved baselines: the files ``loadcheck compare`` needs, copied out of a run directory.

    save_baseline(run_dir, name=None, directory="baselines") -> Path
    list_baselines(directory="baselines") -> [dict]

A baseline is ``<directory>/<name>/`` holding ``run.json``, ``results.json``,
``histograms.json`` (when the run has one) and ``baseline.json`` (name, run id, when and from
where it was saved, and for a run with ``--collisions`` the per-route count of the 409s of forced
collisions, which compare leaves out of error rates). The ledger is not copied: compare reads
per-route figures from results.json and latency intervals from histograms.json, so a baseline
is a few kilobytes and fits in a repository.
"""

from __future__ import annotations

import datetime as _dt
import re
import shutil
from pathlib import Path
from typing import Any

from loadcheck.core import rundir
from loadcheck.core.errors import ConfigError, RunDirError
from loadcheck.core.ledger import forced_collisions_by_route, ledger_files
from loadcheck.core.rundir import read_json_object, verdict_of_results
from loadcheck.core.state import write_json_atomic
from reports.compare import COLLISIONS_KEY

DEFAULT_DIR = "baselines"
FILES = (rundir.RUN_FILE, rundir.RESULTS_FILE, rundir.HISTOGRAMS_FILE)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def save_baseline(
    run_dir: str | Path, *, name: str | None = None, directory: str | Path = DEFAULT_DIR, allow_failed: bool = False
) -> Path:
    """Copy a checked run's files into ``directory/name``. A run whose verdict is not a pass is
    refused unless ``allow_failed``: comparing against a failed or unverified run hides regressions."""
    rd = rundir.run_dir_of(run_dir)
    run = rundir.read_run(rd)
    results = rundir.read_results(rd)
    if results is None:
        raise RunDirError(
            f"{rd} has no results.json: a baseline needs the run's checked figures",
            value=str(rd),
            hint=f"run `loadcheck check {rd}` first",
        )
    final = verdict_of_results(results)
    if not final.passed and not allow_failed:
        why = "; ".join(final.reasons[:3]) or "see its results.json"
        raise ConfigError(
            f"{rd}: verdict {final.value.upper()} ({why}): a baseline should be a run that passed",
            value=final.value,
            hint=f"save a passing run, or pass --allow-failed to keep this one anyway (loadcheck baseline save {rd} --allow-failed)",
        )
    rundir.read_histograms(rd)  # refuse an unreadable one now, not at compare time
    name = name or str(run.get("run_id") or rd.name)
    if not _NAME.match(name):
        raise ConfigError(
            f"--name: {name!r} is not a usable baseline name",
            value=name,
            hint="use letters, digits, '.', '_' and '-', e.g. --name main-2026-11",
        )
    dest = Path(directory) / name
    if dest.exists():
        raise ConfigError(
            f"baseline {dest} already exists",
            value=str(dest),
            hint="choose another --name, or remove the old baseline first",
        )
    tmp = dest.with_name(f".{name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in FILES:
        if (rd / f).is_file():
            shutil.copy2(rd / f, tmp / f)
    meta: dict[str, Any] = {
        "name": name,
        "run_id": run.get("run_id"),
        "source": str(rd.resolve()),
        "saved_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if float((run.get("options") or {}).get("collisions") or 0.0) > 0 and ledger_files(rd):
        meta[COLLISIONS_KEY] = forced_collisions_by_route(rd)
    write_json_atomic(tmp / "baseline.json", meta)
    tmp.rename(dest)
    return dest


def list_baselines(directory: str | Path = DEFAULT_DIR) -> list[dict[str, Any]]:
    """One row per baseline (name, run_id, saved_at, verdict, target, mix); unreadable ones say why."""
    base = Path(directory)
    if not base.is_dir():
        return []
    rows = []
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        row: dict[str, Any] = {"name": d.name, "path": str(d)}
        try:
            run = rundir.read_run(d)
            results = rundir.read_results(d) or {}
            meta = (
                read_json_object(d / "baseline.json", writer="`loadcheck baseline save`")
                if (d / "baseline.json").is_file()
                else {}
            )
            row.update(
                {
                    "run_id": run.get("run_id"),
                    "saved_at": meta.get("saved_at"),
                    "verdict": results.get("verdict"),
                    "target": (run.get("target") or {}).get("kind"),
                    "mix": (run.get("options") or {}).get("mix"),
                }
            )
        except RunDirError as exc:
            row["error"] = exc.message
        rows.append(row)
    return rows
