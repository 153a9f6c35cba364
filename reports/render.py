"""The renderer interface and ``render_all``.

    render_all(run_dir, *, out_dir=None, renderers=None) -> [Path]

A :class:`Renderer` formats a :class:`~reports.data.ReportData` (built once, from results.json
and the run directory) into one file. ``loadcheck run`` calls ``render_all`` after the checks;
``loadcheck report RUNS/<id>`` re-renders.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from reports.data import ReportData, build_report_data


class Renderer(Protocol):
    name: str
    filename: str

    def render(self, data: ReportData, out_dir: Path) -> Path: ...


def default_renderers() -> list[Renderer]:
    from reports.html import HtmlRenderer
    from reports.junit import JunitRenderer
    from reports.markdown import MarkdownRenderer

    return [HtmlRenderer(), MarkdownRenderer(), JunitRenderer()]


def render_all(run_dir: str | Path, *, out_dir: str | Path | None = None,
               renderers: Sequence[Renderer] | None = None) -> list[Path]:
    """Render every report of a run; returns the files written (in ``out_dir``, default the run dir)."""
    data = build_report_data(run_dir)
    target = Path(out_dir) if out_dir is not None else data.run_dir
    target.mkdir(parents=True, exist_ok=True)
    return [r.render(data, target) for r in (renderers if renderers is not None else default_renderers())]
