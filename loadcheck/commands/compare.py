"""``loadcheck compare BASELINE CURRENT``: per-route rps, error rate, p50/p95/p99 and check changes.

BASELINE and CURRENT are run directories or saved baselines (``loadcheck baseline save``).

``--max-regression`` budgets use the threshold syntax of ``loadcheck run --threshold`` with a
change as the limit (``'GET /events:p99<10%'``, ``'error_rate<0.5pp'``); ``--max-p95-regression``
and ``--max-error-rate-increase`` are the two budgets on by default, for every route.

Exit status (docs/cli.md): 0 when every budget held; 3 when a budget is broken (a significant
p95 regression whose lower confidence bound exceeds the budget, an error-rate increase, or with
--fail-on-check-regression a check that passed before and does not now); 2 for bad options,
including runs of different targets, mixes or shapes without --force; 4 when a run directory or
baseline is unreadable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from loadcheck.core.errors import ConfigError, ExitCode
from reports.compare import Budgets, compare_runs, parse_percent, parse_pp, parse_regression, render_comparison


@click.command("compare")
@click.argument("baseline", type=click.Path(path_type=Path))
@click.argument("current", type=click.Path(path_type=Path))
@click.option(
    "--max-p95-regression",
    default="10%",
    show_default=True,
    help="fail when a route's p95 rises by more than this (10% or 0.10; 'off' disables)",
)
@click.option(
    "--max-error-rate-increase",
    default="0.5pp",
    show_default=True,
    help="fail when a route's error rate rises by more than this (0.5pp or 0.005; 'off' disables)",
)
@click.option(
    "--max-regression",
    "regressions",
    multiple=True,
    metavar="'[ROUTE:]METRIC<LIMIT'",
    help="budget in the --threshold syntax with a change as the limit, repeatable: pNN rising by at most a "
    "relative LIMIT (p99<10%), error_rate by percentage points (error_rate<0.5pp); no ROUTE: every route",
)
@click.option("--fail-on-check-regression", is_flag=True, help="fail when a check passed in the baseline and not now")
@click.option(
    "--min-requests",
    type=int,
    default=20,
    show_default=True,
    help="judge budgets only on routes with at least this many requests on both sides",
)
@click.option(
    "--confidence",
    default="95%",
    show_default=True,
    help="confidence of each end of a latency change's interval (a p95 budget breaks only beyond it)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "markdown", "json"]),
    default="table",
    show_default=True,
    help="table for a terminal, markdown for a pull request, json for a program (on stdout)",
)
@click.option(
    "--json", "as_json", is_flag=True, help="print the comparison as one JSON document on stdout (--format json)"
)
@click.option("--force", is_flag=True, help="compare runs of different targets, mixes or shapes (the output says so)")
def command(
    baseline: Path,
    current: Path,
    max_p95_regression: str,
    max_error_rate_increase: str,
    regressions: tuple[str, ...],
    fail_on_check_regression: bool,
    min_requests: int,
    confidence: str,
    fmt: str,
    force: bool,
    as_json: bool = False,
) -> None:
    """Judge CURRENT against BASELINE; exit 3 when a budget is broken."""
    if as_json:
        if fmt not in ("table", "json"):
            raise ConfigError(
                f"--json and --format {fmt} ask for two outputs",
                value=fmt,
                hint="drop one: --json prints the same document as --format json",
            )
        fmt = "json"
    off = ("off", "none", "")
    level = parse_percent(confidence, option="--confidence")
    if not 0.5 <= level < 1.0:
        raise ConfigError(
            f"--confidence: {confidence!r} must be from 50% up to (not including) 100%",
            value=confidence,
            hint="e.g. --confidence 95% (99% judges fewer changes significant)",
        )
    budgets = Budgets(
        max_p95_regression=None
        if max_p95_regression.lower() in off
        else parse_percent(max_p95_regression, option="--max-p95-regression"),
        max_error_rate_increase=None
        if max_error_rate_increase.lower() in off
        else parse_pp(max_error_rate_increase, option="--max-error-rate-increase"),
        fail_on_check_regression=fail_on_check_regression,
        min_requests=max(1, min_requests),
        confidence=level,
        regressions=tuple(str(parse_regression(r)) for r in regressions),
    )
    cmp = compare_runs(baseline, current, budgets, force=force)
    click.echo(render_comparison(cmp, fmt), nl=False)
    if cmp.broken:
        sys.exit(ExitCode.THRESHOLD_FAILED)
