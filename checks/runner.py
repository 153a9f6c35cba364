"""Run the checks on a run directory, against the target the run recorded; write results.json.

    run_checks(run_dir, *, state_dir=None, budget_s=None, names=None, progress=None) -> [CheckResult]
    resolve_budget(value, target_kind=) -> seconds   (--check-budget, $LOADCHECK_CHECK_BUDGET, default)
    write_results(run_dir, results) -> ResultsWrite   (runs/<id>/results.json, never losing evidence)
    build_results(run_dir, results, ...) -> dict      (the document, not written)
    read_results(path) -> dict                        (loadcheck.core.rundir: refuses unknown versions)

Re-running is safe: checks only read (table Query, log and metric reads, and the security
check's probes, which are refused requests and one signed GET). A corrupt ledger, or one that
holds fewer records than run.json says were written (or whose gzip stream lacks its trailer on
a completed run), raises :class:`~loadcheck.core.errors.LedgerError` before any check runs (the
CLI exits 2): a check that read nothing, or read a damaged ledger, must not pass.

Target: AWS runs carry their target in run.json; local runs are checked against the running
stack of ``state_dir`` (argument, else the one the run recorded, else ``$LOADCHECK_STATE_DIR``
/ ``.loadcheck``). When that stack started after the run did, its state (moto keeps it in
memory) cannot hold the run: state-reading checks answer ``error`` saying so.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from checks.framework import AWS_DELIVERY_S, CheckContext
from checks.results_doc import build_results, ledger_stats, write_results
from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError, LedgerError, LoadcheckError
from loadcheck.core.results import CheckResult
from loadcheck.core.runconfig import parse_duration
from loadcheck.core.rundir import epoch_s, ledger_state, now_iso, read_results, read_run
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
BUDGET_OPTION = "--check-budget"
BUDGET_ENV = "LOADCHECK_CHECK_BUDGET"
# Per check. Locally the stack is flushed before every read, so a minute is plenty. On AWS the
# budget covers CloudWatch's delivery delays (framework.AWS_DELIVERY_S, docs/aws-behaviour.md §2.6);
# polling stops as soon as the data are complete, so a long budget costs nothing when they are.
DEFAULT_BUDGET_S = {"local": 60.0, "aws": AWS_DELIVERY_S}


def resolve_budget(value: str | float | None, *, target_kind: str = "local") -> float:
    """``--check-budget`` (``value``), then ``$LOADCHECK_CHECK_BUDGET``, then the target's default.

    Both are durations read by the one parser of durations (:func:`loadcheck.core.runconfig.parse_duration`):
    ``90``, ``90s``, ``2m``, ``1m30s``. Seconds per check.
    """
    if value is not None:
        return parse_duration(value, option=BUDGET_OPTION)
    env = os.environ.get(BUDGET_ENV, "").strip()
    if env:
        return parse_duration(env, option=f"${BUDGET_ENV}")
    return DEFAULT_BUDGET_S.get(target_kind, DEFAULT_BUDGET_S["local"])


def resolve_names(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if not names:
        return CHECKS
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ConfigError(f"unknown check {unknown[0]!r}", value=unknown[0], hint=f"choose from: {', '.join(CHECKS)}")
    return tuple(n for n in CHECKS if n in names)


def _clients_for(target: Target) -> Callable[[str], Any]:
    from botocore.config import Config  # deferred: loads botocore (~75 ms); `loadcheck --help` loads this module

    def make(service: str) -> Any:
        # DynamoDB: no SDK retries, our backoff counts throttles and time (framework.call_with_backoff).
        attempts = 1 if service == "dynamodb" else 4
        cfg = Config(retries={"mode": "standard", "max_attempts": attempts}, connect_timeout=5, read_timeout=60)
        return target.boto3_session("admin").client(service, endpoint_url=target.aws_endpoint_url, config=cfg)

    return make


def build_context(
    run_dir: Path,
    *,
    state_dir: str | os.PathLike[str] | None = None,
    budget_s: str | float | None = None,
    progress: Callable[[str], None] | None = None,
    local_flush: Callable[[Path], None] | None = None,
) -> CheckContext:
    """The checks' context for a run. ``local_flush(state_dir)`` pushes a local stack's buffered
    access logs and metrics out (the app passes the supervisor's; None: nothing to push)."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    recorded = target_from_run(run)
    # A run is judged against the description it ran with (--description; the reference stack's
    # by default); an AWS run against what was deployed: the description with the user's override.
    description = load_description((run.get("options") or {}).get("description"), aws=recorded.kind != "local")
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
            if local_flush is not None:
                flush = functools.partial(local_flush, sdir)
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
        budget_s=resolve_budget(budget_s, target_kind=target.kind),
        progress=progress,
        flush=flush,
        stack_note=note,
        time_tolerance_s=tolerance,
        # Flushed before each read, the local stack has delivered everything it ever will.
        delivery_s=0.0 if flush is not None else AWS_DELIVERY_S,
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
    budget_s: str | float | None = None,
    names: list[str] | tuple[str, ...] | None = None,
    progress: Callable[[str], None] | None = None,
    context: CheckContext | None = None,
    local_flush: Callable[[Path], None] | None = None,
) -> list[CheckResult]:
    """Run the named checks (all by default) in order; see the module docstring."""
    selected = resolve_names(names)
    ctx = context or build_context(
        Path(run_dir), state_dir=state_dir, budget_s=budget_s, progress=progress, local_flush=local_flush
    )
    ledger = ledger_state(ctx.run_dir, ctx.run)
    if ledger.problems:
        raise LedgerError(
            "; ".join(ledger.problems),
            path=str(Path(ctx.run_dir) / "ledger"),
            hint="the ledger was damaged after the run: restore it from a copy; a ledger that lost records "
            "cannot be checked (the lost requests would read as phantoms or be missed)",
        )
    _, window, _ = ledger_stats(ctx.run_dir)  # validates every record first: corrupt -> LedgerError
    if ledger.cut:
        ctx.ledger_tail_unknown = True
        ctx.say(
            f"checks: ledger cut off at {ledger.cut[0]} (run {ctx.run.get('status')}): checking what was written; "
            "items and log records after its last record are reported as unrecorded, not as phantoms"
        )
    if ctx.run.get("status") in ("interrupted", "aborted"):
        ctx.say(f"checks: the run was {ctx.run.get('status')}: the verdict cannot be a pass, whatever the checks find")
    ctx.window = window
    ctx.say(f"checks: {', '.join(selected)}; budget {ctx.budget_s:g}s per check")
    results = []
    for name in selected:
        ctx.say(f"{name}: running")
        results.append(_run_one(name, ctx))
        ctx.say(f"{name}: {results[-1].status}: {results[-1].summary}")
    return results


def iso_now() -> str:
    return now_iso()
