"""Which of ``loadcheck run``'s options apply to which shape, target and role.

An option the user set (on the command line, in the environment or a configuration file:
:func:`loadcheck.params.given`) that the chosen shape or target would ignore is an
error that says so (exit 2), before anything starts::

    --duration                      constant-rate and ramp (step: the steps' plan sets the length)
    --steps, --step-duration        step;  --rate: not step (its rates are --steps)
    --think-time, --spawn-rate      ramp (the closed model; arrivals set the pace in the open one)
    --fault, --chaos                the local target
    --tf-outputs, --tf-dir, --profile, --resolve, --ca-bundle   the aws target (also smoke, corpus load)
    --master-host                   --worker;  --master-port: --master or --worker
    --check-budget                  with checks (not --no-checks)

``--resolve`` counts as set on the local target only from the command line: its environment
variable is what ``eval "$(loadcheck stack env)"`` exports for the aws path of the local stack.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from loadcheck.params import refuse_unless

AWS_ONLY = ("tf_outputs", "tf_dir", "profile", "ca_bundle")


def refuse_target_options(ctx: click.Context) -> None:
    """The aws target's options are errors with ``--target local`` (run, smoke, corpus load)."""
    if ctx.params.get("target_kind") != "local":
        return
    refuse_unless(
        ctx,
        AWS_ONLY,
        applies=False,
        why="to --target local: it names the aws target's outputs, caller or certificate",
        hint="drop {option}, or add --target aws",
    )
    if ctx.params.get("resolve") and ctx.get_parameter_source("resolve") == ParameterSource.COMMANDLINE:
        refuse_unless(
            ctx,
            ["resolve"],
            applies=False,
            why="to --target local: the local stack is reached on 127.0.0.1 already",
            hint="drop {option}, or add --target aws",
        )


def refuse_inapplicable(ctx: click.Context, *, shape: str) -> None:
    """Raise ConfigError for the first option set that does not apply to this run."""
    p = ctx.params
    refuse_unless(
        ctx,
        ["duration"],
        applies=shape != "step",
        why="to --shape step: the steps' plan sets the length (steps x --step-duration)",
        hint="drop {option}; the load runs len(--steps) x --step-duration",
    )
    refuse_unless(
        ctx,
        ["steps", "rates_alias", "step_duration"],
        applies=shape == "step",
        why=f"to --shape {shape}: it is a step load's",
        hint="drop {option}, or use --shape step --steps 1,2,5 --step-duration 10s",
    )
    refuse_unless(
        ctx,
        ["rate"],
        applies=shape != "step",
        why="to --shape step: a step load's rates are --steps",
        hint="drop {option}, or use --shape constant-rate --rate R",
    )
    refuse_unless(
        ctx,
        ["think_time", "spawn_rate"],
        applies=shape == "ramp",
        why=f"to --shape {shape}, an open model: arrivals set the pace, not users",
        hint="drop {option}, or use --shape ramp --users N (a closed model of users)",
    )
    refuse_target_options(ctx)
    refuse_unless(
        ctx,
        ["master_host"],
        applies=bool(p.get("worker_only")),
        why="without --worker: only workers connect to a master",
        hint="drop {option}, or add --worker",
    )
    refuse_unless(
        ctx,
        ["master_port"],
        applies=bool(p.get("worker_only") or p.get("master_only")),
        why="without --master or --worker: a one-machine run picks a free port itself",
        hint="drop {option}, or add --master or --worker",
    )
    refuse_unless(
        ctx,
        ["check_budget"],
        applies=not p.get("no_checks"),
        why="with --no-checks: no check runs",
        hint="drop {option} or --no-checks",
    )
