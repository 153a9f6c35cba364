"""The local stack's supervisor: starts, watches and stops the four service processes.

    loadcheck stack up            -> run_foreground(): supervise here until Ctrl-C
    loadcheck stack up --detach   -> start_detached(): a daemon (`python -m
                                     reference_stack.local.supervisor`) supervises; the
                                     command returns once every service is healthy
    loadcheck stack down          -> stop_stack(): SIGTERM the supervisor, then kill whatever
                                     is left of every service's process group

Each service runs in its own session (process group), and its children (Lambda execution
environments) stay in that group, so killing the group leaves nothing behind even when the
service itself crashed. Services also exit on their own when the supervisor dies.

Order: aws (moto + governor) -> provision table, log groups, IAM -> search -> index + corpus
-> lambda -> gateway -> stack.json. stack.json appears only once everything is healthy; it
is removed on a clean stop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadcheck import __version__
from loadcheck.core import faults as fault_registry
from loadcheck.core.description import HANDLERS_DIR, StackDescription, load_description
from loadcheck.core.errors import ConfigError, StackAlreadyRunning, StackError, StackNotRunning
from loadcheck.core.state import (
    ACCOUNT_ID,
    PROFILES,
    read_stack_json,
    stack_command,
    write_identities,
    write_json_atomic,
)
from reference_stack.local import provision

SERVICES = ("aws", "search", "lambda", "gateway")
_MODULES = {
    "aws": "reference_stack.local.aws",
    "search": "reference_stack.local.search",
    "lambda": "reference_stack.local.lambda_",
    "gateway": "reference_stack.local.gateway",
}
# Which service owns which fault: the registry's (loadcheck.core.faults, docs/load.md).
FAULT_OWNERS = {name: spec.service for name, spec in fault_registry.FAULTS.items()}
READY_TIMEOUT_S = 60.0
REPO_ROOT = Path(__file__).resolve().parents[2]

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


# ------------------------------------------------------------------------------------------
# Small process and HTTP helpers


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        import psutil

        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except Exception:  # noqa: BLE001 - psutil missing or process gone
        return True


def _admin_request(
    url: str, method: str = "GET", body: Any = None, ca: str | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    import requests

    verify: bool | str = ca if (ca and url.startswith("https")) else True
    resp = requests.request(method, url, json=body, timeout=timeout, verify=verify)
    try:
        return resp.status_code, resp.json()
    except ValueError:
        return resp.status_code, resp.text


def _service_url(name: str, port: int) -> str:
    scheme = "https" if name == "gateway" else "http"
    return f"{scheme}://127.0.0.1:{port}"


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


# ------------------------------------------------------------------------------------------


class Supervisor:
    """Owns the service processes of one state directory."""

    def __init__(
        self,
        *,
        state_dir: Path,
        description: StackDescription,
        ports: dict[str, int] | None = None,
        faults: dict[str, Any] | None = None,
        burst_start: str = "full",
        progress: Progress = _noop,
    ) -> None:
        self.state_dir = state_dir
        self.desc = description
        self.ports = {s: 0 for s in SERVICES} | (ports or {})
        self.faults = faults or {}
        self.burst_start = burst_start
        self.progress = progress
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}
        self.stack: dict[str, Any] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        sd = self.state_dir
        sd.mkdir(parents=True, exist_ok=True)
        (sd / "services").mkdir(exist_ok=True)
        (sd / "logs").mkdir(exist_ok=True)
        for stale in (sd / "services").glob("*.ready"):
            stale.unlink()
        # moto's state lives only in its process, so every start is a fresh account: the search
        # index must start empty too, or provisioning would find the previous run's index.
        shutil.rmtree(sd / "search-data", ignore_errors=True)
        desc = self.desc
        api_id = provision.new_api_id()
        default_host = f"{api_id}.execute-api.{desc.region}.amazonaws.com"
        ids = provision.make_identities(desc, api_id)
        identities_file = sd / "identities.json"
        write_identities(identities_file, ids)
        credentials_file = sd / "credentials"
        provision.write_credentials_file(credentials_file, ids, desc.region)
        tls = provision.write_tls(sd, desc.domain_name, default_host)
        common = {
            "host": "127.0.0.1",
            "parent_pid": os.getpid(),
            "region": desc.region,
            "account_id": ACCOUNT_ID,
            "identities_file": str(identities_file),
            "log_level": "INFO",
        }
        faults_for = {s: {k: v for k, v in self.faults.items() if FAULT_OWNERS[k] == s} for s in SERVICES}

        self.progress("starting aws (moto + DynamoDB capacity governor)")
        aws_url = self._start(
            "aws", common | {"burst_start": self.burst_start, "metrics_interval_s": 60, "faults": faults_for["aws"]}
        )
        provision.provision_aws(desc, aws_url, ids, api_id)
        self.progress(
            f"  table {desc.table.name} ({desc.table.billing_mode} {desc.table.read_capacity} RCU / "
            f"{desc.table.write_capacity} WCU), log groups and IAM principals created"
        )

        self.progress("starting search (OpenSearch-compatible, tantivy)")
        search_url = self._start(
            "search",
            common
            | {
                "domain_arn": desc.search_domain_arn(ACCOUNT_ID),
                "access_policy": provision.search_access_policy(desc, ids),
                "data_dir": str(sd / "search-data"),
                "faults": {},
            },
        )
        n = provision.provision_search(desc, search_url, ids)
        self.progress(f"  index {desc.search.index}: {n} documents")

        self.progress("starting lambda (Runtime API + awslambdaric environments)")
        functions = {}
        for key, fn in desc.functions.items():
            env = dict(fn.environment)
            if key == "events":
                env["TABLE_NAME"] = desc.table.name
            if key == "search":
                env["SEARCH_ENDPOINT"] = search_url
                env["SEARCH_INDEX"] = desc.search.index
            functions[fn.name] = {
                "key": key,
                "handler": fn.handler,
                "task_root": str(HANDLERS_DIR),
                "memory_mb": fn.memory_mb,
                "timeout_s": fn.timeout_s,
                "reserved_concurrency": fn.reserved_concurrency,
                "environment": env,
                "role_identity": f"{key}-role",
                "log_group": fn.log_group,
            }
        lambda_url = self._start(
            "lambda",
            common
            | {
                "aws_endpoint_url": aws_url,
                "python": sys.executable,
                "functions": functions,
                "faults": faults_for["lambda"],
            },
        )

        self.progress("starting gateway (HTTP API on the custom domain, TLS 1.2+)")
        gw_cfg = common | {
            "api_id": api_id,
            "domain": desc.domain_name,
            "cert_file": tls["cert"],
            "key_file": tls["key"],
            "ca_file": tls["ca"],
            "default_endpoint_host": default_host,
            "disable_execute_api_endpoint": desc.disable_execute_api_endpoint,
            "routes": {rk: desc.function_for_route(rk).name for rk in desc.routes},
            "lambda_endpoint": lambda_url,
            "aws_endpoint_url": aws_url,
            "throttle": {"rate_limit": desc.throttle.rate_limit, "burst_limit": desc.throttle.burst_limit},
            "route_throttle": {
                rk: {"rate_limit": t.rate_limit, "burst_limit": t.burst_limit} for rk, t in desc.route_throttle.items()
            },
            "cors": {
                "allow_origins": list(desc.cors.allow_origins),
                "allow_methods": list(desc.cors.allow_methods),
                "allow_headers": list(desc.cors.allow_headers),
                "expose_headers": list(desc.cors.expose_headers),
                "max_age": desc.cors.max_age,
                "allow_credentials": desc.cors.allow_credentials,
            },
            "access_log": {
                "log_group": desc.access_log.log_group,
                "format": desc.access_log.format,
                "batch_interval_s": 1.0,
                "delivery_delay_s": 0.0,
            },
            "payload_limit_bytes": desc.payload_limit_bytes,
            "integration_timeout_s": desc.integration_timeout_s,
            "faults": faults_for["gateway"],
        }
        gw_url = self._start("gateway", gw_cfg, ca=tls["ca"])
        gw_port = int(gw_url.rsplit(":", 1)[1])

        self.stack = {
            "version": 1,
            "loadcheck_version": __version__,
            "state_dir": str(sd),
            "region": desc.region,
            "account_id": ACCOUNT_ID,
            "api_id": api_id,
            "aws_endpoint_url": aws_url,
            "search_endpoint": search_url,
            "search_index": desc.search.index,
            "table_name": desc.table.name,
            "access_log_group": desc.access_log.log_group,
            "lambda_log_groups": {k: fn.log_group for k, fn in desc.functions.items()},
            "function_names": {k: fn.name for k, fn in desc.functions.items()},
            "credentials_file": str(credentials_file),
            "identities_file": str(identities_file),
            "profiles": dict(PROFILES),
            "ca_bundle": tls["ca"],
            "domain": desc.domain_name,
            "default_endpoint_host": default_host,
            "gateway": {
                "host": desc.domain_name,
                "port": gw_port,
                "address": "127.0.0.1",
                "url": f"https://{desc.domain_name}:{gw_port}",
            },
            "lambda_endpoint": lambda_url,
            "routes": list(desc.routes),
            "description": desc.path,
            "services": {name: {"url": self.urls[name], "pid": p.pid} for name, p in self.procs.items()},
            "supervisor_pid": os.getpid(),
            "started_at": time.time(),
            "faults": self.faults,
        }
        write_json_atomic(sd / "stack.json", self.stack)
        return self.stack

    def _start(self, name: str, config: dict[str, Any], ca: str | None = None) -> str:
        sd = self.state_dir
        ready = sd / "services" / f"{name}.ready"
        cfg_path = sd / "services" / f"{name}.json"
        write_json_atomic(
            cfg_path,
            config | {"service": name, "port": self.ports.get(name, 0), "ready_file": str(ready)},
            mode=0o600,
            sort_keys=False,  # the access-log format keeps its field order, as on AWS
        )
        log = open(sd / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        env = os.environ.copy()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(var, None)  # services use identities.json, never the user's AWS profile
        proc = subprocess.Popen(
            [sys.executable, "-m", _MODULES[name], "--config", str(cfg_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
            env=env,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise StackError(
                    f"service {name} exited with status {proc.returncode} while starting",
                    value=name,
                    hint=f"see {sd / 'logs' / (name + '.log')}:\n{_tail(sd / 'logs' / (name + '.log'))}",
                )
            if ready.is_file():
                try:
                    port = int(json.loads(ready.read_text())["port"])
                except (ValueError, KeyError):
                    port = 0
                if port:
                    url = _service_url(name, port)
                    with contextlib.suppress(Exception):
                        status, _ = _admin_request(f"{url}/_loadcheck/health", ca=ca, timeout=2)
                        if status == 200:
                            self.urls[name] = url
                            return url
            time.sleep(0.05)
        raise StackError(
            f"service {name} did not become healthy within {READY_TIMEOUT_S:.0f} s",
            value=name,
            hint=f"see {sd / 'logs' / (name + '.log')}",
        )

    def check_children(self) -> str | None:
        """Name of a service that died, if any."""
        for name, p in self.procs.items():
            if p.poll() is not None:
                return name
        return None

    def stop(self) -> None:
        """Stop every service in reverse start order, one at a time.

        The gateway and the lambda service ship their last logs to the aws endpoint while they
        shut down, so aws must outlive them: each gets SIGTERM and up to 10 s before the next
        one is asked, then its whole process group is killed.
        """
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=10)
            kill_group(p.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "stack.json").unlink()


def kill_group(pid: int) -> None:
    """SIGKILL a service's whole process group (its environments included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ------------------------------------------------------------------------------------------
# Public API used by the CLI, `loadcheck run`, checks and tests


def running_stack(state_dir: Path) -> dict[str, Any] | None:
    """stack.json if a stack runs for ``state_dir`` and its supervisor is alive, else None."""
    try:
        stack = read_stack_json(state_dir)
    except StackNotRunning:
        return None
    if not pid_alive(stack.get("supervisor_pid")):
        return None
    return stack


def _cleanup_stale(state_dir: Path) -> None:
    """A crashed supervisor may leave services and stack.json behind: remove both."""
    path = state_dir / "stack.json"
    if not path.is_file():
        return
    try:
        stack = json.loads(path.read_text())
    except ValueError:
        stack = {}
    for svc in stack.get("services", {}).values():
        kill_group(int(svc.get("pid", 0)) or -1)
    path.unlink(missing_ok=True)


def run_foreground(
    state_dir: Path,
    *,
    description: str | None = None,
    ports: dict[str, int] | None = None,
    faults: dict[str, Any] | None = None,
    burst_start: str = "full",
    progress: Progress = _noop,
    on_ready: Callable[[dict[str, Any]], None] | None = None,
) -> int:
    """Start the stack and supervise it until SIGINT/SIGTERM or a service dies. Returns an exit status."""
    if running_stack(state_dir):
        raise StackAlreadyRunning(
            f"a local stack already runs for {state_dir}",
            value=str(state_dir),
            hint=f"use it (`{stack_command('status', state_dir)}`), "
            f"or stop it with `{stack_command('down', state_dir)}`",
        )
    _cleanup_stale(state_dir)
    desc = load_description(description)
    sup = Supervisor(
        state_dir=state_dir, description=desc, ports=ports, faults=faults, burst_start=burst_start, progress=progress
    )
    stopping = {"flag": False}

    def _handler(signum: int, _frame: object) -> None:
        stopping["flag"] = True

    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    status = 0
    try:
        try:
            stack = sup.start()
        except BaseException as exc:
            (state_dir / "supervisor.error").write_text(str(exc))
            raise
        (state_dir / "supervisor.error").unlink(missing_ok=True)
        if on_ready:
            on_ready(stack)
        while not stopping["flag"]:
            dead = sup.check_children()
            if dead:
                progress(
                    f"service {dead} exited unexpectedly; stopping the stack (see {state_dir / 'logs' / (dead + '.log')})"
                )
                status = 1
                break
            time.sleep(0.2)
    finally:
        progress("stopping the local stack")
        sup.stop()
        for s, h in old.items():
            signal.signal(s, h)
    return status


def start_detached(
    state_dir: Path,
    *,
    description: str | None = None,
    ports: dict[str, int] | None = None,
    faults: dict[str, Any] | None = None,
    burst_start: str = "full",
    progress: Progress = _noop,
    timeout_s: float = 180.0,
) -> dict[str, Any]:
    """Start a supervisor daemon and return stack.json once every service is healthy."""
    if running_stack(state_dir):
        raise StackAlreadyRunning(
            f"a local stack already runs for {state_dir}",
            value=str(state_dir),
            hint=f"use it (`{stack_command('status', state_dir)}`), "
            f"or stop it with `{stack_command('down', state_dir)}`",
        )
    _cleanup_stale(state_dir)
    load_description(description)  # fail fast, in the caller's terminal, on a bad description
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "logs").mkdir(exist_ok=True)
    (state_dir / "supervisor.error").unlink(missing_ok=True)
    args = [
        sys.executable,
        "-m",
        "reference_stack.local.supervisor",
        "--state-dir",
        str(state_dir),
        "--burst-start",
        burst_start,
    ]
    if description:
        args += ["--description", str(description)]
    for name, port in (ports or {}).items():
        args += ["--port", f"{name}={port}"]
    for name, value in parse_faults(faults).items():
        if value is not None:  # a new stack has nothing to clear
            args += ["--fault", fault_registry.describe_value(name, value)]
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    log = open(state_dir / "logs" / "supervisor.log", "ab")  # noqa: SIM115 - owned by the daemon
    proc = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=str(REPO_ROOT),
        env=env,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        lines = (state_dir / "logs" / "supervisor.log").read_text(errors="replace").splitlines()
        for line in lines[seen:]:
            if line.startswith("  ") or line.startswith("starting"):
                progress(line)
        seen = len(lines)
        stack = running_stack(state_dir)
        if stack and stack.get("supervisor_pid") == proc.pid:
            return stack
        if proc.poll() is not None:
            err = state_dir / "supervisor.error"
            detail = err.read_text() if err.is_file() else _tail(state_dir / "logs" / "supervisor.log")
            raise StackError(
                f"the local stack failed to start: {detail}",
                value=str(state_dir),
                hint=f"logs are in {state_dir / 'logs'}",
            )
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    raise StackError(
        f"the local stack did not become healthy within {timeout_s:.0f} s",
        value=str(state_dir),
        hint=f"logs are in {state_dir / 'logs'}",
    )


def stop_stack(state_dir: Path, *, timeout_s: float = 60.0) -> bool:
    """Stop the stack of ``state_dir``; True if something was running. Leaves no process behind."""
    path = state_dir / "stack.json"
    if not path.is_file():
        return False
    stack = json.loads(path.read_text())
    sup_pid = stack.get("supervisor_pid")
    if pid_alive(sup_pid) and sup_pid != os.getpid():
        with contextlib.suppress(ProcessLookupError):
            os.kill(sup_pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and pid_alive(sup_pid):
            time.sleep(0.1)
        if pid_alive(sup_pid):
            kill_group(sup_pid)
    for svc in stack.get("services", {}).values():
        kill_group(int(svc.get("pid", 0)) or -1)
    path.unlink(missing_ok=True)
    return True


def ensure_stack(
    state_dir: Path, *, faults: dict[str, Any] | None = None, progress: Progress = _noop, description: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The running stack of ``state_dir`` (setting ``faults``), or a new detached one; (stack, started_by_us)."""
    stack = running_stack(state_dir)
    if stack:
        if faults:
            set_faults(state_dir, faults)
        return stack, False
    return start_detached(state_dir, faults=faults, progress=progress, description=description), True


def _require(state_dir: Path) -> dict[str, Any]:
    stack = running_stack(state_dir)
    if not stack:
        raise StackNotRunning(
            f"no local stack runs for {state_dir}",
            value=str(state_dir),
            hint=f"start one with `{stack_command('up --detach', state_dir)}`",
        )
    return stack


def set_faults(state_dir: Path, faults: dict[str, Any]) -> dict[str, Any]:
    """Set (value) or clear (None) faults on the services that own them; returns what each service reports.

    A service that refuses a value raises one ConfigError in the registry's words (its JSON
    reply is not shown to the user).
    """
    stack = _require(state_dir)
    faults = parse_faults(faults) if faults else {}
    out = {}
    for service, body in fault_registry.by_service(faults).items():
        url = stack["services"][service]["url"]
        status, reply = _admin_request(f"{url}/_loadcheck/faults", "POST", body, ca=stack.get("ca_bundle"))
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
    stack = _require(state_dir)
    for service, active in fault_registry.active_faults_by_service(state_dir).items():
        if active:
            url = stack["services"][service]["url"]
            _admin_request(f"{url}/_loadcheck/faults", "POST", {k: None for k in active}, ca=stack.get("ca_bundle"))


def flush(state_dir: Path) -> None:
    """Push out buffered access logs, Lambda logs and DynamoDB metrics, in that order."""
    stack = _require(state_dir)
    for service in ("gateway", "lambda", "aws"):
        url = stack["services"][service]["url"]
        _admin_request(f"{url}/_loadcheck/flush", "POST", {}, ca=stack.get("ca_bundle"), timeout=30)


def prewarm(state_dir: Path, counts: dict[str, int], *, timeout_s: float = 90.0) -> dict[str, int]:
    """Initialise ``counts[function-name]`` execution environments and wait until they are ready.

    Like provisioned concurrency: the environments' init runs before load starts, so a load
    test does not begin with N cold starts fighting for this host's few CPUs (on AWS each
    environment gets its own). Returns the number of ready environments per function.
    """
    stack = _require(state_dir)
    url = stack["services"]["lambda"]["url"]
    code, reply = _admin_request(f"{url}/_loadcheck/prewarm", "POST", counts, timeout=30)
    if code != 200:
        raise StackError(f"lambda refused prewarm {counts}: {reply}", value=counts)
    deadline = time.monotonic() + timeout_s
    ready: dict[str, int] = {}
    while time.monotonic() < deadline:
        _, envs = _admin_request(f"{url}/_loadcheck/environments", timeout=10)
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
                code, _ = _admin_request(f"{svc['url']}/_loadcheck/health", ca=stack.get("ca_bundle"), timeout=2)
                health = "healthy" if code == 200 else f"unhealthy ({code})"
            except Exception as exc:  # noqa: BLE001 - report, don't raise
                health = f"unreachable ({type(exc).__name__})"
        services[name] = {"url": svc["url"], "pid": svc["pid"], "health": health}
    return {"running": True, "state_dir": str(state_dir), "stack": stack, "services": services}


def main(argv: list[str] | None = None) -> int:
    """Entry of the detached supervisor daemon."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m reference_stack.local.supervisor")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--description")
    p.add_argument("--burst-start", default="full", choices=("full", "empty"))
    p.add_argument("--port", action="append", default=[])
    p.add_argument("--fault", action="append", default=[])
    a = p.parse_args(argv)
    ports = {k: int(v) for k, _, v in (x.partition("=") for x in a.port)}
    try:
        return run_foreground(
            Path(a.state_dir),
            description=a.description,
            ports=ports,
            faults=parse_faults(a.fault),
            burst_start=a.burst_start,
            progress=lambda m: print(m, flush=True),
        )
    except Exception as exc:  # noqa: BLE001 - the parent reads supervisor.error
        print(f"error: {exc}", flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
