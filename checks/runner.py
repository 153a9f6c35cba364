"""Run the checks on a run directory, against the target the run recorded; write results.json.

    run_checks(run_dir, *, state_dir=None, budget_s=None, names=None, progress=None) -> [CheckResult]
    write_results(run_dir, results) -> Path          (runs/<id>/results.json)
    build_results(run_dir, results, ...) -> dict      (the document, not written)
    read_results(path) -> dict                        (refuses unknown schema versions)

Re-running is safe: checks only read (table Query, log and metric reads, and the security
check's probes, which are refused requests and one signed GET). A corrupt or truncated ledger
raises :class:`~loadcheck.core.errors.LedgerError` before any check runs (the CLI exits 2): a
check that read nothing must not pass.

Target: AWS runs carry their target in run.json; local runs are checked against the running
stack of ``state_dir`` (argument, else the one the run recorded, else ``$LOADCHECK_STATE_DIR``
/ ``.loadcheck``). When that stack started after the run did, its state (moto keeps it in
memory) cannot hold the run: state-reading checks answer ``error`` saying so.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from checks.framework import CheckContext, epoch_s
from checks.results_doc import (
    build_results,
    ledger_stats,
    ledger_truncation,
    read_results,
    read_run_json,
    write_results,
)
from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError, LedgerError, LoadcheckError
from loadcheck.core.results import CheckResult
from loadcheck.core.state import read_stack_json, resolve_state_dir
from loadcheck.core.target import Target, target_from_run

__all__ = [
    "CHECKS",
    "DEFAULT_BUDGET_S",
    "build_context",
    "build_results",
    "read_results",
    "run_checks",
    "write_results",
]

CHECKS = ("dynamodb_contents", "throttling", "access_logs", "security")
DEFAULT_BUDGET_S = 60.0
BUDGET_ENV = "LOADCHECK_CHECK_BUDGET"


def resolve_budget(budget_s: float | None) -> float:
    """Argument, then ``$LOADCHECK_CHECK_BUDGET`` (seconds), then 60 s (per check)."""
    if budget_s is None:
        env = os.environ.get(BUDGET_ENV)
        if env:
            try:
                budget_s = float(env.rstrip("s"))
            except ValueError:
                raise ConfigError(
                    f"${BUDGET_ENV}={env!r} is not a number of seconds",
                    value=env,
                    hint=f"set {BUDGET_ENV}=60 or pass --budget 60s",
                ) from None
    budget = DEFAULT_BUDGET_S if budget_s is None else float(budget_s)
    if budget <= 0:
        raise ConfigError(
            f"budget must be more than 0 seconds, got {budget_s!r}", value=budget_s, hint="pass e.g. --budget 60s"
        )
    return budget


def resolve_names(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if not names:
        return CHECKS
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ConfigError(f"unknown check {unknown[0]!r}", value=unknown[0], hint=f"choose from: {', '.join(CHECKS)}")
    return tuple(n for n in CHECKS if n in names)


def _clients_for(target: Target) -> Callable[[str], Any]:
    from botocore.config import Config

    def make(service: str) -> Any:
        # DynamoDB: no SDK retries, our backoff counts throttles and time (framework.call_with_backoff).
        attempts = 1 if service == "dynamodb" else 4
        cfg = Config(retries={"mode": "standard", "max_attempts": attempts}, connect_timeout=5, read_timeout=60)
        return target.boto3_session("admin").client(service, endpoint_url=target.aws_endpoint_url, config=cfg)

    return make


def _local_flush(state_dir: Path, stack: dict[str, Any]) -> Callable[[], None]:
    """Push buffered access logs (gateway) then metrics (aws) out of the local stack."""

    def flush() -> None:
        try:
            sup = importlib.import_module("reference_stack.local.supervisor")
        except ModuleNotFoundError:
            sup = None
        if sup is not None and hasattr(sup, "flush"):
            sup.flush(state_dir)
            return
        import http.client
        import ssl
        from urllib.parse import urlsplit

        services = stack.get("services") or {}
        for name in ("gateway", "lambda", "aws"):  # logs before metrics: shipping logs is a call to aws
            url = (services.get(name) or {}).get("url")
            if not url:
                continue
            parts = urlsplit(url)
            if parts.scheme == "https":
                # Admin paths answer only when Host is not the custom domain; the loopback address
                # is not in the certificate, so the chain is verified but not the name.
                tls = ssl.create_default_context(cafile=stack.get("ca_bundle"))
                tls.check_hostname = False
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    parts.hostname or "127.0.0.1", parts.port, timeout=10, context=tls
                )
            else:
                conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
            try:
                conn.request("POST", "/_loadcheck/flush", body=b"{}", headers={"Content-Type": "application/json"})
                conn.getresponse().read()
            finally:
                conn.close()

    return flush


def build_context(
    run_dir: Path,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    budget_s: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckContext:
    run_dir = Path(run_dir)
    run = read_run_json(run_dir)
    recorded = target_from_run(run)
    description = load_description()
    note = None
    flush = None
    target = recorded
    if recorded.kind == "local":
        sdir = resolve_state_dir(state_dir or recorded.state_dir)
        try:
            stack = read_stack_json(sdir)
        except LoadcheckError as exc:
            note = f"{exc.message} (the run used the local stack of {recorded.state_dir})"
        else:
            target = Target.from_stack_json(stack, sdir)
            flush = _local_flush(sdir, stack)
            stack_started = epoch_s(stack.get("started_at"))
            run_started = epoch_s(run.get("started_at"))
            if stack_started and run_started and stack_started > run_started + 1:
                note = (
                    f"the local stack in {sdir} started after the run did; the run's items, logs and "
                    f"metrics died with the stack it ran against"
                )
    # Locally client and gateway share one clock: a record stamped 100 ms before the run's first
    # send is another run's. AWS's clock and the client's may differ by a second or two.
    tolerance = 0.1 if target.kind == "local" else 2.0
    return CheckContext(
        run_dir=run_dir,
        run=run,
        target=target,
        description=description,
        clients=_clients_for(target),
        budget_s=resolve_budget(budget_s),
        progress=progress,
        flush=flush,
        stack_note=note,
        time_tolerance_s=tolerance,
    )


def _run_one(name: str, ctx: CheckContext) -> CheckResult:
    module = importlib.import_module(f"checks.{name}")
    started = ctx.clock.monotonic()
    try:
        result: CheckResult = module.run(ctx)
    except LoadcheckError:
        raise
    except Exception as exc:  # noqa: BLE001 - a check that crashed has not passed
        result = CheckResult(
            name, "error", f"{name} crashed: {type(exc).__name__}: {exc}", reason=f"{type(exc).__name__}: {exc}"
        )
    result.duration_s = round(ctx.clock.monotonic() - started, 3)
    return result


def run_checks(
    run_dir: Path,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    budget_s: float | None = None,
    names: list[str] | tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
    context: CheckContext | None = None,
) -> list[CheckResult]:
    """Run the named checks (all by default) in order; see the module docstring."""
    selected = resolve_names(names)
    ctx = context or build_context(Path(run_dir), state_dir=state_dir, budget_s=budget_s, progress=progress)
    _, window, _ = ledger_stats(ctx.run_dir)  # validates the whole ledger first: corrupt -> LedgerError
    cut = ledger_truncation(ctx.run_dir)
    if cut and ctx.run.get("status") == "complete":
        raise LedgerError(
            "ledger ends mid-record although run.json says the run completed",
            path=cut[0],
            hint="the ledger was damaged after the run; restore it (a killed run is marked 'interrupted')",
        )
    if cut:
        ctx.say(f"checks: ledger cut off at {cut[0]} (run {ctx.run.get('status')}): checking what was written")
    ctx.window = window
    ctx.say(f"checks: {', '.join(selected)}; budget {ctx.budget_s:g}s per check")
    results = []
    for name in selected:
        ctx.say(f"{name}: running")
        results.append(_run_one(name, ctx))
        ctx.say(f"{name}: {results[-1].status}: {results[-1].summary}")
    return results


def iso_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")
