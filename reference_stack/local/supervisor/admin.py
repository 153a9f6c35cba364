"""The admin client of a running stack: faults, flush, prewarm, table capacity and status over
each service's ``/_loadcheck/`` paths (docs/internals.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from loadcheck.core import faults as fault_registry
from loadcheck.core.errors import ConfigError, StackError
from loadcheck.core.state import admin_headers
from reference_stack.local.supervisor.control import pid_alive, require_stack, running_stack, start_detached
from reference_stack.local.supervisor.stack import Progress, no_progress


def admin_request(
    url: str,
    method: str = "GET",
    body: Any = None,
    ca: str | None = None,
    timeout: float = 5.0,
    *,
    state_dir: Path | None = None,
) -> tuple[int, Any]:
    """One call to a service's admin path: (status, JSON body or text), with the admin token of the
    stack in ``state_dir``. The gateway's TLS is verified against the stack's CA."""
    verify: bool | str = ca if (ca and url.startswith("https")) else True
    resp = requests.request(method, url, json=body, timeout=timeout, verify=verify, headers=admin_headers(state_dir))
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def parse_faults(items: list[str] | tuple[str, ...] | dict[str, Any] | None) -> dict[str, Any]:
    """``["ddb-latency=200ms", ...]`` or ``{name: value}`` -> ``{name: canonical value or None}``.

    Parsing and validation are the fault registry's, so a bad value is refused here, before any
    process starts, with the message ``loadcheck run --fault`` gives.
    """
    if not items:
        return {}
    if isinstance(items, dict):
        return {name: fault_registry.validate(name, value) for name, value in items.items()}
    return fault_registry.parse_faults(items)


def set_faults(state_dir: Path, faults: dict[str, Any]) -> dict[str, Any]:
    """Set (value) or clear (None) faults on the services that own them; returns what each service reports.

    A service that refuses a value raises one ConfigError in the registry's words (its JSON
    reply is not shown to the user).
    """
    stack = require_stack(state_dir)
    faults = parse_faults(faults) if faults else {}
    out = {}
    for service, body in fault_registry.by_service(faults).items():
        url = stack["services"][service]["url"]
        status, reply = admin_request(
            f"{url}/_loadcheck/faults", "POST", body, ca=stack.get("ca_bundle"), state_dir=state_dir
        )
        if status != 200:
            raise _refusal(service, body, reply)
        out[service] = reply
    return out


def _refusal(service: str, body: dict[str, Any], reply: Any) -> ConfigError:
    """A service's 400 on ``/_loadcheck/faults`` as one line: what was refused, why, and the fix."""
    asked = ", ".join(fault_registry.describe_value(n, v) for n, v in body.items())
    message = reply.get("message") or reply.get("error") if isinstance(reply, dict) else None
    fix = reply.get("fix") if isinstance(reply, dict) else None
    reason = " ".join(str(message or reply).split()).removeprefix(f"fault {asked}: ")
    return ConfigError(f"the {service} service refused {asked}: {reason}", value=body, hint=fix or None)


def clear_faults(state_dir: Path) -> None:
    stack = require_stack(state_dir)
    for service, active in fault_registry.active_faults_by_service(state_dir).items():
        if active:
            url = stack["services"][service]["url"]
            admin_request(
                f"{url}/_loadcheck/faults",
                "POST",
                {k: None for k in active},
                ca=stack.get("ca_bundle"),
                state_dir=state_dir,
            )


def flush(state_dir: Path) -> None:
    """Push out buffered access logs, Lambda logs and DynamoDB metrics, in that order."""
    stack = require_stack(state_dir)
    for service in ("gateway", "lambda", "aws"):
        url = stack["services"][service]["url"]
        admin_request(f"{url}/_loadcheck/flush", "POST", {}, ca=stack.get("ca_bundle"), state_dir=state_dir, timeout=30)


def prewarm(state_dir: Path, counts: dict[str, int], *, timeout_s: float = 90.0) -> dict[str, int]:
    """Initialise ``counts[function-name]`` execution environments and wait until they are ready.

    Like provisioned concurrency: the environments' init runs before load starts, so a load
    test does not begin with N cold starts fighting for this host's few CPUs (on AWS each
    environment gets its own). Returns the number of ready environments per function.
    """
    stack = require_stack(state_dir)
    url = stack["services"]["lambda"]["url"]
    code, reply = admin_request(f"{url}/_loadcheck/prewarm", "POST", counts, timeout=30, state_dir=state_dir)
    if code != 200:
        raise StackError(f"lambda refused prewarm {counts}: {reply}", value=counts)
    deadline = time.monotonic() + timeout_s
    ready: dict[str, int] = {}
    while time.monotonic() < deadline:
        _, envs = admin_request(f"{url}/_loadcheck/environments", timeout=10, state_dir=state_dir)
        ready = {fn: sum(e["state"] == "ready" for e in envs.get(fn, {}).get("environments", [])) for fn in counts}
        if all(ready[fn] >= min(counts[fn], reply.get(fn, 0)) for fn in counts):
            return ready
        time.sleep(0.2)
    return ready


def capacity(state_dir: Path, *, timeout: float = 2.0) -> dict[str, Any]:
    """The aws service's DynamoDB bucket levels (``GET /_loadcheck/capacity``): per table name,
    ``billing_mode``, ``read_capacity_units``/``write_capacity_units``, ``read_level``/``write_level``
    (capacity units left in the burst bucket) and ``read_bucket_capacity``/``write_bucket_capacity``."""
    stack = require_stack(state_dir)
    url = stack["services"]["aws"]["url"]
    code, reply = admin_request(f"{url}/_loadcheck/capacity", timeout=timeout, state_dir=state_dir)
    if code != 200 or not isinstance(reply, dict):
        raise StackError(
            f"the aws service answered {code} to GET /_loadcheck/capacity: {reply}",
            value=code,
            hint=f"see {state_dir}/logs/aws.log; `loadcheck stack status --state-dir {state_dir}` shows its health",
        )
    return reply


def status(state_dir: Path) -> dict[str, Any]:
    """What runs and where, with each service's health."""
    stack = running_stack(state_dir)
    if not stack:
        return {"running": False, "state_dir": str(state_dir)}
    services = {}
    for name, svc in stack["services"].items():
        health = "down"
        if pid_alive(svc["pid"]):
            try:
                code, _ = admin_request(
                    f"{svc['url']}/_loadcheck/health", ca=stack.get("ca_bundle"), state_dir=state_dir, timeout=2
                )
                health = "healthy" if code == 200 else f"unhealthy ({code})"
            except Exception as exc:  # noqa: BLE001 - report, don't raise
                health = f"unreachable ({type(exc).__name__})"
        services[name] = {"url": svc["url"], "pid": svc["pid"], "health": health}
    return {"running": True, "state_dir": str(state_dir), "stack": stack, "services": services}


def ensure_stack(
    state_dir: Path,
    *,
    faults: dict[str, Any] | None = None,
    progress: Progress = no_progress,
    description: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """The running stack of ``state_dir`` (setting ``faults``), or a new detached one; (stack, started_by_us)."""
    stack = running_stack(state_dir)
    if stack:
        if faults:
            set_faults(state_dir, faults)
        return stack, False
    return start_detached(state_dir, faults=faults, progress=progress, description=description), True
