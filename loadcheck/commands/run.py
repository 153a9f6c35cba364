"""``loadcheck run``: drive load at the target, then verify what happened.

Steps: resolve options (errors name the value and the fix) -> Target (local: the running stack
of ``--state-dir`` or one started for this run, with ``--fault``s set; aws: Terraform outputs +
your profile) -> ``runs/<run-id>/run.json`` (status ``running``) -> Locust as subprocesses
(``python -m locust -f locustfiles/eventlog.py --headless ...``: one process, or a master and
``--workers N``), so gevent's monkey-patching never reaches this process -> live progress from
``progress.json`` -> run.json completed with Locust's counts, dropped arrivals and workers ->
thresholds from the HDR histograms and the ledger -> checks -> reports -> faults cleared and
the stack stopped if this run started it.

Ctrl-C stops the load (the master collects every worker's last ledger batch), keeps the
ledger, marks run.json ``interrupted`` and still runs the checks on what was sent; a second
Ctrl-C stops waiting.

Exit status: 0 when every check passed (``skipped`` checks are listed, not failed) and every
threshold held; 1 when a check or threshold failed, checks could not run, or the run was
interrupted; 2 for bad options or an unusable target.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click

from loadcheck.core.errors import ConfigError, LoadcheckError
from loadcheck.core.runconfig import (
    DEFAULT_DURATION_S,
    DEFAULT_MAX_SERVER_ERROR_RATE,
    DEFAULT_RATE,
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
from loadcheck.core.state import resolve_state_dir

EVENTLOG = Path(__file__).resolve().parents[2] / "locustfiles" / "eventlog.py"
RUN_SCHEMA_VERSION = 1
GRACE_S = 60.0  # after the run time: stop timeout + the final drain from workers
# Open model: the arrival schedule ends the run after --duration from its first arrival;
# Locust's --run-time is only a safety net this far above it.
RUN_TIME_SLACK_S = 30.0


def new_run_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).isoformat(timespec="milliseconds")


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("loadcheck", "locust", "botocore", "hdrhistogram"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


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
    mix: str,
    workers: int,
    seed: int | None,
    faults: tuple[str, ...],
    max_error_rate: str | None,
    max_p95_ms: tuple[str, ...],
    collisions: str,
    think_time: str,
    max_server_error_rate: str | None = str(DEFAULT_MAX_SERVER_ERROR_RATE),
) -> RunOptions:
    """RunOptions from the command line; ``--users`` without ``--rate`` or ``--shape`` means ramp."""
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
        mix=parse_mix(mix),
        workers=workers,
        seed=seed,
        collisions=parse_fraction(collisions, option="--collisions"),
        faults=fault_map,
        max_error_rate=parse_fraction(max_error_rate, option="--max-error-rate")
        if max_error_rate is not None
        else None,
        max_p95_ms=dict(parse_route_ms(v) for v in max_p95_ms),
        think_time_s=parse_think_time(think_time),
        max_server_error_rate=None
        if max_server_error_rate in (None, "off")
        else parse_fraction(max_server_error_rate, option="--max-server-error-rate"),
    )


# --------------------------------------------------------------------------------------------
# Target


def local_target(state_dir: Path, faults: dict[str, Any], say: Any) -> tuple[Any, bool]:
    from loadcheck.core.target import Target

    try:
        from reference_stack.local import supervisor
    except ModuleNotFoundError as exc:
        raise LoadcheckError(
            "the local stack is not built yet (reference_stack/local/supervisor/)",
            value=str(exc),
            hint="use --target aws, or wait for the local stack",
        ) from exc
    say(f"local stack: {state_dir}")
    stack, started = supervisor.ensure_stack(state_dir, faults=faults or None, progress=say)
    say("local stack: started for this run" if started else "local stack: already running, reused")
    return Target.from_stack_json(stack, state_dir), started


def aws_target(tf_outputs: str | None, tf_dir: str | None, profile: str | None) -> Any:
    from loadcheck.core.aws_target import load_tf_outputs, target_from_tf_outputs
    from loadcheck.core.target import Target

    if tf_outputs is None and tf_dir is None:
        tf_dir = str(Path(__file__).resolve().parents[2] / "reference_stack" / "terraform")
    return Target.from_tf_outputs(target_from_tf_outputs(load_tf_outputs(tf_outputs, tf_dir)), profile=profile)


# --------------------------------------------------------------------------------------------
# Locust processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def locust_commands(
    opts: RunOptions,
    *,
    cfg_path: Path,
    run_dir: Path,
    url: str,
    master_port: int,
    role: str = "auto",
    master_host: str = "127.0.0.1",
    worker_count: int | None = None,
) -> dict[str, Any]:
    """``{"main": argv or None, "workers": [argv, ...]}`` for the run's Locust processes."""
    base = [sys.executable, "-m", "locust", "-f", str(EVENTLOG), "--loadcheck-config", str(cfg_path)]
    if opts.open_model:
        users = opts.pool_size()
        spawn = float(min(users, 100))
    else:
        users, spawn = int(opts.users or 1), float(opts.spawn_rate or 1)
    main = base + [
        "--host",
        url,
        "--headless",
        "-u",
        str(users),
        "-r",
        f"{spawn:g}",
        "-t",
        f"{math.ceil(opts.total_duration_s + (RUN_TIME_SLACK_S if opts.open_model else 0))}s",
        "--stop-timeout",
        f"{opts.request_timeout_s + 5:g}",
        "--only-summary",
        "--csv",
        str(run_dir / "locust"),
    ]
    n = opts.workers if worker_count is None else worker_count
    workers = [base + ["--worker", "--master-host", master_host, "--master-port", str(master_port)] for _ in range(n)]
    if role == "worker":
        return {"main": None, "workers": workers}
    if n:
        main += ["--master", "--expect-workers", str(n), "--master-bind-port", str(master_port)]
        if role == "auto":
            main += ["--master-bind-host", "127.0.0.1"]
    if role == "master":
        workers = []
    return {"main": main, "workers": workers}


def start(argv: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    # Own session: a terminal Ctrl-C reaches only this CLI, which then stops the load in order.
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.getcwd(),
        )


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def wait_all(procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Progress, thresholds, summary


def render_progress(p: dict[str, Any]) -> str:
    p95 = f"{p['p95_ms']:.0f} ms" if p.get("p95_ms") is not None else "-"
    total = p.get("duration_s") or 0
    return (
        f"[{p.get('elapsed_s', 0):5.0f}/{total:.0f}s] {p.get('rps', 0):6.1f} req/s  requests {p.get('requests', 0)}  "
        f"errors {p.get('errors', 0)}  429s {p.get('throttled', 0)}  p95 {p95}  dropped {p.get('dropped_arrivals', 0)}"
    )


def ledger_summary(run_dir: Path) -> dict[str, Any]:
    """Per-route status counts from the ledger; errors exclude the 409s of forced collisions."""
    from loadcheck.core.ledger import read_ledger

    routes: dict[str, dict[str, Any]] = {}
    total = errors = server_errors = 0
    try:
        for rec in read_ledger(run_dir):
            r = routes.setdefault(rec["route"], {"requests": 0, "status": {}})
            key = str(rec["status"]) if rec["status"] else (rec.get("error") or "no_status")
            r["requests"] += 1
            r["status"][key] = r["status"].get(key, 0) + 1
            total += 1
            ok = 200 <= rec["status"] < 300 or (rec["status"] == 409 and rec.get("collision"))
            errors += 0 if ok else 1
            server_errors += 1 if (not rec["status"] or rec["status"] >= 500) else 0
    except LoadcheckError:
        pass  # no ledger: nothing was sent
    return {"routes": routes, "requests": total, "errors": errors, "server_errors": server_errors}


def evaluate_thresholds(opts: RunOptions, run_dir: Path, summary: dict[str, Any]) -> list[dict[str, Any]]:
    from loadcheck.core import histograms

    out: list[dict[str, Any]] = []
    if opts.max_server_error_rate is not None:
        rate = summary.get("server_errors", 0) / summary["requests"] if summary["requests"] else 0.0
        out.append(
            {
                "name": "server error rate (5xx and no response)",
                "limit": opts.max_server_error_rate,
                "actual": round(rate, 4),
                "passed": summary["requests"] > 0 and rate <= opts.max_server_error_rate,
            }
        )
    if opts.max_error_rate is not None:
        rate = summary["errors"] / summary["requests"] if summary["requests"] else 0.0
        out.append(
            {
                "name": "error rate",
                "limit": opts.max_error_rate,
                "actual": round(rate, 4),
                "passed": summary["requests"] > 0 and rate <= opts.max_error_rate,
            }
        )
    if opts.max_p95_ms:
        try:
            hist = histograms.load(run_dir)
        except LoadcheckError as exc:
            return out + [
                {"name": f"p95 {r}", "limit": ms, "actual": None, "passed": False, "reason": str(exc)}
                for r, ms in opts.max_p95_ms.items()
            ]
        for route, limit in opts.max_p95_ms.items():
            h = hist.total() if route == "all" else hist.routes.get(route)
            actual = h.get_value_at_percentile(95.0) / 1000.0 if h is not None and h.get_total_count() else None
            out.append(
                {
                    "name": f"p95 {route}",
                    "limit": limit,
                    "actual": actual,
                    "passed": actual is not None and actual <= limit,
                }
            )
    return out


def print_summary(
    run_dir: Path,
    run: dict[str, Any],
    summary: dict[str, Any],
    thresholds: list[dict[str, Any]],
    results: list[Any] | None,
    note: str | None,
) -> None:
    from loadcheck.core import histograms

    click.echo("")
    click.echo(f"run {run['run_id']}: {run['status']}  ({run_dir})")
    try:
        hist = histograms.load(run_dir)
    except LoadcheckError:
        hist = None
    click.echo(f"  {'route':<14} {'requests':>8}  {'p50':>8} {'p95':>8} {'p99':>8}  statuses")
    for route, r in sorted(summary["routes"].items()):
        s = histograms.summary(hist.routes[route]) if hist and route in hist.routes else {}
        cells = [f"{s[k]:7.1f}ms" if k in s else f"{'-':>9}" for k in ("p50", "p95", "p99")]
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(r["status"].items()))
        click.echo(f"  {route:<14} {r['requests']:>8} {' '.join(cells)}  {statuses}")
    click.echo(f"  dropped arrivals: {run.get('dropped_arrivals', 0)}")
    for t in thresholds:
        actual = "-" if t["actual"] is None else t["actual"]
        click.echo(f"  threshold {t['name']}: {actual} (limit {t['limit']}) {'ok' if t['passed'] else 'FAILED'}")
    if results is not None:
        for res in results:
            click.echo(f"  check {res.name:<18} {res.status.upper():<7} {res.summary}")
    if note:
        click.echo(f"  {note}")


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
@click.option("--mix", default="writes=8,reads=1,search=1", show_default=True)
@click.option("--think-time", default="0.5-1.5", show_default=True, help="ramp: seconds between a user's requests")
@click.option("--workers", type=int, default=0, show_default=True, help="local worker processes (0: one process)")
@click.option("--master", "master_only", is_flag=True, help="multi-machine: run only the master; workers connect to it")
@click.option("--worker", "worker_only", is_flag=True, help="multi-machine: run only workers (--workers N, default 1)")
@click.option("--master-host", default=None, help="with --worker: the master's address")
@click.option("--master-port", type=int, default=5557, show_default=True)
@click.option("--out", default="runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--state-dir", default=None, help="local stack state (default $LOADCHECK_STATE_DIR or .loadcheck)")
@click.option("--fault", "faults", multiple=True, help="NAME=VALUE, repeatable (local target)")
@click.option("--seed", type=int, default=None)
@click.option("--max-error-rate", default=None, help="fail when more than this fraction of requests fail")
@click.option(
    "--max-server-error-rate",
    default=str(DEFAULT_MAX_SERVER_ERROR_RATE),
    show_default=True,
    help="fail when more than this fraction of requests got a 5xx or no response ('off' to disable)",
)
@click.option("--max-p95-ms", multiple=True, help="'ROUTE=MS' or all=MS, repeatable")
@click.option("--collisions", default="0", show_default=True, help="fraction of writes reusing a key (expect 409)")
@click.option("--baseline", default=None, type=click.Path(), help="compare with this run or baseline afterwards")
@click.option("--tf-outputs", default=None, type=click.Path(), help="aws: `terraform output -json` saved to a file")
@click.option("--tf-dir", default=None, type=click.Path(), help="aws: run `terraform output -json` here")
@click.option("--profile", default=None, help="aws: credentials profile")
@click.option("--no-checks", is_flag=True, help="only drive load")
def command(
    target_kind: str,
    duration: str,
    rate: float | None,
    users: int | None,
    spawn_rate: float | None,
    shape: str | None,
    steps: str | None,
    step_duration: str | None,
    mix: str,
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
    max_error_rate: str | None,
    max_server_error_rate: str,
    max_p95_ms: tuple[str, ...],
    collisions: str,
    baseline: str | None,
    tf_outputs: str | None,
    tf_dir: str | None,
    profile: str | None,
    no_checks: bool,
) -> None:
    """Drive signed load at the target, then check what happened (ledger vs table, throttling, logs)."""
    from loadcheck.commands.run_driver import Driver

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
        max_error_rate=max_error_rate,
        max_p95_ms=max_p95_ms,
        collisions=collisions,
        think_time=think_time,
        max_server_error_rate=max_server_error_rate,
    )
    if opts.faults and opts.target != "local":
        raise ConfigError(
            "--fault applies to the local target only",
            value=sorted(opts.faults),
            hint="drop --fault, or use --target local",
        )
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
        checks=not no_checks,
        tty=sys.stdout.isatty(),
    )
    sys.exit(driver.run())
