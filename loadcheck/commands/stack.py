"""``loadcheck stack up | down | status | env | outputs | fault | flush``: the local stack."""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any

import click

from loadcheck.core import faults as fault_registry
from loadcheck.core.aws_target import tf_outputs_from_stack
from loadcheck.core.errors import ConfigError, ExitCode, StackNotRunning
from loadcheck.core.state import PROFILES, resolve_state_dir, stack_command
from loadcheck.core.target import Target
from loadcheck.params import state_dir_option
from reference_stack.local import supervisor


def _renamed_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise ConfigError(
            f"--profile {value!r}: `stack env` names an identity with --identity (--profile is only ever an AWS profile)",
            value=value,
            hint=f"use --identity {value}" if value in PROFILES else f"use --identity, one of {', '.join(PROFILES)}",
        )


def _ports(items: tuple[str, ...]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in supervisor.SERVICES or not raw.isdigit() or not 0 <= int(raw) <= 65535:
            raise ConfigError(
                f"--port {item!r} is not SERVICE=PORT",
                value=item,
                hint=f"services: {', '.join(supervisor.SERVICES)}; e.g. --port gateway=8443 (0 = any free port)",
            )
        out[name] = int(raw)
    return out


def curl_example(stack: dict[str, Any]) -> str:
    gw = stack["gateway"]
    return (
        f'eval "$(loadcheck stack env --keys --state-dir {shlex.quote(stack["state_dir"])})"\n'
        f'curl --aws-sigv4 "aws:amz:{stack["region"]}:execute-api" '
        f'--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN" \\\n'
        f"     --cacert {shlex.quote(stack['ca_bundle'])} --resolve {gw['host']}:{gw['port']}:127.0.0.1 \\\n"
        f'     "{gw["url"]}/events?date=2026-01-01"'
    )


def describe(stack: dict[str, Any]) -> str:
    lines = [
        f"local stack ready (state in {stack['state_dir']})",
        f"  API (custom domain)  {stack['gateway']['url']}  -> 127.0.0.1:{stack['gateway']['port']}",
        f"  AWS endpoint         {stack['aws_endpoint_url']}  (DynamoDB {stack['table_name']}, CloudWatch, IAM)",
        f"  search endpoint      {stack['search_endpoint']}  (index {stack['search_index']})",
        f"  access logs          {stack['access_log_group']}",
        f"  credentials          {stack['credentials_file']}  (profiles: {', '.join(stack['profiles'].values())})",
        f"  CA bundle            {stack['ca_bundle']}",
        "",
        "try it:",
        curl_example(stack),
    ]
    return "\n".join(lines)


def fault_lines(by_service: dict[str, dict[str, Any]]) -> list[str]:
    """``aws      ddb-latency=200ms drop-writes=0.5`` per service with active faults; ``none`` if none."""
    lines = [
        f"{service:<8} " + " ".join(fault_registry.describe_value(n, v) for n, v in sorted(active.items()))
        for service, active in by_service.items()
        if active
    ]
    return lines or ["none"]


@click.group(name="stack")
def command() -> None:
    """Start, stop and inspect the local emulation of the reference stack (127.0.0.1 only)."""


@command.command()
@state_dir_option
@click.option("--detach", is_flag=True, help="Return once healthy and leave the stack running.")
@click.option(
    "--description",
    type=click.Path(dir_okay=False),
    default=None,
    help="Stack description [default reference_stack/terraform/stack.auto.tfvars.json]",
)
@click.option("--port", "ports", multiple=True, metavar="SERVICE=PORT", help="Fixed port for a service (repeatable).")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME=VALUE",
    help=f"Fault to inject from the start (repeatable); names: {', '.join(fault_registry.FAULTS)} (docs/load.md).",
)
@click.option(
    "--burst-start",
    type=click.Choice(["full", "empty"]),
    default="full",
    show_default=True,
    help="DynamoDB burst bucket at start: full (an idle table's 300 s) or empty.",
)
@click.option(
    "--no-corpus",
    is_flag=True,
    help="Leave the search index to `loadcheck corpus load`, as after `terraform apply` on AWS.",
)
def up(
    state_dir: str | None,
    detach: bool,
    description: str | None,
    ports: tuple[str, ...],
    faults: tuple[str, ...],
    burst_start: str,
    no_corpus: bool,
) -> None:
    """Provision and start the local stack; stay in the foreground until Ctrl-C unless --detach."""
    sd = resolve_state_dir(state_dir)
    fault_map = supervisor.parse_faults(list(faults))
    common: dict[str, Any] = {
        "description": description,
        "ports": _ports(ports),
        "faults": fault_map,
        "burst_start": burst_start,
        "progress": click.echo,
        "load_corpus": not no_corpus,
    }
    if detach:
        stack = supervisor.start_detached(sd, **common)
        click.echo(describe(stack))
        click.echo(f"\nrunning in the background; stop it with `{stack_command('down', state_dir)}`")
        return

    def ready(stack: dict[str, Any]) -> None:
        click.echo(describe(stack))
        click.echo("\nrunning; press Ctrl-C to stop")

    # Ctrl-C is how a foreground stack is stopped (0); a service that died for good is 5.
    status = supervisor.run_foreground(sd, on_ready=ready, **common)
    sys.exit(ExitCode.TARGET_UNUSABLE if status else ExitCode.PASSED)


@command.command()
@state_dir_option
def down(state_dir: str | None) -> None:
    """Stop every process the local stack started."""
    sd = resolve_state_dir(state_dir)
    if supervisor.stop_stack(sd):
        click.echo(f"local stack in {sd} stopped")
    else:
        click.echo(f"no local stack runs for {sd}")


@command.command()
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print status as JSON.")
def status(state_dir: str | None, as_json: bool) -> None:
    """Say what runs and where. Exit status 0 when running and healthy, 5 when not running or unhealthy."""
    sd = resolve_state_dir(state_dir)
    st = supervisor.status(sd)
    active = fault_registry.active_faults_by_service(sd) if st["running"] else {}
    if as_json:
        doc = {k: v for k, v in st.items() if k != "stack"} | {"faults": active, "stack": st.get("stack")}
        click.echo(json.dumps(doc, indent=2))
    elif not st["running"]:
        click.echo(f"no local stack runs for {sd}")
    else:
        click.echo(f"local stack running (state in {sd}, supervisor pid {st['stack']['supervisor_pid']})")
        for name, svc in st["services"].items():
            click.echo(f"  {name:<8} {svc['health']:<10} pid {svc['pid']:<7} {svc['url']}")
        click.echo(f"  API      {st['stack']['gateway']['url']} -> 127.0.0.1:{st['stack']['gateway']['port']}")
        lines = fault_lines(active)
        click.echo(f"  faults   {lines[0]}")
        for line in lines[1:]:
            click.echo(f"           {line}")
    if not st["running"] or any(s["health"] != "healthy" for s in st["services"].values()):
        sys.exit(ExitCode.TARGET_UNUSABLE)


def _running(state_dir: str | None) -> dict[str, Any]:
    sd = resolve_state_dir(state_dir)
    stack = supervisor.running_stack(sd)
    if not stack:
        raise StackNotRunning(
            f"no local stack runs for {sd}",
            value=str(sd),
            hint=f"start one with `{stack_command('up --detach', state_dir)}`",
        )
    return stack


@command.command()
@state_dir_option
@click.option(
    "--identity",
    type=click.Choice(list(PROFILES)),
    default="admin",
    show_default=True,
    help="Which identity AWS_PROFILE names: admin (the caller, with keys) or a role it assumes.",
)
@click.option("--profile", hidden=True, expose_value=False, callback=_renamed_profile, help="renamed --identity")
@click.option(
    "--keys",
    is_flag=True,
    help="Also export a requester role session's keys and token as AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/"
    "AWS_SESSION_TOKEN (for curl --aws-sigv4; valid for an hour).",
)
def env(state_dir: str | None, identity: str, keys: bool) -> None:
    """Print export lines so the aws CLI, boto3 or curl can use the stack: eval "$(loadcheck stack env)"."""
    stack = _running(state_dir)
    q = shlex.quote
    lines = {
        "AWS_ENDPOINT_URL": stack["aws_endpoint_url"],
        "AWS_SHARED_CREDENTIALS_FILE": stack["credentials_file"],
        "AWS_PROFILE": stack["profiles"][identity],
        "AWS_DEFAULT_REGION": stack["region"],
        "AWS_REGION": stack["region"],
        "AWS_CA_BUNDLE": stack["ca_bundle"],
        "LOADCHECK_API_URL": stack["gateway"]["url"],
        "LOADCHECK_RESOLVE": f"{stack['gateway']['host']}:{stack['gateway']['port']}:127.0.0.1",
        "LOADCHECK_SEARCH_ENDPOINT": stack["search_endpoint"],
    }
    if keys:
        creds = Target.from_stack_json(stack).credentials("requester")
        lines["AWS_ACCESS_KEY_ID"] = creds.access_key
        lines["AWS_SECRET_ACCESS_KEY"] = creds.secret_key
        lines["AWS_SESSION_TOKEN"] = creds.token or ""
    for k, v in lines.items():
        click.echo(f"export {k}={q(str(v))}")


@command.command()
@state_dir_option
def outputs(state_dir: str | None) -> None:
    """Print the running stack as `terraform output -json` prints reference_stack/terraform's outputs.

    With it, the AWS code path runs against the emulation:

    \b
      loadcheck stack outputs > outputs.json
      eval "$(loadcheck stack env)"   # AWS_ENDPOINT_URL, AWS_CA_BUNDLE, the caller's profile
      loadcheck run --target aws --tf-outputs outputs.json --profile loadcheck-admin \\
          --resolve DOMAIN:PORT:127.0.0.1
    """
    click.echo(json.dumps(tf_outputs_from_stack(_running(state_dir)), indent=2, sort_keys=True))


@command.command()
@state_dir_option
@click.argument("faults", nargs=-1, metavar="NAME=VALUE...")
@click.option("--clear", is_flag=True, help="Clear every active fault.")
def fault(state_dir: str | None, faults: tuple[str, ...], clear: bool) -> None:
    """Set faults on the running stack (NAME=VALUE; VALUE 'off' clears one), or --clear them all."""
    sd = resolve_state_dir(state_dir)
    if clear:
        supervisor.clear_faults(sd)
        click.echo("all faults cleared")
        return
    if not faults:
        raise ConfigError(
            "name at least one fault, or --clear",
            hint=f"e.g. `{stack_command('fault ddb-latency=200ms', state_dir)}`; "
            f"known faults: {', '.join(fault_registry.FAULTS)} (docs/load.md)",
        )
    parsed = fault_registry.parse_faults(faults, option="loadcheck stack fault")
    supervisor.set_faults(sd, parsed)
    click.echo("active faults:")
    for line in fault_lines(fault_registry.active_faults_by_service(sd)):
        click.echo(f"  {line}")


@command.command()
@state_dir_option
def flush(state_dir: str | None) -> None:
    """Push out buffered access logs, Lambda logs and DynamoDB metrics now."""
    supervisor.flush(resolve_state_dir(state_dir))
    click.echo("flushed")
