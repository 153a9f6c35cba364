"""``loadcheck baseline save RUNS/<id> [--name NAME] [--dir baselines/]`` and ``loadcheck baseline list``.

A baseline keeps what ``loadcheck compare`` needs (run.json, results.json, histograms.json), so
it can live in the repository and outlast ``runs/``.
"""

from __future__ import annotations

from pathlib import Path

import click

from reports.baseline import DEFAULT_DIR, list_baselines, save_baseline


@click.group("baseline")
def command() -> None:
    """Save and list baselines for `loadcheck compare`."""


@command.command("save")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="baseline name (default: the run id)")
@click.option(
    "--dir",
    "directory",
    default=DEFAULT_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="the baselines directory: the baseline is written into DIR/NAME",
)
@click.option("--allow-failed", is_flag=True, help="save a run whose verdict is not PASS (refused by default)")
def save(run_dir: Path, name: str | None, directory: str, allow_failed: bool) -> None:
    """Copy a checked, passing run's run.json, results.json and histograms.json into DIR/NAME."""
    dest = save_baseline(run_dir, name=name, directory=directory, allow_failed=allow_failed)
    click.echo(f"saved baseline {dest.name}: {dest}")
    click.echo(f"compare with: loadcheck compare {dest} RUNS/<run-id>")


@command.command("list")
@click.option(
    "--dir",
    "directory",
    default=DEFAULT_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="the baselines directory to list",
)
def list_(directory: str) -> None:
    """List saved baselines."""
    rows = list_baselines(directory)
    if not rows:
        click.echo(f"no baselines in {directory} (save one: loadcheck baseline save RUNS/<run-id>)")
        return
    for r in rows:
        if "error" in r:
            click.echo(f"{r['name']:<28} unreadable: {r['error']}")
            continue
        mix = ",".join(f"{k}={v}" for k, v in (r.get("mix") or {}).items())
        click.echo(
            f"{r['name']:<28} run {r.get('run_id')}  {str(r.get('verdict')).upper():<9} "
            f"target {r.get('target')}  mix {mix}  saved {r.get('saved_at')}"
        )
