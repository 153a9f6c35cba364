"""Reading what a run directory holds, by versions this code knows (docs/results-schema.md).

    read_results(path) -> dict | None     results.json (written by checks/runner.py); None if absent
    read_run(path) -> dict                run.json (written by ``loadcheck run``)
    read_histograms(path) -> dict | None  histograms.json (written by the locustfiles)

``path`` is a run directory or a saved baseline directory (``loadcheck baseline save`` copies
the three files). A file of an unknown version is refused with a
:class:`~loadcheck.core.errors.RunDirError` that names the file, its version, the versions this code
reads and what to do; a report must never render a document it misreads.

The checks engineer owns the writer (``checks/results_doc.py``, ``SCHEMA_VERSION``); the
versions listed here are the ones the renderers were written against, kept apart on purpose so
a new writer version is refused instead of half-rendered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadcheck.core.errors import RunDirError

RESULTS_VERSIONS = (1,)
RUN_VERSIONS = (1,)
HISTOGRAMS_VERSIONS = (1,)

RESULTS_FILE = "results.json"
RUN_FILE = "run.json"
HISTOGRAMS_FILE = "histograms.json"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})",
            value=str(path),
            hint="the file is damaged; re-create it (`loadcheck check RUNS/<id>` writes results.json)",
        ) from exc


def _versioned(path: Path, key: str, known: tuple[int, ...], writer: str) -> dict[str, Any]:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise RunDirError(
            f"{path}: expected a JSON object, found {type(data).__name__}",
            value=str(path),
            hint=f"the file was not written by {writer}",
        )
    version = data.get(key)
    if version not in known:
        raise RunDirError(
            f"{path}: {key} {version!r} is not one this loadcheck reads (it reads {', '.join(map(str, known))})",
            value=version,
            hint=f"render it with the loadcheck version that wrote it, or re-create it with this one ({writer})",
        )
    return data


def run_dir_of(path: str | Path) -> Path:
    """A run (or baseline) directory, checked to exist and hold run.json."""
    p = Path(path)
    if p.is_file() and p.name in (RESULTS_FILE, RUN_FILE):
        p = p.parent
    if not p.is_dir():
        raise RunDirError(
            f"{p} is not a directory",
            value=str(p),
            hint="pass a run directory (runs/<run-id>) or a saved baseline (baselines/<name>)",
        )
    if not (p / RUN_FILE).is_file():
        raise RunDirError(
            f"{p} is not a run directory (no {RUN_FILE})",
            value=str(p),
            hint="pass a directory written by `loadcheck run` or `loadcheck baseline save`",
        )
    return p


def read_run(path: str | Path) -> dict[str, Any]:
    p = run_dir_of(path)
    return _versioned(p / RUN_FILE, "schema_version", RUN_VERSIONS, "`loadcheck run`")


def read_results(path: str | Path) -> dict[str, Any] | None:
    """results.json of a run or baseline, or None when the run was never checked."""
    p = run_dir_of(path) / RESULTS_FILE
    if not p.is_file():
        return None
    data = _versioned(p, "schema_version", RESULTS_VERSIONS, "`loadcheck check RUNS/<id>`")
    for key in ("routes", "checks", "verdict"):
        if key not in data:
            raise RunDirError(f"{p}: lacks {key!r}", value=str(p), hint="re-create it with `loadcheck check RUNS/<id>`")
    return data


def read_histograms(path: str | Path) -> dict[str, Any] | None:
    p = run_dir_of(path) / HISTOGRAMS_FILE
    if not p.is_file():
        return None
    data = _versioned(p, "version", HISTOGRAMS_VERSIONS, "`loadcheck run`")
    if data.get("unit") != "us":
        raise RunDirError(
            f"{p}: unit {data.get('unit')!r} is not 'us'",
            value=data.get("unit"),
            hint="histograms.json holds microseconds; the file was not written by loadcheck",
        )
    return data
