"""The one verdict of a run and the exit code it gives: :func:`verdict`, :func:`verdict_of_results`.

:func:`verdict` turns checks, thresholds, the run's end and the ledger's completeness into
``pass`` / ``fail`` / ``error`` and the command's exit code
(:class:`~loadcheck.core.errors.ExitCode`, docs/cli.md "Exit codes"); the CLI line, the exit
status, results.json, report.html, summary.md and junit.xml all show its value.
:mod:`loadcheck.core.rundir` re-exports it for the readers of run directories.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from loadcheck.core.errors import ExitCode, worst
from loadcheck.core.results import CheckResult

VERDICTS = ("pass", "fail", "error")


def table_lost(outages: Iterable[Mapping[str, Any]]) -> str | None:
    """The verdict's words when run.json's ``outages`` hold the aws endpoint's death, else None."""
    for o in outages:
        if o.get("fatal") and o.get("service") == "aws":
            return (
                f"the table was lost with the aws endpoint at {o.get('down_at')}; reconciliation impossible "
                "(the local aws endpoint keeps the table, its logs and metrics in memory)"
            )
    return None


def aborted_reason(aborted: Mapping[str, Any] | None) -> str:
    """The verdict's words for a run ``--abort-on-fail`` stopped (run.json ``aborted``)."""
    if not aborted:
        return "the run was aborted (--abort-on-fail): not all planned load was sent"
    elapsed = aborted.get("elapsed_s")
    when = f" {float(elapsed):.1f} s into the load" if isinstance(elapsed, int | float) else ""
    why = f" ({aborted['reason']})" if aborted.get("reason") else ""
    return (
        f"the run was aborted{when} (--abort-on-fail): threshold {aborted.get('threshold', '?')} could no "
        f"longer pass{why}; not all planned load was sent"
    )


@dataclass(frozen=True)
class Verdict:
    """The one verdict of a run, why it is not a pass, and the exit code it gives the command.

    ``exit_code`` (docs/cli.md "Exit codes") is the most severe of what happened, by
    :data:`~loadcheck.core.errors.EXIT_PRECEDENCE`: an error (4) before a failed check (1) before an
    interruption (130) before an abort (6) before a failed threshold or broken budget (3).
    """

    value: str
    reasons: tuple[str, ...] = ()
    exit_code: ExitCode | None = None

    def __post_init__(self) -> None:
        if self.exit_code is None:  # a bare verdict: its value's own code
            code = {"pass": ExitCode.PASSED, "fail": ExitCode.CHECK_FAILED}.get(self.value, ExitCode.ERROR)
            object.__setattr__(self, "exit_code", code)

    @property
    def passed(self) -> bool:
        return self.value == "pass"

    @property
    def code(self) -> ExitCode:
        return self.exit_code if self.exit_code is not None else ExitCode.ERROR


def _as_result(r: CheckResult | Mapping[str, Any]) -> CheckResult:
    return r if isinstance(r, CheckResult) else CheckResult.from_dict(dict(r))


def verdict(
    checks: Iterable[CheckResult | Mapping[str, Any]] | None,
    *,
    thresholds: Iterable[Mapping[str, Any]] = (),
    run_status: str | None = "complete",
    ledger_problems: Iterable[str] = (),
    baseline_broken: Iterable[str] = (),
    unchecked: Iterable[str] = (),
    outages: Iterable[Mapping[str, Any]] = (),
    aborted: Mapping[str, Any] | None = None,
) -> Verdict:
    """``fail``, ``error`` or ``pass``, with the reasons for anything but a pass, and the exit code.

    - ``fail``: a check failed, a threshold did not hold, a baseline budget broke, or the run
      was interrupted or aborted (what it should have sent was not sent; ``aborted``: run.json's
      record of why);
    - ``error``: a check could not gather its inputs, the ledger is incomplete, or no check
      verified anything (every check skipped or errored), or the checks could not run at all
      (``unchecked``: why);
    - ``error`` before anything else when ``outages`` (run.json's) hold the aws endpoint's death:
      the table died with it, so no write can be judged lost or kept (:func:`table_lost`);
    - ``pass``: none of these. ``checks=None`` means the user asked for no checks (``--no-checks``):
      the verdict then judges thresholds and the run's end only, and says so.
    """
    fails: list[str] = []
    errors: list[str] = []
    codes: set[ExitCode] = set()
    lost = table_lost(outages)
    if lost:
        return Verdict("error", (lost,), ExitCode.ERROR)
    results = [_as_result(r) for r in checks] if checks is not None else None
    for r in results or ():
        if r.status == "fail":
            fails.append(f"check {r.name} failed: {r.summary}")
            codes.add(ExitCode.CHECK_FAILED)
        elif r.status == "error":
            errors.append(f"check {r.name} could not verify: {r.reason or r.summary}")
    for t in thresholds:
        if not t.get("passed", False):
            fails.append(
                f"threshold {t.get('name', '?')} did not hold: {t.get('actual', '?')} (limit {t.get('limit', '?')})"
            )
            codes.add(ExitCode.THRESHOLD_FAILED)
    for b in baseline_broken:
        fails.append(f"baseline: {b}")
        codes.add(ExitCode.THRESHOLD_FAILED)
    if run_status == "interrupted":
        fails.append("the run was interrupted: not all planned load was sent")
        codes.add(ExitCode.INTERRUPTED)
    elif run_status == "aborted":
        fails.append(aborted_reason(aborted))
        codes.add(ExitCode.ABORTED)
    elif run_status == "running":
        errors.append("run.json says the run is still running (the load generator was killed, or it is running now)")
    errors.extend(f"ledger incomplete: {p}" for p in ledger_problems)
    errors.extend(unchecked)
    if results is not None and not any(r.status in ("pass", "fail") for r in results):
        errors.append("no check verified anything (every check was skipped or could not run)")
    if errors:
        codes.add(ExitCode.ERROR)
    if fails:
        return Verdict("fail", tuple(fails + errors), worst(codes))
    if errors:
        return Verdict("error", tuple(errors), ExitCode.ERROR)
    return Verdict("pass", () if results is not None else ("load only: no checks ran",), ExitCode.PASSED)


def verdict_of_results(doc: Mapping[str, Any]) -> Verdict:
    """The verdict a results document holds (older documents: recomputed from their checks).

    Its exit code is read from what the document records: an ``error`` verdict or an errored
    check (4), a failed check (1), the run's end (``interrupted`` 130, ``aborted`` 6), a failed
    threshold (3); a ``fail`` with none of these is a broken baseline budget (3)."""
    value = doc.get("verdict")
    reasons = tuple(doc.get("verdict_reasons") or ())
    if value not in VERDICTS:
        return verdict(doc.get("checks") or [])
    codes: set[ExitCode] = set()
    if value == "error":
        codes.add(ExitCode.ERROR)
    statuses = {str(c.get("status")) for c in doc.get("checks") or [] if isinstance(c, Mapping)}
    if "error" in statuses and value != "pass":
        codes.add(ExitCode.ERROR)
    if "fail" in statuses:
        codes.add(ExitCode.CHECK_FAILED)
    run_status = (doc.get("run") or {}).get("status")
    if run_status == "interrupted":
        codes.add(ExitCode.INTERRUPTED)
    elif run_status == "aborted":
        codes.add(ExitCode.ABORTED)
    if any(isinstance(t, Mapping) and not t.get("passed", False) for t in doc.get("thresholds") or []):
        codes.add(ExitCode.THRESHOLD_FAILED)
    if value == "fail" and not codes:
        codes.add(ExitCode.THRESHOLD_FAILED)
    return Verdict(str(value), reasons, worst(codes) if value != "pass" else ExitCode.PASSED)
