"""The live view of ``loadcheck run``, drawn from the run's ``progress.json`` (docs/internals.md).

On a terminal, a table redrawn in place (rich): per route req/s (last 5 s), requests, p50/p95/p99
(from the route's HDR histogram so far, closed seconds only), answers by class (2xx, 3xx when
any, 4xx without 429, 429, 5xx, no answer), then elapsed/total, dropped arrivals, users busy of
the pool, and on the local stack the table's burst capacity left (the aws service's
``GET /_loadcheck/capacity``, read through the stack's admin client). Elsewhere (CI logs, a pipe),
one complete plain line every :data:`PLAIN_INTERVAL_S` seconds of the load's clock, never ``\\r``.

Locust's own WARNING, ERROR and CRITICAL lines (``CPU usage above 90%!``, a worker gone missing),
which go to ``locust.log`` and ``worker-N.log`` in the run directory, are shown as they appear
and listed again in the run's summary (:meth:`LiveView.summary_lines`).

The view only reads; it never decides anything about the run.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from loadcheck.core import histograms
from loadcheck.core.errors import LoadcheckError

PLAIN_INTERVAL_S = 5.0  # a plain line every 5 s of load (and one at the end)
BURST_POLL_S = 2.0  # the table's buckets are read at most this often
STATUS_CLASSES = ("2xx", "3xx", "4xx", "429", "5xx", "none")  # loadcheck.core.ledger.status_class
STATUS_HEADERS = {"none": "no\nanswer"}  # the table's header
STATUS_LABELS = {"none": "no-answer"}  # a plain line's label
PERCENTILES = (("p50", 50.0), ("p95", 95.0), ("p99", 99.0))
LOCUST_LOGS = ("locust.log", "worker-*.log")
# Locust's log format (locust/log.py): "[2026-12-02 08:30:00,123] host/WARNING/locust.runners: text"
_LOCUST_LINE = re.compile(r"^\[[^\]]*\] [^/\s]*/(?P<level>WARNING|ERROR|CRITICAL)/(?P<logger>[^:]+): (?P<message>.*)$")


# --------------------------------------------------------------------------------------------
# Figures


@dataclass(frozen=True)
class RouteFigures:
    """One row of the view: a route (or ``all``) so far."""

    route: str
    rps: float
    requests: int
    percentiles_ms: dict[str, float | None]
    status: dict[str, int]


def route_figures(progress: dict[str, Any]) -> list[RouteFigures]:
    """Per-route figures of a progress.json document, then ``all`` (its histograms merged)."""
    rows: list[RouteFigures] = []
    merged = histograms.new_histogram()
    total_status: dict[str, int] = {}
    for route, r in sorted((progress.get("routes") or {}).items()):
        hist = histograms.decode(r["hdr"]) if r.get("hdr") else None
        if hist is not None:
            merged.add(hist)
        status = {k: int(v) for k, v in (r.get("status") or {}).items()}
        for k, v in status.items():
            total_status[k] = total_status.get(k, 0) + v
        rows.append(RouteFigures(route, float(r.get("rps") or 0.0), int(r.get("requests") or 0), _pcts(hist), status))
    if len(rows) != 1:
        rows.append(
            RouteFigures(
                "all",
                round(sum(r.rps for r in rows), 1),
                sum(r.requests for r in rows),
                _pcts(merged if merged.get_total_count() else None),
                total_status,
            )
        )
    return rows


def _pcts(hist: Any) -> dict[str, float | None]:
    if hist is None or not hist.get_total_count():
        return {name: None for name, _ in PERCENTILES}
    return {name: hist.get_value_at_percentile(p) / 1000.0 for name, p in PERCENTILES}


@dataclass(frozen=True)
class Burst:
    """The table's burst buckets on the local stack: capacity units left of what they hold."""

    table: str
    on_demand: bool
    write_left: float
    write_size: float
    read_left: float
    read_size: float

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any], table: str) -> Burst | None:
        """From the aws service's ``GET /_loadcheck/capacity`` answer; None when it lacks the table."""
        t = snapshot.get(table)
        if not isinstance(t, dict):
            return None
        return cls(
            table=table,
            on_demand=t.get("billing_mode") == "PAY_PER_REQUEST",
            write_left=float(t.get("write_level") or 0.0),
            write_size=float(t.get("write_bucket_capacity") or 0.0),
            read_left=float(t.get("read_level") or 0.0),
            read_size=float(t.get("read_bucket_capacity") or 0.0),
        )

    def describe(self) -> str:
        if self.on_demand:
            return f"table {self.table}: on-demand (no burst bucket)"
        return (
            f"table {self.table} burst left: write {_units(self.write_left, self.write_size)} WCU, "
            f"read {_units(self.read_left, self.read_size)} RCU"
        )

    def short(self) -> str:
        if self.on_demand:
            return "burst on-demand"
        return f"burst write {_share(self.write_left, self.write_size)} read {_share(self.read_left, self.read_size)}"


def _units(left: float, size: float) -> str:
    return f"{max(0.0, left):.0f}/{size:.0f} ({_share(left, size)})"


def _share(left: float, size: float) -> str:
    return f"{100.0 * max(0.0, left) / size:.0f}%" if size > 0 else "-"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10_000:
        return f"{value / 1000.0:.1f} s"
    return f"{value:.0f} ms" if value >= 100 else f"{value:.1f} ms"


def users_text(progress: dict[str, Any]) -> str | None:
    users = progress.get("users")
    if not isinstance(users, dict):
        return None
    if users.get("busy") is None:
        return f"users {users.get('pool', 0)}"
    return f"users busy {users['busy']}/{users.get('pool', 0)}"


def _clock(progress: dict[str, Any]) -> str:
    total = progress.get("duration_s")
    elapsed = float(progress.get("elapsed_s") or 0.0)
    return f"{elapsed:.0f}/{float(total):.0f} s" if total else f"{elapsed:.0f} s"


# --------------------------------------------------------------------------------------------
# Rendering


def render(
    progress: dict[str, Any], *, burst: Burst | None = None, warnings: Sequence[LocustWarning] = ()
) -> RenderableType:
    """The terminal view of one progress.json document."""
    if not progress:
        return Text("waiting for Locust to start (progress.json not written yet)", style="dim")
    head = Table.grid(padding=(0, 2))
    head.add_row(
        Text(f"run {progress.get('run_id', '?')}", style="bold", no_wrap=True), _bar(progress), _clock(progress)
    )
    figures = Text.assemble(
        f"{float(progress.get('rps') or 0.0):.1f} req/s   ",
        users_text(progress) or "users -",
        "   ",
        (
            f"dropped arrivals {progress.get('dropped_arrivals', 0)}",
            "yellow" if progress.get("dropped_arrivals") else "",
        ),
    )
    rows = route_figures(progress)
    classes = _classes(rows)
    # Only the route column gives way on a narrow terminal (its names wrap); figures never do.
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    table.add_column("route")
    for name in ("req/s", "requests", *(p for p, _ in PERCENTILES), *(STATUS_HEADERS.get(c, c) for c in classes)):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        cells: list[RenderableType] = [
            f"{row.rps:.1f}",
            str(row.requests),
            *(ms(row.percentiles_ms[p]) for p, _ in PERCENTILES),
        ]
        for c in classes:
            n = row.status.get(c, 0)
            style = "red" if n and c in ("5xx", "none") else "yellow" if n and c == "429" else ""
            cells.append(Text(str(n), style=style) if style else str(n))
        table.add_row(row.route, *cells, style="bold" if row.route == "all" else "")
    parts: list[RenderableType] = [head, figures, table]
    if burst is not None:
        parts.append(Text(burst.describe()))
    if warnings:
        parts.append(Text(f"Locust: {len(warnings)} warning(s), shown above", style="yellow"))
    return Group(*parts)


def _bar(progress: dict[str, Any]) -> RenderableType:
    total = float(progress.get("duration_s") or 0.0)
    if total <= 0:
        return Text("")
    return ProgressBar(total=total, completed=min(total, float(progress.get("elapsed_s") or 0.0)), width=24)


def _classes(rows: list[RouteFigures]) -> list[str]:
    """The answer classes shown: always 2xx, 4xx, 429, 5xx and no answer; 3xx when any."""
    seen = {c for r in rows for c, n in r.status.items() if n}
    return [c for c in STATUS_CLASSES if c != "3xx" or c in seen]


def plain_line(progress: dict[str, Any], *, burst: Burst | None = None) -> str:
    """One complete line for logs: the run so far, all routes together."""
    rows = route_figures(progress)
    every = rows[-1] if rows else RouteFigures("all", 0.0, 0, _pcts(None), {})
    status = " ".join(f"{STATUS_LABELS.get(c, c)} {every.status.get(c, 0)}" for c in _classes(rows))
    pcts = " ".join(f"{p} {ms(every.percentiles_ms[p])}" for p, _ in PERCENTILES)
    parts = [
        f"[{_clock(progress)}]",
        f"{float(progress.get('rps') or 0.0):.1f} req/s",
        f"requests {progress.get('requests', every.requests)}",
        status,
        pcts,
        users_text(progress),
        f"dropped {progress.get('dropped_arrivals', 0)}",
        burst.short() if burst is not None else None,
    ]
    return "progress " + "  ".join(p for p in parts if p)


# --------------------------------------------------------------------------------------------
# Locust's warnings


@dataclass(frozen=True)
class LocustWarning:
    source: str  # the log file's name: locust.log, worker-0.log, ...
    level: str
    logger: str
    message: str

    def __str__(self) -> str:
        return f"locust {self.level} ({self.source}, {self.logger}): {self.message}"


@dataclass
class LogWatch:
    """New WARNING/ERROR/CRITICAL lines of the Locust logs in a run directory, as they are written."""

    run_dir: Path
    offsets: dict[Path, int] = field(default_factory=dict)
    partial: dict[Path, bytes] = field(default_factory=dict)

    def poll(self) -> list[LocustWarning]:
        found: list[LocustWarning] = []
        paths = sorted({p for pattern in LOCUST_LOGS for p in self.run_dir.glob(pattern)})
        for path in paths:
            try:
                with path.open("rb") as fh:
                    fh.seek(self.offsets.get(path, 0))
                    data = fh.read()
            except OSError:
                continue
            self.offsets[path] = self.offsets.get(path, 0) + len(data)
            data = self.partial.pop(path, b"") + data
            lines = data.split(b"\n")
            if lines[-1]:
                self.partial[path] = lines[-1]  # a line still being written: read it whole next time
            for raw in lines[:-1]:
                m = _LOCUST_LINE.match(raw.decode("utf-8", "replace").rstrip("\r"))
                if m:
                    found.append(LocustWarning(path.name, m["level"], m["logger"], m["message"]))
        return found


# --------------------------------------------------------------------------------------------
# The view


class LiveView:
    """What ``loadcheck run`` shows while the load runs.

    ``burst`` reads the table's buckets (local stack: the aws service's capacity snapshot as
    :class:`Burst`); it is called at most every :data:`BURST_POLL_S` seconds and a failure only
    leaves the last figures. ``console`` is rich's (a recording one in tests); ``echo`` prints a
    plain line.
    """

    def __init__(
        self,
        *,
        run_dir: Path,
        tty: bool,
        burst: Callable[[], Burst | None] | None = None,
        console: Console | None = None,
        echo: Callable[[str], None] = click.echo,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.tty = tty
        self.watch = LogWatch(Path(run_dir))
        self.burst_source = burst
        self.console = console
        self.echo = echo
        self.clock = clock
        self.warnings: list[LocustWarning] = []
        self.burst: Burst | None = None
        self._burst_read_at: float | None = None
        self._live: Live | None = None
        self._next_plain_s = PLAIN_INTERVAL_S
        self._last: dict[str, Any] = {}

    @property
    def active(self) -> bool:
        return self._live is not None

    def update(self, progress: dict[str, Any], *, final: bool = False) -> None:
        """Show ``progress`` (a progress.json document; empty before Locust wrote one)."""
        for w in self.watch.poll():
            self.warnings.append(w)
            self.say(str(w))
        self._read_burst(force=final)
        if progress:
            self._last = progress
        if self.tty:
            self._draw(final)
        elif progress and (final or float(progress.get("elapsed_s") or 0.0) >= self._next_plain_s):
            self.echo(plain_line(progress, burst=self.burst))
            elapsed = float(progress.get("elapsed_s") or 0.0)
            while self._next_plain_s <= elapsed:
                self._next_plain_s += PLAIN_INTERVAL_S
        if final:
            self.close()

    def _draw(self, final: bool) -> None:
        view = render(self._last, burst=self.burst, warnings=self.warnings)
        if self._live is None:
            if final and not self._last:
                return
            self._live = Live(view, console=self.console or Console(), auto_refresh=False, transient=False)
            self._live.start()
        self._live.update(view, refresh=True)

    def say(self, message: str) -> None:
        """A message line: above the live table on a terminal, a plain line otherwise."""
        if self._live is not None:
            self._live.console.print(message, markup=False, highlight=False, soft_wrap=True)
        else:
            self.echo(message)

    def close(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.stop()

    def _read_burst(self, *, force: bool) -> None:
        if self.burst_source is None:
            return
        now = self.clock()
        if not force and self._burst_read_at is not None and now - self._burst_read_at < BURST_POLL_S:
            return
        self._burst_read_at = now
        # A stack busy or restarting (--chaos) must not stop the view: the last figures stay.
        # requests' errors are OSErrors (ConnectionError, Timeout); a reply of another shape is
        # a StackError or a ValueError.
        with contextlib.suppress(LoadcheckError, OSError, ValueError):
            self.burst = self.burst_source() or self.burst

    def summary_lines(self) -> list[str]:
        """Locust's warnings of the run, for the final summary (none: no lines)."""
        if not self.warnings:
            return []
        lines = [f"  Locust warned {len(self.warnings)} time(s) (run directory's Locust logs):"]
        counts: dict[str, int] = {}
        for w in self.warnings:
            counts[str(w)] = counts.get(str(w), 0) + 1
        for text, n in counts.items():
            lines.append(f"    {text}" + (f"  (x{n})" if n > 1 else ""))
        return lines
