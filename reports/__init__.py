"""Reports: results.json + the run directory -> report.html, summary.md, junit.xml; compare; capacity.

``render_all(run_dir) -> [Path]`` is what ``loadcheck run`` calls after its checks.
"""

from __future__ import annotations

from reports.render import render_all

__all__ = ["render_all"]
