"""The renderer interface and ``render_all``.

    render_all(run_dir, *, out_dir=None, renderers=None) -> [Path]

A :class:`Renderer` formats a :class:`~reports.data.ReportData` (built once, from results.json
and the run directory) into one file. ``loadcheck run`` calls ``render_all`` after the checks;
``loadcheck report RUNS/<id>`` re-renders.

Each renderer runs on its own: when one fails on an unexpected error (a bug, not bad input),
the others still write their files (CI still gets junit.xml when a plot breaks), the traceback
goes to ``report-error.txt`` beside them, and a :class:`~loadcheck.core.errors.LoadcheckError`
naming the renderer is raised at the end, so ``loadcheck run`` reports it and still finishes.
Bad input (unknown versions, a corrupt ledger) raises before anything is written.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from loadcheck.core.errors import LoadcheckError
from reports.data import ReportData, build_report_data
from reports.junit import JunitRenderer
from reports.markdown import MarkdownRenderer

ERROR_FILE = "report-error.txt"


class Renderer(Protocol):
    name: str
    filename: str

    def render(self, data: ReportData, out_dir: Path) -> Path: ...


def default_renderers() -> list[Renderer]:
    # deferred: reports.html loads matplotlib (~0.3 s) through reports.plots; `loadcheck --help`
    # loads this module and only a render needs the plots.
    from reports.html import HtmlRenderer

    return [HtmlRenderer(), MarkdownRenderer(), JunitRenderer()]


def render_all(
    run_dir: str | Path, *, out_dir: str | Path | None = None, renderers: Sequence[Renderer] | None = None
) -> list[Path]:
    """Render every report of a run; returns the files written (in ``out_dir``, default the run dir)."""
    data = build_report_data(run_dir)
    target = Path(out_dir) if out_dir is not None else data.run_dir
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    failed: list[str] = []
    tracebacks: list[str] = []
    for r in renderers if renderers is not None else default_renderers():
        try:
            written.append(r.render(data, target))
        except LoadcheckError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken renderer must not cost the others
            failed.append(f"{r.filename} ({type(exc).__name__}: {exc})")
            tracebacks.append(f"{r.filename}:\n{traceback.format_exc()}")
    if failed:
        (target / ERROR_FILE).write_text("\n".join(tracebacks), encoding="utf-8")
        raise LoadcheckError(
            "could not render " + "; ".join(failed),
            value=[f.split(" ")[0] for f in failed],
            hint=f"the other reports were written; the traceback is in {target / ERROR_FILE} (a loadcheck bug: "
            "please report it with that file)",
        )
    (target / ERROR_FILE).unlink(missing_ok=True)
    return written
