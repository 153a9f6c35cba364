"""The admin client of a running stack: faults, flush, prewarm and status over each service's
``/_loadcheck/`` paths (docs/internals.md)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import requests

from loadcheck.core.errors import ConfigError, StackError
from reference_stack.local.supervisor.control import pid_alive, require_stack, running_stack, start_detached
from reference_stack.local.supervisor.stack import FAULT_OWNERS, Progress, no_progress


def admin_request(
    url: str, method: str = "GET", body: Any = None, ca: str | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """One call to a service's admin path: (status, JSON body or text). The gateway's TLS is
    verified against the stack's CA."""
    verify: bool | str = ca if (ca and url.startswith("https")) else True
    resp = requests.request(method, url, json=body, timeout=timeout, verify=verify)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def parse_faults(items: list[str] | tuple[str, ...] | dict[str, Any] | None) -> dict[str, Any]:
    """``["drop-writes=0.1", ...]`` -> ``{"drop-writes": 0.1}``, naming a bad item and the fix."""
    if not items:
        return {}
    if isinstance(items, dict):
        pairs = list(items.items())
    else:
        pairs = []
        for item in items:
            if "=" not in item:
                raise ConfigError(
                    f"fault {item!r} is not NAME=VALUE",
                    value=item,
                    hint=f"e.g. --fault drop-writes=0.05; known faults: {', '.join(sorted(FAULT_OWNERS))}",
                )
            name, _, raw = item.partition("=")
            value: Any = raw
            with contextlib.suppress(ValueError):
                value = float(raw) if any(c in raw for c in ".eE") else int(raw)
            pairs.append((name.strip(), value))
    out = {}
    for name, value in pairs:
        if name not in FAULT_OWNERS:
            raise ConfigError(
                f"unknown fault {name!r}", value=name, hint=f"known faults: {', '.join(sorted(FAULT_OWNERS))}"
            )
        out[name] = value
    return out


def set_faults(state_dir: Path, faults: dict[str, Any]) -> dict[str, Any]:
    """Set (value) or clear (None) faults on the services that own them; returns what each service reports."""
    stack = require_stack(state_dir)
    faults = parse_faults(faults) if faults else {}
    by_service: dict[str, dict[str, Any]] = {}
    for name, value in faults.items():
        by_service.setdefault(FAULT_OWNERS[name], {})[name] = value
    out = {}
    for service, body in by_service.items():
        url = stack["services"][service]["url"]
        status, reply = admin_request(f"{url}/_loadcheck/faults", "POST", body, ca=stack.get("ca_bundle"))
        if status != 200:
            raise ConfigError(f"{service} refused faults {body}: {reply}", value=body)
        out[service] = reply
    return out


def clear_faults(state_dir: Path) -> None:
    stack = require_stack(state_dir)
    for service in ("aws", "lambda", "gateway"):
        url = stack["services"][service]["url"]
        status, active = admin_request(f"{url}/_loadcheck/faults", ca=stack.get("ca_bundle"))
        if status == 200 and isinstance(active, dict):
            active = active.get("faults", active)
            if active:
                admin_request(f"{url}/_loadcheck/faults", "POST", {k: None for k in active}, ca=stack.get("ca_bundle"))


def flush(state_dir: Path) -> None:
    """Push out buffered access logs, Lambda logs and DynamoDB metrics, in that order."""
    stack = require_stack(state_dir)
    for service in ("gateway", "lambda", "aws"):
        url = stack["services"][service]["url"]
        admin_request(f"{url}/_loadcheck/flush", "POST", {}, ca=stack.get("ca_bundle"), timeout=30)


def prewarm(state_dir: Path, counts: dict[str, int], *, timeout_s: float = 90.0) -> dict[str, int]:
    """Initialise ``counts[function-name]`` execution environments and wait until they are ready.

    Like provisioned concurrency: the environments' init runs before load starts, so a load
    test does not begin with N cold starts fighting for this host's few CPUs (on AWS each
    environment gets its own). Returns the number of ready environments per function.
    """
    stack = require_stack(state_dir)
    url = stack["services"]["lambda"]["url"]
    code, reply = admin_request(f"{url}/_loadcheck/prewarm", "POST", counts, timeout=30)
    if code != 200:
        raise StackError(f"lambda refused prewarm {counts}: {reply}", value=counts)
    deadline = time.monotonic() + timeout_s
    ready: dict[str, int] = {}
    while time.monotonic() < deadline:
        _, envs = admin_request(f"{url}/_loadcheck/environments", timeout=10)
        ready = {fn: sum(e["state"] == "ready" for e in envs.get(fn, {}).get("environments", [])) for fn in counts}
        if all(ready[fn] >= min(counts[fn], reply.get(fn, 0)) for fn in counts):
            return ready
        time.sleep(0.2)
    return ready


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
                code, _ = admin_request(f"{svc['url']}/_loadcheck/health", ca=stack.get("ca_bundle"), timeout=2)
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
