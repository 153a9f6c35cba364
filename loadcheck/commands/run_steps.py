"""The steps of ``loadcheck run`` that the driver (:mod:`loadcheck.commands.run_driver`) takes:
the target, the Locust processes, thresholds and the printed summary (the live view is
:mod:`loadcheck.commands.live`).

See :mod:`loadcheck.commands.run` for the order and the exit statuses.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import click

from loadcheck.core import histograms, thresholds
from loadcheck.core.aws_target import load_tf_outputs, target_from_tf_outputs
from loadcheck.core.chaos import Outage, covering
from loadcheck.core.errors import ConfigError, LoadcheckError
from loadcheck.core.ledger import read_ledger, server_error, status_key
from loadcheck.core.runconfig import ALL_ROUTES, RunOptions
from loadcheck.core.state import stack_command
from loadcheck.core.target import Target
from loadcheck.core.thresholds import describe_entry as describe_threshold
from reference_stack.local import supervisor

EVENTLOG = Path(__file__).resolve().parents[2] / "locustfiles" / "eventlog.py"
GRACE_S = 60.0  # after the run time: stop timeout + the final drain from workers
# Open model: the arrival schedule ends the run after --duration from its first arrival;
# Locust's --run-time is only a safety net this far above it.
RUN_TIME_SLACK_S = 30.0
# The run stops its load while this much space is still free where its directory is, so the
# last ledger batches, histograms.json, loadgen.json and run.json still fit (a ledger cut by
# ENOSPC mid-record would lose its tail). Argument-free: $LOADCHECK_DISK_RESERVE_MB, else 32 MB.
DISK_RESERVE_ENV = "LOADCHECK_DISK_RESERVE_MB"
DEFAULT_DISK_RESERVE_MB = 32.0


def disk_reserve_bytes() -> int:
    """``$LOADCHECK_DISK_RESERVE_MB`` (megabytes, >= 0), else 32 MB."""
    raw = os.environ.get(DISK_RESERVE_ENV)
    if not raw:
        return int(DEFAULT_DISK_RESERVE_MB * 1e6)
    try:
        mb = float(raw)
    except ValueError:
        mb = -1.0
    if mb < 0:
        raise ConfigError(
            f"${DISK_RESERVE_ENV}={raw!r} is not a number of megabytes >= 0",
            value=raw,
            hint=f"set {DISK_RESERVE_ENV}=32 (stop the load while 32 MB are still free)",
        )
    return int(mb * 1e6)


def disk_short(run_dir: Path, reserve: int) -> str | None:
    """Why the load must stop now for lack of disk space where ``run_dir`` is, else None."""
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return None
    if free >= reserve:
        return None
    return (
        f"disk full: {free / 1e6:.1f} MB free in {run_dir} (below the {reserve / 1e6:g} MB reserve); "
        f"the load was stopped and what it wrote kept (free space, or lower ${DISK_RESERVE_ENV})"
    )


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("loadcheck", "locust", "botocore", "hdrhistogram"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


# --------------------------------------------------------------------------------------------
# Target


def local_target(state_dir: Path, faults: dict[str, Any], say: Any, description: str | None = None) -> tuple[Any, bool]:
    """The running local stack (which must run ``description`` when one is given), or one started."""
    say(f"local stack: {state_dir}")
    stack, started = supervisor.ensure_stack(state_dir, faults=faults or None, progress=say, description=description)
    running = str(stack.get("description") or "").split(" + ")[0]
    if description is not None and not started and Path(running).resolve() != Path(description).resolve():
        raise ConfigError(
            f"the local stack in {state_dir} runs {running}, not --description {description}",
            value=description,
            hint=f"stop it first (`{stack_command('down', state_dir)}`), or drop --description",
        )
    say("local stack: started for this run" if started else "local stack: already running, reused")
    return Target.from_stack_json(stack, state_dir), started


def aws_target(
    tf_outputs: str | None,
    tf_dir: str | None,
    profile: str | None,
    ca_bundle: str | None = None,
    resolve: str | None = None,
) -> Any:
    """The AWS target; the caller assumes the requester role once here, so a wrong ``--profile``
    stops the run before any load starts."""
    if tf_outputs is None and tf_dir is None:
        tf_dir = str(Path(__file__).resolve().parents[2] / "reference_stack" / "terraform")
    target = Target.from_tf_outputs(
        target_from_tf_outputs(load_tf_outputs(tf_outputs, tf_dir)),
        profile=profile,
        ca_bundle=ca_bundle,
        resolve=resolve,
    )
    target.credentials("requester")
    return target


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
    locustfile = opts.locustfile or str(EVENTLOG)
    # --exit-code-on-error 0: failed requests are the checks' to judge, so a Locust process's
    # exit status is its own health only (0 ran to the end; 1 could not start; 2 crashed).
    base = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        locustfile,
        "--loadcheck-config",
        str(cfg_path),
        "--exit-code-on-error",
        "0",
    ]
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
# Thresholds, summary


def ledger_summary(run_dir: Path, *, outages: list[Outage] | None = None) -> dict[str, Any]:
    """Per-route status counts from the ledger; errors exclude the 409s of forced collisions.

    Server errors of requests inside an outage (``--chaos``, a crashed service) are the
    outage's: counted apart (``server_errors_in_outage``), not in ``server_errors``.
    ``counts``: per route, what the thresholds count (:func:`loadcheck.core.thresholds.count_record`).
    """
    routes: dict[str, dict[str, Any]] = {}
    counts: dict[str, thresholds.Counts] = {}
    in_outage = 0
    try:
        for rec in read_ledger(run_dir):
            r = routes.setdefault(rec["route"], {"requests": 0, "status": {}})
            key = status_key(rec)
            r["requests"] += 1
            r["status"][key] = r["status"].get(key, 0) + 1
            covered = server_error(rec) and bool(outages) and covering(rec, outages or []) is not None
            in_outage += int(covered)
            thresholds.count_record(counts, rec, in_outage=covered)
    except LoadcheckError:
        pass  # no ledger: nothing was sent
    total = thresholds.Observed(counts=counts).counts_of(ALL_ROUTES) or thresholds.Counts()
    return {
        "routes": routes,
        "requests": total.requests,
        "errors": total.error_rate,
        "server_errors": total.server_error_rate,
        "server_errors_in_outage": in_outage,
        "counts": counts,
    }


def evaluate_thresholds(opts: RunOptions, run_dir: Path, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """run.json ``thresholds``: each of the run's thresholds judged on the ledger's counts and
    the HDR histograms (:func:`loadcheck.core.thresholds.evaluate`)."""
    parsed = thresholds.parse_all(opts.thresholds)
    observed = thresholds.Observed(counts=dict(summary.get("counts") or {}))
    if any(not t.is_rate for t in parsed):
        try:
            observed.hdr = dict(histograms.load(run_dir).routes)
        except LoadcheckError as exc:
            observed.hdr_problem = str(exc)
    return thresholds.evaluate(parsed, observed)


def print_summary(
    run_dir: Path,
    run: dict[str, Any],
    summary: dict[str, Any],
    thresholds: list[dict[str, Any]],
    results: list[Any] | None,
    note: str | None,
) -> None:
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
        click.echo(f"  threshold {t['name']}: {describe_threshold(t)} {'ok' if t['passed'] else 'FAILED'}")
    if results is not None:
        for res in results:
            click.echo(f"  check {res.name:<18} {res.status.upper():<7} {res.summary}")
    if note:
        click.echo(f"  {note}")
