"""Chaos during a run: the ``--chaos`` spec, the outage record, and which requests an outage covers.

    kill:gateway@10s      SIGKILL the gateway service 10 s into the load (the load's own clock)
    kill:lambda-env@5s    SIGKILL one Lambda execution environment (the lambda service replaces it)

Targets: the four services (``aws``, ``search``, ``lambda``, ``gateway``) and ``lambda-env``.
The supervisor restarts the stateless services (:data:`RESTARTABLE`) on the port they had and
records each death as an :class:`Outage` in ``<state>/outages.json``; ``loadcheck run`` copies the
outages of its run into run.json (``outages``, ISO times). The aws endpoint holds the table, its
logs and metrics in memory: its death is :attr:`Outage.fatal` (the table is gone; nothing can be
reconciled), so the supervisor stops the stack and the run's verdict says so
(:func:`loadcheck.core.rundir.verdict`, :func:`loadcheck.core.rundir.table_lost`).

A request is *in* an outage (:func:`covering`) when its time on the wire, from ``t_start_ms`` to
its end, overlaps the outage's window; the window opens :data:`DETECT_SLACK_S` before the
supervisor noticed the death (it polls every 0.2 s) plus what the service buffers
(:data:`BUFFERED_S`: the gateway's access-log records answered just before a SIGKILL die with it).
Failures of such requests are the outage's (indeterminate), not the system's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError
from loadcheck.core.runconfig import parse_duration
from loadcheck.core.rundir import epoch_s, iso_utc
from loadcheck.core.state import OUTAGES_FILE, write_json_atomic

SERVICES = ("aws", "search", "lambda", "gateway")
TARGETS = (*SERVICES, "lambda-env")
RESTARTABLE = ("search", "lambda", "gateway")  # stateless: a restart loses nothing the run needs
ACTIONS = ("kill",)
DETECT_SLACK_S = 0.25  # the supervisor polls its children every 0.2 s
# How long a service holds what it owes others before shipping it: the gateway batches access-log
# records and the lambda service log events every 1 s (docs/internals.md), so a SIGKILL loses what
# was answered up to that long before the death; +1 s for the batch in flight.
BUFFERED_S = {"gateway": 2.0, "lambda": 2.0}
RESTART_TIMEOUT_S = 30.0  # the stated bound on a restart (docs/reliability.md)

_SPEC = re.compile(r"^(?P<action>[a-z]+):(?P<target>[a-z-]+)@(?P<at>.+)$")


@dataclass(frozen=True)
class ChaosAction:
    """One ``--chaos`` action: ``action`` the ``target`` at ``at_s`` seconds into the load."""

    action: str
    target: str
    at_s: float

    def __str__(self) -> str:
        return f"{self.action}:{self.target}@{self.at_s:g}s"


def parse_chaos(text: str, *, option: str = "--chaos") -> ChaosAction:
    """``kill:gateway@10s`` -> ChaosAction; anything else is a ConfigError naming the part and the fix."""
    hint = f"write ACTION:TARGET@TIME, e.g. {option} kill:gateway@10s (targets: {', '.join(TARGETS)})"
    m = _SPEC.match(text.strip())
    if not m:
        raise ConfigError(f"{option}: {text!r} is not a chaos action", value=text, hint=hint)
    if m["action"] not in ACTIONS:
        raise ConfigError(f"{option}: action {m['action']!r} is unknown", value=text, hint=hint)
    if m["target"] not in TARGETS:
        raise ConfigError(f"{option}: target {m['target']!r} is unknown", value=text, hint=hint)
    return ChaosAction(m["action"], m["target"], parse_duration(m["at"], option=option))


@dataclass
class Outage:
    """One service death the supervisor saw (or one killed Lambda environment).

    Times are epoch seconds here and in outages.json, ISO-8601 in run.json (:meth:`to_run`).
    ``up_at`` is None when the service was not brought back; ``fatal`` when its death took
    state the run needs (the aws endpoint: the table). ``requests`` counts the run's requests the
    outage covered and ``failed`` how many of them failed (both filled in by ``loadcheck run``).
    """

    service: str
    pid: int
    down_at: float
    detected_at: float
    exit_status: int | None = None
    up_at: float | None = None
    fatal: bool = False
    reason: str = ""
    requests: int | None = None
    failed: int | None = None

    @property
    def restart_s(self) -> float | None:
        return None if self.up_at is None else round(self.up_at - self.detected_at, 3)

    def window_ms(self) -> tuple[float, float]:
        """The outage as epoch milliseconds, opened early by what the service buffered
        (:data:`BUFFERED_S`); an outage not (yet) over lasts forever."""
        end = self.up_at if self.up_at is not None else float("inf")
        lead = DETECT_SLACK_S + BUFFERED_S.get(self.service, 0.0)
        return (self.down_at - lead) * 1000.0, end * 1000.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_run(self) -> dict[str, Any]:
        """The run.json form: ISO times and the restart time."""
        return {
            **self.to_dict(),
            "down_at": iso_utc(self.down_at),
            "detected_at": iso_utc(self.detected_at),
            "up_at": iso_utc(self.up_at),
            "restart_s": self.restart_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outage:
        """From outages.json or run.json (times as epoch seconds or ISO text)."""
        return cls(
            service=str(data["service"]),
            pid=int(data.get("pid") or 0),
            down_at=epoch_s(data["down_at"]) or 0.0,
            detected_at=epoch_s(data.get("detected_at")) or epoch_s(data["down_at"]) or 0.0,
            exit_status=data.get("exit_status"),
            up_at=epoch_s(data.get("up_at")),
            fatal=bool(data.get("fatal")),
            reason=str(data.get("reason") or ""),
            requests=data.get("requests"),
            failed=data.get("failed"),
        )


def read_outages(state_dir: Path) -> list[Outage]:
    """The outages recorded in ``<state>/outages.json`` (none when the file is absent or damaged)."""
    try:
        data = json.loads((Path(state_dir) / OUTAGES_FILE).read_text(encoding="utf-8"))
        return [Outage.from_dict(o) for o in data.get("outages", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def record_outage(state_dir: Path, outage: Outage) -> None:
    """Add ``outage`` to outages.json, or replace the entry of the same service and pid."""
    kept = [o for o in read_outages(state_dir) if (o.service, o.pid) != (outage.service, outage.pid)]
    write_json_atomic(Path(state_dir) / OUTAGES_FILE, {"outages": [o.to_dict() for o in [*kept, outage]]})


def clear_outages(state_dir: Path) -> None:
    """A new stack starts with no outages."""
    (Path(state_dir) / OUTAGES_FILE).unlink(missing_ok=True)


def outages_of(run: Mapping[str, Any]) -> list[Outage]:
    """The outages run.json records."""
    return [Outage.from_dict(o) for o in run.get("outages") or []]


def covering(
    rec: Mapping[str, Any], outages: Iterable[Outage], *, services: Iterable[str] | None = None
) -> Outage | None:
    """The first outage (of ``services``, default any) a ledger record's time on the wire overlaps."""
    start = float(rec.get("t_start_ms") or 0.0)
    end = start + float(rec.get("latency_ms") or 0.0)
    wanted = set(services) if services is not None else None
    for o in outages:
        if wanted is not None and o.service not in wanted:
            continue
        lo, hi = o.window_ms()
        if start <= hi and end >= lo:
            return o
    return None
