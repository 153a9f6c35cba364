"""``loadcheck run``: drive load at the target, then verify what happened.

Steps: resolve options (errors name the value and the fix) -> Target (local: the running stack
of ``--state-dir`` or one started for this run, with ``--fault``s set; aws: Terraform outputs +
the caller's ``--profile``) -> ``runs/<run-id>/run.json`` (status ``running``) -> Locust as subprocesses
(``python -m locust -f <--locustfile, default locustfiles/eventlog.py> --headless ...``: one process, or a master and
``--workers N``), so gevent's monkey-patching never reaches this process -> live progress from
``progress.json`` -> run.json completed with Locust's counts, dropped arrivals and workers ->
thresholds from the HDR histograms and the ledger -> checks -> reports -> faults cleared and
the stack stopped if this run started it.

``--chaos kill:gateway@10s`` SIGKILLs a service that far into the load (the load's clock); the
supervisor restarts gateway, lambda and search on their ports and records each outage, which
run.json carries (``outages``, with the requests each covered); failures inside an outage are
its own. The aws endpoint's death stops the load: its table is gone, the checks are not run and
the verdict is ``error`` ("the table was lost with the aws endpoint at T; reconciliation
impossible").

Identities, on either target (:mod:`loadcheck.core.roles`): the load is signed as the requester
role, assumed by the caller and assumed again before its session expires; the security probes'
denied request as the denied role; the checks read DynamoDB, CloudWatch Logs and metrics as the
caller. ``--profile`` names the caller on AWS (the local stack's caller is its ``loadcheck-admin``).

Ctrl-C stops the load (the master collects every worker's last ledger batch), keeps the
ledger, marks run.json ``interrupted`` and still runs the checks on what was sent; a second
Ctrl-C stops waiting.

``--run-id ID`` names the run directory (``<out>/<ID>``, never an existing one); ``<out>/latest``
points at the newest run from the moment it starts. ``--json`` prints one JSON document on stdout
at the end (docs/run-summary.schema.json, built by ``run_driver.run_summary``); everything else
goes to stderr.
Thresholds (``--threshold '[ROUTE:]METRIC<LIMIT'``, :mod:`loadcheck.core.thresholds`) are judged
after the load from the HDR histograms and the ledger. With ``--abort-on-fail`` the driver also
judges them on every progress.json and, once one can no longer pass, stops the load the way
Ctrl-C does; run.json says ``aborted`` (with the threshold and when) and the checks still run.

Exit status: 0 when every check passed (``skipped`` checks are listed, not failed) and every
threshold held; 6 (``ExitCode.ABORTED``) when ``--abort-on-fail`` stopped the load and no check
failed; 1 when a check or threshold failed, checks could not run, or the run was interrupted;
2 for bad options or an unusable target.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from checks.runner import BUDGET_ENV, BUDGET_OPTION, resolve_budget
from loadcheck.commands.run_driver import Driver
from loadcheck.commands.target_options import RESOLVE_ENV
from loadcheck.core import thresholds
from loadcheck.core.chaos import parse_chaos
from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError
from loadcheck.core.runconfig import (
    ALL_ROUTES,
    DEFAULT_DURATION_S,
    DEFAULT_RATE,
    DEFAULT_SERVER_ERROR_THRESHOLD,
    SHAPES,
    RunOptions,
    parse_duration,
    parse_fault,
    parse_fraction,
    parse_mix,
    parse_route_ms,
    parse_steps,
    parse_think_time,
)
from loadcheck.core.runids import check_run_id, refuse_existing
from loadcheck.core.state import resolve_state_dir
from loadcheck.core.thresholds import check_threshold_routes, parse_all, parse_rate_limit


def build_options(
    *,
    target: str,
    duration: str,
    rate: float | None,
    users: int | None,
    spawn_rate: float | None,
    shape: str | None,
    steps: str | None,
    step_duration: str | None,
    mix: str | None,
    workers: int,
    seed: int | None,
    faults: tuple[str, ...],
    collisions: str,
    think_time: str,
    thresholds: tuple[str, ...] = (),
    default_threshold: bool = True,
    abort_on_fail: bool = False,
    max_error_rate: str | None = None,
    max_p95_ms: tuple[str, ...] = (),
    max_server_error_rate: str | None = None,
    description: str | None = None,
    locustfile: str | None = None,
    deprecations: list[str] | None = None,
) -> RunOptions:
    """RunOptions from the command line; ``--users`` without ``--rate`` or ``--shape`` means ramp.

    The deprecated ``--max-*`` spellings become thresholds; a line for each, naming the new
    spelling, is appended to ``deprecations``."""
    if shape is None:
        shape = "step" if steps else ("ramp" if users is not None and rate is None else "constant-rate")
    if shape == "ramp" and rate is not None:
        raise ConfigError(
            f"--rate {rate:g} does not apply to --shape ramp (a closed model of users)",
            value=rate,
            hint="use --shape constant-rate --rate R, or --shape ramp --users N --spawn-rate S",
        )
    fault_map: dict[str, Any] = {}
    for f in faults:
        name, value = parse_fault(f)
        fault_map[name] = value
    return RunOptions(
        target=target,
        duration_s=parse_duration(duration),
        shape=shape,
        rate=(rate if rate is not None else DEFAULT_RATE) if shape == "constant-rate" else rate,
        users=users,
        spawn_rate=spawn_rate if spawn_rate is not None else (max(1.0, (users or 1) / 10) if shape == "ramp" else None),
        steps=parse_steps(steps) if steps else (),
        step_duration_s=parse_duration(step_duration, option="--step-duration") if step_duration else None,
        mix=parse_mix(mix) if mix else {},
        workers=workers,
        seed=seed,
        collisions=parse_fraction(collisions, option="--collisions"),
        faults=fault_map,
        thresholds=run_thresholds(
            thresholds,
            default=default_threshold,
            max_error_rate=max_error_rate,
            max_p95_ms=max_p95_ms,
            max_server_error_rate=max_server_error_rate,
            deprecations=deprecations if deprecations is not None else [],
        ),
        abort_on_fail=abort_on_fail,
        think_time_s=parse_think_time(think_time),
        description=_existing_file(description, "--description", "the stack description (stack.auto.tfvars.json)"),
        locustfile=_existing_file(locustfile, "--locustfile", "your Locust file, written on locustfiles.api"),
    )


def run_thresholds(
    values: tuple[str, ...],
    *,
    default: bool,
    max_error_rate: str | None,
    max_p95_ms: tuple[str, ...],
    max_server_error_rate: str | None,
    deprecations: list[str],
) -> tuple[str, ...]:
    """The run's thresholds, canonical text, in order: ``--threshold``s, then the deprecated
    spellings translated, then the default server-error threshold unless a threshold on
    ``server_error_rate`` for all routes replaces it or ``--no-default-threshold`` drops it."""
    out = parse_all(values)
    for v in max_p95_ms:
        route, ms = parse_route_ms(v)
        new = thresholds.from_max_p95_ms(route, ms)
        out.append(new)
        deprecations.append(f"--max-p95-ms {v!r} is deprecated: write --threshold '{new}'")
    if max_error_rate is not None:
        limit = parse_rate_limit(str(max_error_rate), value=max_error_rate, option="--max-error-rate")
        new = thresholds.from_max_rate("error_rate", limit)
        out.append(new)
        deprecations.append(f"--max-error-rate {max_error_rate} is deprecated: write --threshold '{new}'")
    if max_server_error_rate is not None:
        if str(max_server_error_rate).strip().lower() == "off":
            default = False
            deprecations.append("--max-server-error-rate off is deprecated: write --no-default-threshold")
        else:
            limit = parse_rate_limit(
                str(max_server_error_rate), value=max_server_error_rate, option="--max-server-error-rate"
            )
            new = thresholds.from_max_rate("server_error_rate", limit)
            out.append(new)
            deprecations.append(
                f"--max-server-error-rate {max_server_error_rate} is deprecated: write --threshold '{new}'"
            )
    replaced = any(t.metric == "server_error_rate" and t.route == ALL_ROUTES for t in out)
    if default and not replaced:
        out.append(thresholds.DEFAULT_SERVER_ERROR)
    return tuple(dict.fromkeys(str(t) for t in out))


def _existing_file(value: str | None, option: str, what: str) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(f"{option}: {value!r} is not a file", value=value, hint=f"pass the path of {what}")
    return str(path.resolve())


# --------------------------------------------------------------------------------------------
# The command


@click.command("run")
@click.option("--target", "target_kind", type=click.Choice(["local", "aws"]), default="local", show_default=True)
@click.option("--duration", default=f"{DEFAULT_DURATION_S:g}s", show_default=True, help="45s, 2m, 1m30s")
@click.option(
    "--rate", type=float, default=None, help=f"open model: requests/s over all workers [default {DEFAULT_RATE:g}]"
)
@click.option("--users", type=int, default=None, help="ramp: users; open model: the pool arrivals go to")
@click.option("--spawn-rate", type=float, default=None, help="ramp: users started per second")
@click.option("--shape", type=click.Choice(SHAPES), default=None, help="constant-rate (default), step, ramp")
@click.option("--steps", default=None, help="step: rates, e.g. 1,2,5,10")
@click.option("--step-duration", default=None, help="step: how long each rate holds, e.g. 10s")
@click.option(
    "--mix", default=None, help="weights of the workload's request kinds, e.g. writes=6,reads=3 [default: its own]"
)
@click.option(
    "--description",
    default=None,
    type=click.Path(dir_okay=False),
    help="stack description [default reference_stack/terraform/stack.auto.tfvars.json]: local, the stack to run; "
    "both, the routes, keys and log format the checks hold the run to",
)
@click.option(
    "--locustfile",
    default=None,
    type=click.Path(dir_okay=False),
    help="the workload: a Locust file on locustfiles.api [default locustfiles/eventlog.py]",
)
@click.option("--think-time", default="0.5-1.5", show_default=True, help="ramp: seconds between a user's requests")
@click.option("--workers", type=int, default=0, show_default=True, help="local worker processes (0: one process)")
@click.option("--master", "master_only", is_flag=True, help="multi-machine: run only the master; workers connect to it")
@click.option("--worker", "worker_only", is_flag=True, help="multi-machine: run only workers (--workers N, default 1)")
@click.option("--master-host", default=None, help="with --worker: the master's address")
@click.option("--master-port", type=int, default=5557, show_default=True)
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--state-dir", default=None, help="local stack state (default $LOADCHECK_STATE_DIR or .loadcheck)")
@click.option("--fault", "faults", multiple=True, help="NAME=VALUE, repeatable (local target)")
@click.option(
    "--chaos",
    "chaos",
    multiple=True,
    help="ACTION:TARGET@TIME, e.g. kill:gateway@10s: SIGKILL a service (aws, search, lambda, gateway) or "
    "one Lambda environment (lambda-env) that far into the load; repeatable (local target)",
)
@click.option("--seed", type=int, default=None)
@click.option(
    "--threshold",
    "threshold_exprs",
    multiple=True,
    metavar="'[ROUTE:]METRIC<LIMIT'",
    help="fail the run unless METRIC stays below LIMIT, repeatable: p50..p99.9 (any pNN[.N]) or max below a "
    "duration (300ms, 1.5s); error_rate, server_error_rate, throttle_rate below a fraction (1%, 0.01); "
    "ROUTE a route of the description or all (default), e.g. 'GET /events:p99<300ms', 'error_rate<1%' "
    f"[default {DEFAULT_SERVER_ERROR_THRESHOLD}]",
)
@click.option(
    "--no-default-threshold",
    is_flag=True,
    help=f"drop the default threshold {DEFAULT_SERVER_ERROR_THRESHOLD} (a --threshold on server_error_rate "
    "replaces it anyway)",
)
@click.option(
    "--abort-on-fail",
    is_flag=True,
    help="stop the load as soon as a threshold can no longer pass (checks still run on what was sent; exit 6)",
)
# Deprecated spellings, translated into --threshold (a note names the new spelling).
@click.option("--max-error-rate", default=None, hidden=True)
@click.option("--max-server-error-rate", default=None, hidden=True)
@click.option("--max-p95-ms", multiple=True, hidden=True)
@click.option("--collisions", default="0", show_default=True, help="fraction of writes reusing a key (expect 409)")
@click.option("--baseline", default=None, type=click.Path(), help="compare with this run or baseline afterwards")
@click.option("--tf-outputs", default=None, type=click.Path(), help="aws: `terraform output -json` saved to a file")
@click.option("--tf-dir", default=None, type=click.Path(), help="aws: run `terraform output -json` here")
@click.option(
    "--profile",
    default=None,
    help="aws: the caller's profile: it reads DynamoDB, logs and metrics and assumes the stack's "
    "requester and denied roles [default: the AWS credential chain]",
)
@click.option(
    "--resolve",
    default=None,
    envvar=RESOLVE_ENV,
    metavar="DOMAIN:PORT:ADDR",
    help="aws: connect to ADDR for the custom domain, as curl --resolve (DNS not propagated yet, or the local "
    f"stack) [env {RESOLVE_ENV}]",
)
@click.option(
    "--ca-bundle",
    default=None,
    type=click.Path(dir_okay=False),
    help="aws: PEM bundle of the CA that signed the custom domain's certificate (default $AWS_CA_BUNDLE)",
)
@click.option(
    BUDGET_OPTION,
    "check_budget",
    default=None,
    metavar="DURATION",
    help=f"time each check may wait for logs, metrics, the export and throttled reads, e.g. 90s, 2m "
    f"(default ${BUDGET_ENV}, else 60s locally, 15m on AWS)",
)
@click.option("--no-checks", is_flag=True, help="only drive load")
@click.option(
    "--run-id",
    default=None,
    metavar="ID",
    help="name of the run directory (<out>/<ID>; letters, digits, '.', '_', '-'); an existing one is refused "
    "[default: UTC time and a random suffix]",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="print one JSON document on stdout at the end (run directory, verdict, exit code, checks, thresholds; "
    "docs/run-summary.schema.json); human output goes to stderr",
)
def command(
    target_kind: str,
    duration: str,
    rate: float | None,
    users: int | None,
    spawn_rate: float | None,
    shape: str | None,
    steps: str | None,
    step_duration: str | None,
    mix: str | None,
    description: str | None,
    locustfile: str | None,
    think_time: str,
    workers: int,
    master_only: bool,
    worker_only: bool,
    master_host: str | None,
    master_port: int,
    out: str,
    state_dir: str | None,
    faults: tuple[str, ...],
    seed: int | None,
    threshold_exprs: tuple[str, ...],
    no_default_threshold: bool,
    abort_on_fail: bool,
    max_error_rate: str | None,
    max_server_error_rate: str | None,
    max_p95_ms: tuple[str, ...],
    collisions: str,
    baseline: str | None,
    tf_outputs: str | None,
    tf_dir: str | None,
    profile: str | None,
    resolve: str | None,
    ca_bundle: str | None,
    check_budget: str | None,
    no_checks: bool,
    chaos: tuple[str, ...] = (),
    run_id: str | None = None,
    as_json: bool = False,
) -> None:
    """Drive signed load at the target, then check what happened (ledger vs table, throttling, logs)."""
    if master_only and worker_only:
        raise ConfigError(
            "--master and --worker exclude each other", hint="run the master on one machine, workers on others"
        )
    if worker_only and not master_host:
        raise ConfigError("--worker needs --master-host", hint="e.g. --worker --master-host 10.0.0.5")
    if master_only and workers < 1:
        raise ConfigError(
            "--master needs --workers N (how many workers will connect)",
            value=workers,
            hint="e.g. --master --workers 4",
        )
    deprecations: list[str] = []
    opts = build_options(
        target=target_kind,
        duration=duration,
        rate=rate,
        users=users,
        spawn_rate=spawn_rate,
        shape=shape,
        steps=steps,
        step_duration=step_duration,
        mix=mix,
        workers=workers if not worker_only else 0,
        seed=seed,
        faults=faults,
        collisions=collisions,
        think_time=think_time,
        thresholds=threshold_exprs,
        default_threshold=not no_default_threshold,
        abort_on_fail=abort_on_fail,
        max_error_rate=max_error_rate,
        max_p95_ms=max_p95_ms,
        max_server_error_rate=max_server_error_rate,
        description=description,
        locustfile=locustfile,
        deprecations=deprecations,
    )
    for line in deprecations:
        click.echo(f"loadcheck: note: {line}", err=True)
    # Thresholds name routes of the stack the run is judged by.
    check_threshold_routes(
        parse_all(opts.thresholds), load_description(opts.description, aws=opts.target == "aws").routes
    )
    if opts.faults and opts.target != "local":
        raise ConfigError(
            "--fault applies to the local target only",
            value=sorted(opts.faults),
            hint="drop --fault, or use --target local",
        )
    actions = tuple(parse_chaos(c) for c in chaos)
    if actions and opts.target != "local":
        raise ConfigError("--chaos applies to the local target only", value=list(chaos), hint="use --target local")
    # Resolved now, so a bad --check-budget or $LOADCHECK_CHECK_BUDGET stops the run before any load.
    budget_s = resolve_budget(check_budget, target_kind=opts.target)
    if run_id is not None:
        if worker_only:
            raise ConfigError("--run-id does not apply to --worker", value=run_id, hint="give --run-id to the master")
        refuse_existing(Path(out), check_run_id(run_id))
    if as_json and worker_only:
        raise ConfigError("--json does not apply to --worker", hint="the master writes the run and its summary")
    role = "master" if master_only else "worker" if worker_only else "auto"
    driver = Driver(
        options=opts,
        out=Path(out),
        state_dir=resolve_state_dir(state_dir),
        role=role,
        master_host=master_host or "127.0.0.1",
        master_port=master_port,
        worker_count=max(1, workers) if worker_only else None,
        baseline=baseline,
        tf_outputs=tf_outputs,
        tf_dir=tf_dir,
        profile=profile,
        resolve=resolve,
        ca_bundle=ca_bundle,
        checks=not no_checks,
        chaos=actions,
        check_budget_s=budget_s,
        run_id=run_id,
        tty=(sys.stderr if as_json else sys.stdout).isatty(),
    )
    if not as_json:
        sys.exit(driver.run())
    with contextlib.redirect_stdout(sys.stderr):  # human output to stderr, the document alone on stdout
        code = driver.run()
    click.echo(json.dumps(driver.summary, indent=2))
    sys.exit(code)
