"""``loadcheck check RUNS/<run-id>``: (re-)run the checks on a run directory, write results.json.

Read-only and repeatable: the checks read the table, the logs and the metrics, and send a few
refused probes. The target is the one run.json recorded; a local run is checked against the
running stack of ``--state-dir``.

Exit status follows the verdict (:func:`loadcheck.core.rundir.verdict`): 0 when it is ``pass``
(no check failed or errored, at least one check verified something, the run's thresholds held
and the run was not interrupted); 1 otherwise; 2 when the run directory or its ledger is
unreadable or damaged (a corrupt ledger, one shorter than run.json says was written, or a
completed run's gzip without its trailer is never a pass), and then nothing is written.

Evidence is never overwritten by less evidence: the results.json in place is kept in
``results-history/`` first, and a new document whose checks could not read what the previous one
read (the stack was stopped since) goes to ``results-history/`` instead of replacing it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from checks.runner import BUDGET_ENV, BUDGET_OPTION, CHECKS, build_context, iso_now, run_checks, write_results
from loadcheck.core.errors import ConfigError
from loadcheck.core.rundir import RESULTS_FILE, read_json_object, verdict_of_results
from loadcheck.core.runids import resolve_latest
from reference_stack.local import supervisor

SYMBOL = {"pass": "PASS", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}


@click.command("check")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--state-dir", default=None, help="local stack state directory (default: the one the run used)")
@click.option(
    BUDGET_OPTION,
    "budget",
    default=None,
    metavar="DURATION",
    help=f"time each check may wait for logs, metrics, the export and throttled reads, e.g. 90s, 2m "
    f"(default ${BUDGET_ENV}, else 60s locally, 15m on AWS)",
)
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="run only this check (repeatable): dynamodb_contents, throttling, access_logs, security",
)
@click.option("--quiet", "-q", is_flag=True, help="no progress lines")
def command(run_dir: Path, state_dir: str | None, budget: str | None, only: tuple[str, ...], quiet: bool) -> None:
    """Verify a run: nothing lost, throttling matched capacity, every request logged, security holds."""
    run_dir = resolve_latest(run_dir)  # runs/latest: the newest run
    if not run_dir.is_dir():
        raise ConfigError(
            f"{run_dir} is not a directory",
            value=str(run_dir),
            hint="pass a run directory, e.g. runs/<run-id> (ls runs/)",
        )
    for name in only:
        if name not in CHECKS:
            raise ConfigError(f"--only: unknown check {name!r}", value=name, hint=f"choose from: {', '.join(CHECKS)}")

    def progress(msg: str) -> None:
        if not quiet:
            click.echo(f"  {msg}", err=True)

    ctx = build_context(run_dir, state_dir=state_dir, budget_s=budget, progress=progress, local_flush=supervisor.flush)
    budget_s = ctx.budget_s
    click.echo(f"checking {run_dir} (budget {budget_s:g}s per check)")
    started = iso_now()
    t0 = time.monotonic()
    results = run_checks(run_dir, names=list(only) or None, context=ctx)
    opts = {"budget_s": budget_s, "only": list(only), "state_dir": state_dir}
    written = write_results(run_dir, results, started_at=started, ended_at=iso_now(), check_options=opts)
    width = max(len(r.name) for r in results) if results else 0
    for r in results:
        click.echo(f"{SYMBOL[r.status]:<5} {r.name:<{width}}  {r.summary}")
        if r.status != "pass":
            for ev in r.evidence[:5]:
                click.echo(f"      {ev}")
    doc = read_json_object(written.path, writer="`loadcheck check`")
    final = verdict_of_results(doc)
    if written.kept:
        click.echo(
            f"results: {written.path}  ({time.monotonic() - t0:.1f}s)\n"
            f"  kept {run_dir / RESULTS_FILE}: it holds more evidence for {', '.join(written.kept)} "
            "(those checks could not read their data this time)"
        )
    else:
        click.echo(f"results: {written.path}  ({time.monotonic() - t0:.1f}s)")
        if written.replaced:
            click.echo(f"  previous results kept as {written.replaced}")
    for reason in final.reasons:
        click.echo(f"  - {reason}")
    click.echo(f"verdict: {final.value.upper()}")
    sys.exit(final.exit_status)
