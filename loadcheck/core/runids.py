"""Run ids and the run directories they name: ``runs/<run-id>`` claimed once, and ``runs/latest``.

A run id is ``YYYYmmddTHHMMSSZ-xxxxxx`` (:func:`new_run_id`) or the user's ``--run-id``
(:func:`check_run_id`: a safe directory name). :func:`claim_run_dir` creates ``runs/<run-id>``
and never reuses one; :func:`mark_latest` points ``runs/latest`` at the newest run (a symlink
replaced atomically, or on a filesystem without symlinks a ``latest`` text file holding the run
id); :func:`resolve_latest` follows either. The documents inside a run directory are
:mod:`loadcheck.core.rundir`'s.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import uuid
from pathlib import Path

from loadcheck.core.errors import ConfigError, RunDirError

LATEST = "latest"  # runs/latest: the newest run (symlink, or a text file holding its id)
RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def new_run_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def check_run_id(value: str, *, option: str = "--run-id") -> str:
    """A run id the user chose: a safe directory name (letters, digits, ``.``, ``_``, ``-``, not
    starting with a dot or dash, at most 128 characters), and not ``latest``."""
    if not RUN_ID_RE.fullmatch(value) or value == LATEST:
        raise ConfigError(
            f"{option}: {value!r} is not a usable run id"
            + (" (runs/latest points at the newest run)" if value == LATEST else ""),
            value=value,
            hint="use letters, digits, '.', '_' and '-' only, starting with a letter or digit, e.g. "
            "ci-1234-1 (at most 128 characters)",
        )
    return value


def refuse_existing(out: Path, run_id: str, *, option: str = "--run-id") -> Path:
    """``out/run_id``, which must not exist yet (a run never writes into another run's directory)."""
    run_dir = Path(out) / run_id
    if run_dir.exists() or run_dir.is_symlink():
        raise ConfigError(
            f"{option}: {run_dir} already exists",
            value=run_id,
            hint="choose a new run id (e.g. add the CI attempt number), or move the old run away",
        )
    return run_dir


def claim_run_dir(out: Path, run_id: str) -> Path:
    """Create ``out/run_id`` (resolved); an existing one is refused, never reused."""
    run_dir = refuse_existing(out, run_id).resolve()
    try:
        run_dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:  # created between the check and now
        refuse_existing(out, run_id)
        raise
    return run_dir


def mark_latest(run_dir: Path) -> Path:
    """Point ``<out>/latest`` at ``run_dir`` (its parent is ``<out>``), atomically: a symlink
    made beside it and renamed over it, or, where symlinks cannot be made, a text file holding
    the run id, written the same way."""
    run_dir = Path(run_dir)
    latest = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}-{uuid.uuid4().hex[:8]}"
    try:
        os.symlink(run_dir.name, tmp, target_is_directory=True)
    except OSError:
        tmp.write_text(run_dir.name + "\n", encoding="utf-8")
    try:
        os.replace(tmp, latest)
    except OSError:  # e.g. a directory named latest: leave it, and no stray link behind
        tmp.unlink(missing_ok=True)
        raise
    return latest


def resolve_latest(path: Path) -> Path:
    """``runs/latest`` as the run directory it names (symlink or text file); any other path as is."""
    p = Path(path)
    if p.name != LATEST:
        return p
    if p.is_symlink():
        return p.parent / os.readlink(p)
    if p.is_file():
        run_id = p.read_text(encoding="utf-8").strip()
        if not RUN_ID_RE.fullmatch(run_id):
            raise RunDirError(
                f"{p} does not hold a run id ({run_id[:40]!r})",
                value=str(p),
                hint="name the run directory itself (runs/<run-id>); the next `loadcheck run` rewrites it",
            )
        return p.parent / run_id
    return p
