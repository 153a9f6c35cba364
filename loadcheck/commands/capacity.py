"""``loadcheck capacity``: drive a step load, find each route's knee, recommend capacity and cost.

    loadcheck capacity [--rates 1,2,4,8] [--step-duration 20s] [--slo 'POST /events:p95<300ms' ...]
                       [--target-rate R] [--mix writes=8,reads=1,search=1] [--state-dir DIR]
                       [--region us-east-1] [--prices FILE] [--from-run RUNS/<id>]
                       [--account-concurrency N] [--write-description FILE]

Without ``--from-run`` it runs ``loadcheck run --shape step`` (the same Driver, checks off: the
planner reads the ledger only) and analyses that run; with it, it analyses an existing step run.
It writes ``capacity.json`` into the run directory and re-renders the run's reports, whose
"Capacity plan" section shows a knee plot per route and the recommendation table.

With ``--write-description FILE`` it writes a copy of the run's stack description with the
fixes of the planned limits applied (table capacity, reserved concurrency, throttles) and prints
the diff; the tracked description is never changed (:mod:`loadcheck.core.description_copy`).

Exit status: 0 when the plan was made; 2 for bad options or an unusable run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from loadcheck.commands.run_driver import Driver
from loadcheck.core import rundir
from loadcheck.core.description import DEFAULT_DESCRIPTION
from loadcheck.core.description_copy import write_copy
from loadcheck.core.errors import ConfigError, LoadcheckError
from loadcheck.core.runconfig import ALL_ROUTES, RunOptions, parse_duration, parse_mix, parse_steps
from loadcheck.core.state import resolve_state_dir, write_json_atomic
from reports.capacity import analyse_steps, parse_slo, step_plan
from reports.plan import build_plan, provisioned_of
from reports.render import render_all


def _drive(
    *, rates: tuple[float, ...], step_s: float, mix: dict[str, int], out: Path, state_dir: str | None, seed: int | None
) -> Path:
    """Run a step load with `loadcheck run`'s Driver; the new run directory."""
    opts = RunOptions(target="local", shape="step", steps=rates, step_duration_s=step_s, rate=None, mix=mix, seed=seed)
    driver = Driver(
        options=opts,
        out=out,
        state_dir=resolve_state_dir(state_dir),
        role="auto",
        master_host="127.0.0.1",
        master_port=5557,
        worker_count=None,
        baseline=None,
        tf_outputs=None,
        tf_dir=None,
        profile=None,
        checks=False,
        tty=sys.stdout.isatty(),
    )
    driver.run()  # its exit status reflects thresholds/checks, neither of which applies here
    if driver.run_dir is None or not (driver.run_dir / "run.json").is_file():
        raise LoadcheckError(
            f"the step run did not leave a run directory in {out}", value=str(out), hint="see the run's output above"
        )
    return driver.run_dir


def _print_plan(plan: dict[str, Any]) -> None:
    click.echo("")
    click.echo(f"{'route':<14} {'knee':>8}  first failing step")
    for r in plan["routes"]:
        knee = f"{r['knee_rate']:g}" if r["knee_rate"] is not None else "none"
        click.echo(f"{r['route']:<14} {knee:>8}  {r['first_failure'] or '-'}")
    rec = plan["recommendation"]
    click.echo("")
    click.echo(f"  {'limit':<48} {'need':>9} {'limit':>8}  verdict   smallest fix")
    for lim in plan.get("limits") or []:
        click.echo(
            f"  {lim['limit'][:48]:<48} {lim['need']:>9,.2f} {lim['have']:>8,.0f}  {lim['verdict']:<9} {lim['fix']}"
        )
    click.echo("")
    for k, v in rec["rows"]:
        click.echo(f"  {k}: {v}")
    cost = rec["cost"]
    click.echo(
        f"\n  monthly cost ({cost['region']}, price table of {cost['as_of']}, {cost['currency']}):"
        f"{'provisioned':>14} {'on-demand':>12}"
    )
    for row in cost["rows"]:
        click.echo(f"    {row['item'][:64]:<64} {row['provisioned']:>12,.2f} {row['on_demand']:>12,.2f}")
        if row.get("source"):
            click.echo(f"      {row.get('basis') or ''} [{row['source']}]".rstrip())
        if row.get("unconfirmed"):
            click.echo(f"      rests on unconfirmed price(s): {', '.join(row['unconfirmed'])}")
    if cost.get("excluded"):
        click.echo(f"    {cost['excluded']}")
    if cost.get("unconfirmed"):
        click.echo(f"    {cost['unconfirmed']}")
    auto = plan.get("autoscaling")
    if auto:
        cfg = auto["config"]
        click.echo(
            f"\n  auto scaling (writes): min {cfg['min']} / max {cfg['max']} WCU at {100 * cfg['target']:.0f}%: "
            f"over the step load {auto['throttled_writes']:g} write(s) throttled during scale-out "
            f"({auto['note']}); at the target rate it settles at {auto['settled_wcu']} WCU, "
            f"{auto['monthly_writes']:,.2f} {cost['currency']}/month for writes"
            + (f" (rests on unconfirmed price(s): {', '.join(auto['unconfirmed'])})" if auto.get("unconfirmed") else "")
        )
    for w in rec["warnings"]:
        click.echo(f"  WARNING: {w}")


def _write_description(plan: dict[str, Any], run: dict[str, Any], out: Path) -> None:
    """Apply the limits' fixes to a copy of the run's description and print the diff."""
    changes = [(c["path"], c["value"]) for r in plan.get("limits") or [] if (c := r.get("change"))]
    source = (run.get("options") or {}).get("description") or DEFAULT_DESCRIPTION
    diff = write_copy(source, out, changes)
    click.echo(f"\nstack description with the plan applied: {out}")
    click.echo(diff or "  (no change: every limit fits)")
    rate = plan["recommendation"]["target_rate"]
    click.echo(
        f"  verify it: loadcheck stack down; loadcheck stack up --detach --description {out}; "
        f"loadcheck run --description {out} --rate {rate:g}"
    )


@click.command("capacity")
@click.option("--rates", default="1,2,4,8", show_default=True, help="step arrival rates, req/s over all routes")
@click.option("--step-duration", default="20s", show_default=True, help="how long each rate holds")
@click.option(
    "--slo",
    "slos",
    multiple=True,
    metavar="'[ROUTE:]METRIC<LIMIT'",
    help="latency SLO, the --threshold syntax of `loadcheck run`: pNN or max below a duration, per route or "
    "all (each route), repeatable, e.g. 'POST /events:p95<300ms'",
)
@click.option(
    "--target-rate", type=float, default=None, help="plan capacity and cost for this rate (default: the top step)"
)
@click.option("--mix", default=None, help="weights of the workload's kinds [default: the workload's own]")
@click.option("--state-dir", default=None, help="local stack state (default $LOADCHECK_STATE_DIR or .loadcheck)")
@click.option("--region", default=None, help="price region (default: the run's target region)")
@click.option(
    "--prices",
    "prices_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="price table (default reports/prices.json)",
)
@click.option(
    "--from-run",
    "from_run",
    default=None,
    type=click.Path(path_type=Path),
    help="analyse this step run instead of driving one",
)
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--utilisation", type=float, default=0.7, show_default=True, help="target utilisation of provisioned capacity"
)
@click.option("--table-items", type=int, default=None, help="items in the table, to cost an unfiltered full Scan")
@click.option(
    "--account-concurrency",
    type=int,
    default=1000,
    show_default=True,
    help="the account's Lambda concurrency quota in the region (the pool unreserved functions share)",
)
@click.option(
    "--write-description",
    "write_description",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="write a copy of the stack description with the plan's fixes applied (never the tracked file)",
)
@click.option("--seed", type=int, default=None)
def command(
    rates: str,
    step_duration: str,
    slos: tuple[str, ...],
    target_rate: float | None,
    mix: str | None,
    state_dir: str | None,
    region: str | None,
    prices_path: str | None,
    from_run: Path | None,
    out: Path,
    utilisation: float,
    table_items: int | None,
    account_concurrency: int,
    write_description: Path | None,
    seed: int | None,
) -> None:
    """Find each route's knee with a step load and recommend DynamoDB capacity and cost."""
    slo_list = []
    for value in slos:
        slo, note = parse_slo(value)
        slo_list.append(slo)
        if note:
            click.echo(f"loadcheck: note: {note}", err=True)
    mix_map = parse_mix(mix) if mix else {}
    if from_run is not None:
        run_dir = rundir.run_dir_of(from_run)
        steps, _ = step_plan(rundir.read_run(run_dir))
        mix_map = mix_map or dict((rundir.read_run(run_dir).get("options") or {}).get("mix") or {})
    else:
        try:
            steps_t = parse_steps(rates)
        except ConfigError as exc:  # same rules as `loadcheck run --steps`, named as this command names them
            raise ConfigError(
                exc.message.replace("--steps", "--rates"),
                value=exc.value,
                hint=(exc.hint or "").replace("--steps", "--rates"),
            ) from None
        run_dir = _drive(
            rates=steps_t,
            step_s=parse_duration(step_duration, option="--step-duration"),
            mix=mix_map,
            out=out,
            state_dir=state_dir,
            seed=seed,
        )
        steps = list(steps_t)
    run = rundir.read_run(run_dir)
    prov = provisioned_of(run_dir)
    knees = analyse_steps(
        run_dir, slos=slo_list, provisioned_wcu=prov["wcu"] if prov["billing_mode"] == "PROVISIONED" else None
    )
    if not knees:
        raise ConfigError(
            f"{run_dir} has no requests to analyse", value=str(run_dir), hint="check the run's locust.log"
        )
    unknown = sorted({t.route for t in slo_list} - {k.route for k in knees} - {ALL_ROUTES})
    if unknown:
        raise ConfigError(
            f"--slo names route {unknown[0]!r}, which the run never sent",
            value=unknown[0],
            hint=f"routes in the run: {', '.join(k.route for k in knees)}",
        )
    plan = build_plan(
        run_dir=run_dir,
        knees=knees,
        target_rate=target_rate or max(steps),
        mix=mix_map,
        region=region or str((run.get("target") or {}).get("region") or "us-east-1"),
        prices_path=prices_path,
        utilisation=utilisation,
        table_items=table_items,
        provisioned=prov,
        account_concurrency=account_concurrency,
    )
    write_json_atomic(run_dir / "capacity.json", plan)
    _print_plan(plan)
    if write_description is not None:
        _write_description(plan, run, write_description)
    paths = render_all(run_dir)
    click.echo(f"\ncapacity plan: {run_dir / 'capacity.json'}; report: {paths[0]}")
