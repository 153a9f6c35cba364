"""``loadcheck report RUNS/<id>``: (re-)render report.html, summary.md and junit.xml of a run.

Reads results.json and the run directory only (no target needed): safe to run anywhere, any time.
Exit status 0 when rendered; 2 when the run directory or a file in it is unreadable or of an
unknown version.
"""

from __future__ import annotations

from pathlib import Path

import click

from loadcheck.core.runids import resolve_latest
from reports.render import render_all


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="write the reports here instead of into the run directory",
)
def command(run_dir: Path, out_dir: Path | None) -> None:
    """Render report.html, summary.md and junit.xml from a run's results.json + run directory."""
    for path in render_all(resolve_latest(run_dir), out_dir=out_dir):
        click.echo(str(path))
