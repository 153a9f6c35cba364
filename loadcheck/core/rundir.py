"""The run directory: its files, their versions, the run's times and ids, and its one verdict.

This module is the only writer and reader of the three run-directory documents
(docs/internals.md, docs/results-schema.md)::

    runs/<run-id>/run.json          RunRecord       write_run / read_run        RUN_SCHEMA_VERSION
    runs/<run-id>/results.json      results doc     write_results / read_results RESULTS_SCHEMA_VERSION
    runs/<run-id>/histograms.json   HDR per route   read_histograms              HISTOGRAMS_VERSION
    runs/<run-id>/results-history/  every results.json a later ``loadcheck check`` replaced or kept back

Times in every document are ISO-8601 UTC text with milliseconds (:func:`iso_utc`); run ids,
``runs/<run-id>`` and ``runs/latest`` are :mod:`loadcheck.core.runids`'s, whose ``runs/latest``
:func:`run_dir_of` follows, so ``loadcheck check runs/latest`` works either way. A file of a
schema version this code does not read is refused with a
:class:`~loadcheck.core.errors.RunDirError` naming the file, its version and what to do: a
report must never render a document it misreads.

:func:`verdict` is the one rule that turns checks, thresholds, the run's end and the ledger's
completeness into ``pass`` / ``fail`` / ``error``; the CLI line, the exit status, results.json,
report.html, summary.md and junit.xml all show its value.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core import jsonfile
from loadcheck.core.errors import RunDirError
from loadcheck.core.ledger import scan_ledger
from loadcheck.core.results import CheckResult
from loadcheck.core.runids import resolve_latest
from loadcheck.core.state import write_json_atomic

RUN_FILE = "run.json"
RESULTS_FILE = "results.json"
HISTOGRAMS_FILE = "histograms.json"
LOADCONFIG_FILE = "loadconfig.json"
LOADGEN_FILE = "loadgen.json"
HISTORY_DIR = "results-history"

RUN_SCHEMA_VERSION = 1
RESULTS_SCHEMA_VERSION = 2
HISTOGRAMS_VERSION = 1
RUN_VERSIONS_READ = (1,)
RESULTS_VERSIONS_READ = (1, 2)  # version 1 lacks verdict_reasons and conditions; both are optional to readers
HISTOGRAMS_VERSIONS_READ = (1,)

RUN_STATUSES = ("running", "complete", "interrupted", "aborted")
RUN_REQUIRED = ("run_id", "status")  # what every reader of run.json relies on
VERDICTS = ("pass", "fail", "error")


# ---------------------------------------------------------------------------------------------
# times and ids
def iso_utc(epoch: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC text with milliseconds (the one time format of run files)."""
    if epoch is None:
        return None
    return _dt.datetime.fromtimestamp(float(epoch), _dt.UTC).isoformat(timespec="milliseconds")


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def epoch_s(value: Any) -> float | None:
    """An instant from a run file: ISO-8601 text, or (older files) epoch seconds or milliseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if isinstance(value, str):
        try:
            when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        return when.timestamp()
    return None


# ---------------------------------------------------------------------------------------------
# reading JSON objects
def read_json_object(path: Path, *, writer: str, hint: str | None = None) -> dict[str, Any]:
    """The JSON object in a run-directory file, or a :class:`RunDirError` naming the file and the fix."""
    return jsonfile.read_json_object(
        path, what="run file", hint=hint or f"the file is damaged; re-create it with {writer}", error=RunDirError
    )


def _versioned(path: Path, key: str, known: tuple[int, ...], writer: str) -> dict[str, Any]:
    data = read_json_object(path, writer=writer)
    version = data.get(key)
    if version not in known:
        newer = isinstance(version, int) and version > max(known)
        raise RunDirError(
            f"{path}: {key} {version!r} is not one this loadcheck reads (it reads {', '.join(map(str, known))})",
            value=version,
            hint=(
                "it was written by a newer loadcheck: upgrade loadcheck to read it"
                if newer
                else f"read it with the loadcheck version that wrote it, or re-create it with this one ({writer})"
            ),
        )
    return data


def run_dir_of(path: str | Path) -> Path:
    """A run (or saved baseline) directory, checked to exist and hold run.json (``runs/latest``:
    the run it points at)."""
    p = resolve_latest(Path(path))
    if p.is_file() and p.name in (RESULTS_FILE, RUN_FILE):
        p = p.parent
    if not p.is_dir():
        raise RunDirError(
            f"{p} is not a directory",
            value=str(p),
            hint="pass a run directory (runs/<run-id>) or a saved baseline (baselines/<name>)",
        )
    if not (p / RUN_FILE).is_file():
        raise RunDirError(
            f"{p} is not a run directory (no {RUN_FILE})",
            value=str(p),
            hint="pass a directory written by `loadcheck run` or `loadcheck baseline save`, e.g. runs/<run-id>",
        )
    return p


# ---------------------------------------------------------------------------------------------
# run.json
@dataclass
class RunConditions:
    """What the run ran under, beyond its load options: recorded so every artefact can say it.

    ``faults``: every fault active on the target when the load started, whoever set it
    (``--fault`` or ``loadcheck stack fault``), by name; ``chaos``: the ``--chaos`` actions;
    ``collisions``: the fraction of writes
    that reuse a key on purpose (their 409s are expected); ``shape`` and ``mix`` as run.
    """

    faults: dict[str, Any] = field(default_factory=dict)
    collisions: float = 0.0
    shape: str | None = None
    mix: dict[str, int] = field(default_factory=dict)
    chaos: list[str] = field(default_factory=list)  # --chaos actions, e.g. "kill:gateway@10s"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RunConditions:
        data = data or {}
        return cls(
            chaos=[str(c) for c in data.get("chaos") or []],
            faults=dict(data.get("faults") or {}),
            collisions=float(data.get("collisions") or 0.0),
            shape=data.get("shape"),
            mix={str(k): int(v) for k, v in (data.get("mix") or {}).items()},
        )


@dataclass
class RunRecord:
    """run.json: what ``loadcheck run`` (or a plain ``locust -f`` run) did.

    ``status`` is ``running`` while load runs, then ``complete``, ``interrupted`` (Ctrl-C, SIGTERM)
    or ``aborted`` (``--abort-on-fail`` stopped the load: ``aborted`` says which threshold could
    no longer pass, why, and when: ``{"threshold", "reason", "elapsed_s", "at"}``, ``elapsed_s``
    on the load's clock, ``at`` ISO-8601 UTC).
    ``ledger_records`` is how many ledger records the load generator wrote (None while running,
    or when the writer was killed before it could say); with ``workers`` (records per worker)
    it lets a reader tell a damaged ledger from a short run.
    """

    run_id: str
    status: str = "running"
    target: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    conditions: RunConditions = field(default_factory=RunConditions)
    versions: dict[str, str] = field(default_factory=dict)
    started_at: str | None = None
    ended_at: str | None = None
    dropped_arrivals: int = 0
    ledger_records: int | None = None
    locust: dict[str, Any] = field(default_factory=dict)
    workers: dict[str, Any] = field(default_factory=dict)
    processes: list[dict[str, Any]] = field(default_factory=list)
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    aborted: dict[str, Any] | None = None
    baseline: str | None = None
    note: str | None = None
    # Service deaths during the run (loadcheck.core.chaos.Outage.to_run: service, pid, down_at,
    # up_at, restart_s, fatal, requests covered); failures inside them are the outage's.
    outages: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = RUN_SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known and k != "conditions"}
        for key in ("started_at", "ended_at"):
            if key in kwargs and not isinstance(kwargs[key], str | None):
                kwargs[key] = iso_utc(epoch_s(kwargs[key]))
        return cls(**kwargs, conditions=RunConditions.from_dict(data.get("conditions")))


def write_run(run_dir: Path, record: RunRecord) -> Path:
    path = Path(run_dir) / RUN_FILE
    write_json_atomic(path, record.to_dict())
    return path


def read_run(path: str | Path) -> dict[str, Any]:
    """run.json of a run or baseline directory, its times as ISO text whatever wrote them."""
    p = run_dir_of(path)
    data = _versioned(p / RUN_FILE, "schema_version", RUN_VERSIONS_READ, "`loadcheck run`")
    for key in RUN_REQUIRED:
        if key not in data:
            raise RunDirError(
                f"{p / RUN_FILE}: lacks {key!r}",
                value=str(p / RUN_FILE),
                hint="the file was damaged or not written by `loadcheck run`; restore it from a copy",
            )
    for key in ("started_at", "ended_at"):
        if data.get(key) is not None and not isinstance(data[key], str):
            data[key] = iso_utc(epoch_s(data[key]))
    if data.get("status") not in RUN_STATUSES:
        raise RunDirError(
            f"{p / RUN_FILE}: status {data.get('status')!r} is not one of {', '.join(RUN_STATUSES)}",
            value=data.get("status"),
            hint="the file was not written by `loadcheck run`",
        )
    return data


# ---------------------------------------------------------------------------------------------
# histograms.json
def read_histograms(path: str | Path) -> dict[str, Any] | None:
    """histograms.json (microseconds) of a run or baseline; None when the run wrote none."""
    p = Path(path)
    if p.name != HISTOGRAMS_FILE:
        p = p / HISTOGRAMS_FILE
    if not p.is_file():
        return None
    data = _versioned(p, "version", HISTOGRAMS_VERSIONS_READ, "`loadcheck run`")
    if data.get("unit", "us") != "us":
        raise RunDirError(
            f"{p}: unit {data.get('unit')!r} is not 'us'",
            value=data.get("unit"),
            hint="histograms.json holds microseconds; remove the file to fall back to the ledger's latencies",
        )
    return data


# ---------------------------------------------------------------------------------------------
# the verdict
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
    """The one verdict of a run, and why it is not a pass."""

    value: str
    reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.value == "pass"

    @property
    def exit_status(self) -> int:
        return 0 if self.passed else 1


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
    """``fail``, ``error`` or ``pass``, with the reasons for anything but a pass.

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
    lost = table_lost(outages)
    if lost:
        return Verdict("error", (lost,))
    results = [_as_result(r) for r in checks] if checks is not None else None
    for r in results or ():
        if r.status == "fail":
            fails.append(f"check {r.name} failed: {r.summary}")
        elif r.status == "error":
            errors.append(f"check {r.name} could not verify: {r.reason or r.summary}")
    for t in thresholds:
        if not t.get("passed", False):
            fails.append(
                f"threshold {t.get('name', '?')} did not hold: {t.get('actual', '?')} (limit {t.get('limit', '?')})"
            )
    fails.extend(f"baseline: {b}" for b in baseline_broken)
    if run_status == "interrupted":
        fails.append("the run was interrupted: not all planned load was sent")
    elif run_status == "aborted":
        fails.append(aborted_reason(aborted))
    elif run_status == "running":
        errors.append("run.json says the run is still running (the load generator was killed, or it is running now)")
    errors.extend(f"ledger incomplete: {p}" for p in ledger_problems)
    errors.extend(unchecked)
    if results is not None and not any(r.status in ("pass", "fail") for r in results):
        errors.append("no check verified anything (every check was skipped or could not run)")
    if fails:
        return Verdict("fail", tuple(fails + errors))
    if errors:
        return Verdict("error", tuple(errors))
    return Verdict("pass", () if results is not None else ("load only: no checks ran",))


def verdict_of_results(doc: Mapping[str, Any]) -> Verdict:
    """The verdict a results document holds (older documents: recomputed from their checks)."""
    value = doc.get("verdict")
    reasons = tuple(doc.get("verdict_reasons") or ())
    if value not in VERDICTS:
        return verdict(doc.get("checks") or [])
    return Verdict(str(value), reasons)


# ---------------------------------------------------------------------------------------------
# results.json
def read_results(path: str | Path, *, required: bool = False) -> dict[str, Any] | None:
    """results.json of a run or baseline; None when the run was never checked (unless ``required``)."""
    p = Path(path)
    if p.is_dir() or p.name == RUN_FILE:
        p = (p if p.is_dir() else p.parent) / RESULTS_FILE
    if not p.is_file():
        if required:
            raise RunDirError(f"no results at {p}", value=str(p), hint="run `loadcheck check RUNS/<run-id>` first")
        return None
    data = _versioned(p, "schema_version", RESULTS_VERSIONS_READ, "`loadcheck check RUNS/<id>`")
    for key in ("routes", "checks", "verdict"):
        if key not in data:
            raise RunDirError(f"{p}: lacks {key!r}", value=str(p), hint="re-create it with `loadcheck check RUNS/<id>`")
    return data


# How much a check's status says about the system: pass and fail read their data; skipped had
# nothing to judge; error could not read it. A later document with less evidence for any check
# than the one in place does not replace it.
_EVIDENCE_RANK = {"pass": 2, "fail": 2, "skipped": 1, "error": 0}


def less_evidence(new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    """The checks for which ``new`` holds less evidence than ``old`` (by check name)."""
    old_rank = {c["name"]: _EVIDENCE_RANK.get(c.get("status", "error"), 0) for c in old.get("checks") or []}
    worse = []
    for c in new.get("checks") or []:
        before = old_rank.get(c["name"])
        if before is not None and _EVIDENCE_RANK.get(c.get("status", "error"), 0) < before:
            worse.append(c["name"])
    return worse


@dataclass(frozen=True)
class ResultsWrite:
    """Where a results document went: ``path`` is results.json or, when the document holds less
    evidence than the one in place, a file in ``results-history/`` (``kept`` names the checks
    that would have lost evidence)."""

    path: Path
    replaced: Path | None = None
    kept: tuple[str, ...] = ()


def _history_path(run_dir: Path, doc: Mapping[str, Any], suffix: str) -> Path:
    stamp = str(doc.get("ended_at") or now_iso()).replace(":", "").replace("+0000", "Z")
    hist = run_dir / HISTORY_DIR
    hist.mkdir(exist_ok=True)
    path = hist / f"results-{stamp}{suffix}.json"
    n = 1
    while path.exists():
        path = hist / f"results-{stamp}{suffix}-{n}.json"
        n += 1
    return path


def write_results(run_dir: Path, doc: dict[str, Any]) -> ResultsWrite:
    """Write a results document without ever losing evidence.

    The results.json in place, if any, is first copied into ``results-history/``. The new
    document then replaces it, unless it holds less evidence for some check (a check that read
    data before now could not): then results.json stays and the new document goes into the
    history only.
    """
    run_dir = Path(run_dir)
    current = run_dir / RESULTS_FILE
    old: dict[str, Any] | None = None
    if current.is_file():
        try:
            old = json.loads(current.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None  # a damaged results.json holds no evidence; it is still kept below
    if old is not None and isinstance(old, dict):
        worse = less_evidence(doc, old)
        if worse:
            path = _history_path(run_dir, doc, "-not-current")
            write_json_atomic(path, doc)
            return ResultsWrite(path=path, kept=tuple(worse))
    replaced = None
    if current.is_file():
        replaced = _history_path(run_dir, old or {}, "")
        replaced.write_bytes(current.read_bytes())
    write_json_atomic(current, doc)
    return ResultsWrite(path=current, replaced=replaced)


# ---------------------------------------------------------------------------------------------
# the ledger against what run.json says was written
@dataclass(frozen=True)
class LedgerState:
    """The ledger as found, judged against run.json.

    ``problems``: damage (fewer records than the writer wrote, a completed run's file without
    its gzip trailer or cut mid-record): the ledger cannot be trusted and nothing may pass on it.
    ``cut``: files cut mid-record by a killed writer of an interrupted run (``file:line``): the
    records before the cut are intact, the tail is unknown.
    """

    records: int
    files: int
    problems: tuple[str, ...] = ()
    cut: tuple[str, ...] = ()

    @property
    def tail_unknown(self) -> bool:
        """True when requests may have been sent that the ledger does not hold."""
        return bool(self.cut) or bool(self.problems)


def ledger_state(run_dir: Path, run: Mapping[str, Any]) -> LedgerState:
    files = scan_ledger(Path(run_dir))
    total = sum(f.records for f in files)
    complete = run.get("status") == "complete"
    problems: list[str] = []
    cut: list[str] = []
    written = run.get("ledger_records")
    if isinstance(written, int) and total < written:
        where = ", ".join(f"{f.path.name}: {f.records}" for f in files) or "no ledger files in ledger/"
        problems.append(f"the ledger holds {total} record(s) but run.json says {written} were written ({where})")
    by_worker: dict[str, int] = {}
    for f in files:
        by_worker[f.worker] = by_worker.get(f.worker, 0) + f.records
    for name, w in (run.get("workers") or {}).items():
        expected = w.get("records") if isinstance(w, Mapping) else None
        if isinstance(expected, int) and by_worker.get(name, 0) < expected:
            problems.append(
                f"worker {name}: the ledger holds {by_worker.get(name, 0)} of the {expected} record(s) run.json says it sent"
            )
    for f in files:
        if f.cut_line is not None:
            (problems if complete else cut).append(
                f"{f.path}:{f.cut_line} ends mid-record ({f.records} record(s) before it readable)"
            )
        elif complete and not f.trailer:
            problems.append(f"{f.path} has no gzip end-of-stream (trailer) after {f.records} record(s): it was cut")
    if complete and not files and written is None:
        problems.append("run.json says the run completed, but ledger/ holds no ledger file")
    return LedgerState(total, len(files), tuple(problems), tuple(cut))
