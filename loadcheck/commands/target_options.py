"""The target options of ``loadcheck corpus load`` and ``loadcheck smoke`` (as ``loadcheck run``
spells them), and the Target they name.

``--target local`` is the running local stack of ``--state-dir``; ``--target aws`` is the
reference stack's Terraform outputs (``--tf-outputs FILE`` or ``--tf-dir``, where ``terraform
output -json`` runs) with the caller's ``--profile``, ``--ca-bundle`` (or ``$AWS_CA_BUNDLE``) and
``--resolve``; boto3 reaches ``$AWS_ENDPOINT_URL`` when it is set, so ``--target aws`` also runs
against ``loadcheck stack outputs`` of the local stack.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from loadcheck.commands.run_rules import refuse_target_options
from loadcheck.core.aws_target import load_tf_outputs, target_from_tf_outputs
from loadcheck.core.state import read_stack_json, resolve_state_dir
from loadcheck.core.target import Target
from loadcheck.params import state_dir_option

F = TypeVar("F", bound=Callable[..., Any])
RESOLVE_ENV = "LOADCHECK_RESOLVE"  # `loadcheck stack env` sets it to the local gateway
TF_DIR = Path(__file__).resolve().parents[2] / "reference_stack" / "terraform"

_OPTIONS = (
    click.option(
        "--target",
        "target_kind",
        type=click.Choice(["local", "aws"]),
        default="local",
        show_default=True,
        help="local: the running local stack of --state-dir; aws: the stack of the Terraform outputs",
    ),
    state_dir_option,
    click.option("--tf-outputs", default=None, type=click.Path(), help="aws: `terraform output -json` saved to a file"),
    click.option("--tf-dir", default=None, type=click.Path(), help="aws: run `terraform output -json` here"),
    click.option(
        "--profile",
        default=None,
        help="aws: the caller's AWS profile, which assumes the stack's roles [default: the AWS credential chain]",
    ),
    click.option(
        "--resolve",
        default=None,
        envvar=RESOLVE_ENV,
        metavar="DOMAIN:PORT:ADDR",
        help=f"aws: connect to ADDR for the custom domain, as curl --resolve [env {RESOLVE_ENV}]",
    ),
    click.option(
        "--ca-bundle",
        default=None,
        type=click.Path(dir_okay=False),
        help="aws: PEM bundle of the CA that signed the custom domain's certificate (default $AWS_CA_BUNDLE)",
    ),
)


def target_options(fn: F) -> F:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def build_target(
    *,
    target_kind: str,
    state_dir: str | None,
    tf_outputs: str | None,
    tf_dir: str | None,
    profile: str | None,
    resolve: str | None,
    ca_bundle: str | None,
) -> Target:
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        refuse_target_options(ctx)
    if target_kind == "local":
        sd = resolve_state_dir(state_dir)
        return Target.from_stack_json(read_stack_json(sd), sd)
    if tf_outputs is None and tf_dir is None:
        tf_dir = str(TF_DIR)
    return Target.from_tf_outputs(
        target_from_tf_outputs(load_tf_outputs(tf_outputs, tf_dir)),
        profile=profile,
        ca_bundle=ca_bundle,
        resolve=resolve,
    )
