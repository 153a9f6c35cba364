"""Reports: results.json + the run directory -> report.html, summary.md, junit.xml; compare; capacity.

``render_all(run_dir) -> [Path]`` is what ``loadcheck run`` calls after its checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def render_all(run_dir: str | Path, **kwargs: Any) -> list[Path]:
    from reports.render import render_all as _render_all

    return _render_all(run_dir, **kwargs)


__all__ = ["render_all"]
