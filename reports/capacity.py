"""Capacity planning: the knee of a step run, the capacity a target rate needs, hot keys, cost.

    analyse_steps(run_dir, slos=..., provisioned_wcu=...) -> [RouteKnee]   from a step run's ledger
    workload_profile(run_dir, description) -> Profile                     item sizes, read kinds, routes
    needs(profile, target_rate=..., mix=...) -> Needs                     RCU/WCU per second
    hot_key_warnings(needs) -> [str]

``reports.plan.build_plan(...)`` assembles these into what ``capacity.json`` holds.

**Knee.** Each step of a ``--shape step`` run holds one arrival rate for ``step_duration_s``.
For each route, a step is *good* when it had requests, no 429, no error (no status, timeout,
5xx), its latencies met the route's SLOs (``--slo``, the threshold syntax of
:mod:`loadcheck.core.thresholds`: any ``pNN`` or ``max``, judged on the step's requests as run
thresholds are, from an HDR histogram), and, for the route that writes, the
table did not consume more WCU per second than provisioned: a step above the provisioned rate
that was not throttled only lived on the burst bucket (up to 300 s of unused capacity,
docs/aws-behaviour.md §7.3) and cannot be sustained. The knee is the highest step rate such that it
and every lower step were good (a noisy pass above a failure is not trusted). Requests belong to
the step in which they were *intended* to be sent (``t_intended_ms``).

**Routes.** Nothing here knows the API. Which routes each ``--mix`` kind sends is measured from
the run's ledger (each record names its kind); the routes that write are those whose requests
declared a write (``item_key``); the routes that read are the other routes the stack
description's table function serves (``StackDescription.table_routes``).

**Capacity units** (docs/aws-behaviour.md §7.1, §7.2): a write costs ``ceil(item bytes / 1 KB)`` WCU
(sizes from the ledger's items, by :mod:`loadcheck.core.plain_items`). A read that names the hash
key (a query parameter or a path variable of that name, e.g. ``GET /events?date=``) is a Query of
one page: ``ceil(page bytes / 4 KB)`` x 0.5 RCU (eventually consistent, rounded once per page).
Any other read (the reference stack's unfiltered ``GET /events``) is a Scan: it costs by the items it *evaluates* (not returns), up
to ``limit`` items or 1 MB per page, and paging through the table costs its whole size:
``ceil(table bytes / 4 KB)`` x 0.5 RCU spread over ``ceil(table bytes / 1 MB)`` pages.

**Hot keys.** The table's hash key is ``date``: every event of a day lands on one partition key,
and one key is limited to 1,000 WCU/s and 3,000 RCU/s whatever the table's capacity (§7.3
"per-partition hard limits"). The load generator spreads its keys over a few far-future dates;
production writes today's date, so the planner judges the worst case: all writes on one key.

Recommendations use a target utilisation (default 70 %, the DynamoDB console's default
auto-scaling target) so the table is not planned to run at its throttling edge.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loadcheck.core import histograms, rundir
from loadcheck.core.description import PATH_VARIABLE, StackDescription
from loadcheck.core.errors import ConfigError
from loadcheck.core.ledger import charged_write, outcome, read_ledger
from loadcheck.core.plain_items import item_size, write_units
from loadcheck.core.runconfig import ALL_ROUTES
from loadcheck.core.thresholds import Threshold, format_limit, latency_ms, parse_threshold

WRITE_UNIT = 1024
READ_UNIT = 4096
PAGE_BYTES = 1024 * 1024  # Query/Scan read at most 1 MB per page (§7.2)
KEY_WCU_LIMIT = 1000.0  # per partition key per second (§7.3)
KEY_RCU_LIMIT = 3000.0
DEFAULT_LIMIT = 25  # a read's page size when the ledger shows no ?limit= (the reference handler's default)
DEFAULT_UTILISATION = 0.7


# ------------------------------------------------------------------------------------------------
# Knee


@dataclass(kw_only=True)
class StepResult:
    rate: float  # the step's arrival rate, all routes
    requests: int
    offered_rps: float  # this route's requests per second in the step
    ok_rps: float  # 2xx per second
    p95_ms: float | None
    throttled: int
    errors: int
    consumed_wcu_per_s: float | None  # write routes only
    ok: bool
    reason: str | None
    judged: bool = True  # False: the route had no request in this step


@dataclass(kw_only=True)
class RouteKnee:
    route: str
    slo_p95_ms: float | None  # the limit of a p95 SLO on this route, if any (the knee plot draws it)
    steps: list[StepResult]
    knee_rate: float | None  # None: even the first step failed
    first_failure: str | None
    slos: list[str] = field(default_factory=list)  # every latency SLO judged on this route, as written


_OLD_SLO = re.compile(r"(?P<route>.+?)\s*=\s*p95\s*:\s*(?P<ms>[0-9.]+)", re.IGNORECASE)


def parse_slo(value: str) -> tuple[Threshold, str | None]:
    """``--slo``: a latency threshold of :mod:`loadcheck.core.thresholds` (``'POST /events:p95<300ms'``,
    any ``pNN`` or ``max``; ``all`` or no route: every route), and a deprecation note when it is
    written the older way (``'POST /events=p95:300'``: p95 at most 300 ms)."""
    text = str(value).strip()
    old = _OLD_SLO.fullmatch(text) if "<" not in text else None
    if old is not None:
        try:
            ms = float(old.group("ms"))
        except ValueError:
            ms = -1.0
        if ms > 0:
            t = parse_threshold(f"{old.group('route')}:p95<={ms:g}ms", option="--slo")
            return t, f"--slo {value!r} is deprecated: write --slo '{t}'"
    t = parse_threshold(text, option="--slo")
    if t.is_rate:
        raise ConfigError(
            f"--slo: {value!r} is a rate; capacity SLOs are latencies",
            value=value,
            hint="every 429 or server error already ends a route's knee; write a latency SLO, "
            "e.g. --slo 'POST /events:p99<300ms'",
        )
    return t, None


def _slo_list(slos: Iterable[Threshold] | Mapping[str, float] | None) -> list[Threshold]:
    """SLOs as thresholds; a mapping ``{route: ms}`` is a p95 of at most ``ms`` per route."""
    if slos is None:
        return []
    if isinstance(slos, Mapping):
        return [Threshold(metric="p95", limit=float(ms), route=route, inclusive=True) for route, ms in slos.items()]
    return list(slos)


def _slo_breaks(slos: list[Threshold], latencies_ms: list[float]) -> list[str]:
    """Each SLO a step's latencies break, judged as run thresholds are (HDR, :mod:`loadcheck.core.thresholds`)."""
    if not slos or not latencies_ms:
        return []
    h = histograms.new_histogram()
    for ms in latencies_ms:
        h.record_value(histograms.to_us(ms))
    out = []
    for t in slos:
        actual = latency_ms(t, h)
        if not t.holds(actual):
            out.append(
                f"{t.metric} {actual:.0f} ms breaks the SLO {t.metric}{'<=' if t.inclusive else '<'}{format_limit(t)}"
            )
    return out


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def step_plan(run: dict[str, Any]) -> tuple[list[float], float]:
    opts = run.get("options") or {}
    steps, dur = opts.get("steps") or [], opts.get("step_duration_s")
    if opts.get("shape") != "step" or not steps or not dur:
        raise ConfigError(
            f"run {run.get('run_id')} is not a step run (shape {opts.get('shape')!r})",
            value=opts.get("shape"),
            hint="pass a run made with `loadcheck run --shape step --steps 1,2,4,8 --step-duration 20s`, "
            "or let `loadcheck capacity` drive one",
        )
    return [float(s) for s in steps], float(dur)


def analyse_steps(
    run_dir: str | Path,
    *,
    slos: Iterable[Threshold] | Mapping[str, float] | None = None,
    provisioned_wcu: float | None = None,
    burst_tolerance: float = 1.1,
) -> list[RouteKnee]:
    """Per-route step results and knee of a step run (see the module docstring)."""
    rd = rundir.run_dir_of(run_dir)
    steps, dur = step_plan(rundir.read_run(rd))
    slo_list = _slo_list(slos)

    records = list(read_ledger(rd))
    if not records:
        return []
    origin = min(float(r.get("t_intended_ms") or r["t_start_ms"]) for r in records)
    cells: dict[str, dict[int, dict[str, Any]]] = defaultdict(
        lambda: defaultdict(lambda: {"n": 0, "ok": 0, "thr": 0, "err": 0, "lat": [], "wcu": 0.0, "writes": False})
    )
    for rec in records:
        i = int((float(rec.get("t_intended_ms") or rec["t_start_ms"]) - origin) / 1000.0 // dur)
        if not 0 <= i < len(steps):
            continue  # a straggler sent after the plan ended
        c = cells[rec["route"]][i]
        status = int(rec.get("status") or 0)
        c["n"] += 1
        c["lat"].append(float(rec.get("latency_ms") or 0.0))
        kind = outcome(rec)
        if kind == "ok":
            c["ok"] += 1
        elif status == 429:
            c["thr"] += 1
        elif kind == "unknown":
            c["err"] += 1
        if rec.get("item_key") is not None:
            c["writes"] = True
            if charged_write(status):
                c["wcu"] += write_units(item_size(rec["item"])) if rec.get("item") else 1
    out = []
    for route in sorted(cells):
        route_slos = [t for t in slo_list if t.route in (route, ALL_ROUTES)]
        slo = next((t.limit for t in route_slos if t.metric == "p95"), None)
        results: list[StepResult] = []
        for i, rate in enumerate(steps):
            cell = cells[route].get(i)
            if cell is None:  # a low step may send a rare route no request at all: nothing to judge
                results.append(
                    StepResult(
                        rate=rate,
                        requests=0,
                        offered_rps=0.0,
                        ok_rps=0.0,
                        p95_ms=None,
                        throttled=0,
                        errors=0,
                        consumed_wcu_per_s=None,
                        ok=True,
                        judged=False,
                        reason="no requests in this step (not judged)",
                    )
                )
                continue
            c = cell
            p95 = _p95(c["lat"])
            wcu_s = c["wcu"] / dur if c["writes"] else None
            reasons = []
            if c["thr"]:
                reasons.append(f"{c['thr']} throttled (429)")
            if c["err"]:
                reasons.append(f"{c['err']} errors")
            reasons += _slo_breaks(route_slos, c["lat"])
            if wcu_s is not None and provisioned_wcu and wcu_s > provisioned_wcu * burst_tolerance and not c["thr"]:
                reasons.append(
                    f"consumed {wcu_s:.2f} WCU/s > provisioned {provisioned_wcu:g}: served from burst, not sustainable"
                )
            results.append(
                StepResult(
                    rate=rate,
                    requests=c["n"],
                    offered_rps=round(c["n"] / dur, 3),
                    ok_rps=round(c["ok"] / dur, 3),
                    p95_ms=p95,
                    throttled=c["thr"],
                    errors=c["err"],
                    consumed_wcu_per_s=None if wcu_s is None else round(wcu_s, 3),
                    ok=not reasons,
                    reason="; ".join(reasons) or None,
                )
            )
        knee, first = None, None
        for s in results:
            if not s.judged:
                continue
            if not s.ok:
                first = f"step {s.rate:g} req/s: {s.reason}"
                break
            knee = s.rate
        out.append(
            RouteKnee(
                route=route,
                slo_p95_ms=slo,
                steps=results,
                knee_rate=knee,
                first_failure=first,
                slos=[str(t) for t in route_slos],
            )
        )
    return out


# ------------------------------------------------------------------------------------------------
# Workload profile and needs


@dataclass(kw_only=True)
class Profile:
    write_item_bytes: float  # mean item size of the run's writes
    write_wcu: float  # mean WCU per write
    read_limit: int  # page size of GET /events
    scan_share: float  # fraction of GET /events without ?date= (Scans)
    dates_written: int  # distinct hash keys the run wrote
    source: str
    # Measured from the ledger: kind -> {route: share of the kind's requests}; the routes that wrote
    # and the table routes that read.
    kind_routes: dict[str, dict[str, float]] = field(default_factory=dict)
    kind_requests: dict[str, int] = field(default_factory=dict)  # the run's own mix, as sent
    write_routes: tuple[str, ...] = ()
    read_routes: tuple[str, ...] = ()


def workload_profile(
    run_dir: str | Path | None, description: StackDescription, *, default_item_bytes: float = 120.0
) -> Profile:
    """Item sizes, page size, Scan share and each kind's routes from a run's ledger (defaults when
    none is given), judged by the stack ``description`` (its table routes and hash key)."""
    if run_dir is None:
        return Profile(
            write_item_bytes=default_item_bytes,
            write_wcu=math.ceil(default_item_bytes / WRITE_UNIT),
            read_limit=DEFAULT_LIMIT,
            scan_share=0.0,
            dates_written=1,
            source="defaults (no run)",
        )

    hash_key = description.table.hash_key
    table_routes = set(description.table_routes)
    sizes, units, limits, reads, scans, dates = [], [], [], 0, 0, set()
    kinds: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    write_routes: set[str] = set()
    read_routes: set[str] = set()
    for rec in read_ledger(rundir.run_dir_of(run_dir)):
        route = str(rec.get("route"))
        if rec.get("kind"):
            kinds[str(rec["kind"])][route] += 1
        if rec.get("item_key") is not None:
            write_routes.add(route)
            if rec.get("item"):
                s = item_size(rec["item"])
                sizes.append(s)
                units.append(write_units(s))
                dates.add(str(rec["item_key"].get(hash_key)))
        elif route in table_routes:
            reads += 1
            read_routes.add(route)
            q = parse_qs(urlsplit(str(rec.get("path") or "")).query)
            in_path = any(m.group(1) == hash_key for m in PATH_VARIABLE.finditer(route.split(" ", 1)[-1]))
            if hash_key not in q and not in_path:
                scans += 1
            if q.get("limit"):
                with contextlib.suppress(ValueError):
                    limits.append(int(q["limit"][0]))
    return Profile(
        write_item_bytes=sum(sizes) / len(sizes) if sizes else default_item_bytes,
        write_wcu=sum(units) / len(units) if units else math.ceil(default_item_bytes / WRITE_UNIT),
        read_limit=round(sum(limits) / len(limits)) if limits else DEFAULT_LIMIT,
        scan_share=scans / reads if reads else 0.0,
        dates_written=len(dates) or 1,
        source=f"ledger of {Path(run_dir).name}: {len(sizes)} writes, {reads} reads",
        kind_routes={k: {r: n / sum(c.values()) for r, n in c.items()} for k, c in kinds.items()},
        kind_requests={k: sum(c.values()) for k, c in kinds.items()},
        write_routes=tuple(sorted(write_routes)),
        read_routes=tuple(sorted(read_routes - write_routes)),
    )


def query_page_rcu(items: int, item_bytes: float, *, consistent: bool = False) -> float:
    """One Query page: the page's bytes summed, rounded up to 4 KB once, half if eventually consistent."""
    page = min(items * item_bytes, PAGE_BYTES)
    units = max(1, math.ceil(page / READ_UNIT))
    return float(units) if consistent else units / 2.0


def scan_page_rcu(limit: int, item_bytes: float, *, consistent: bool = False) -> float:
    """One Scan page evaluates up to ``limit`` items or 1 MB: charged by items evaluated, not returned."""
    return query_page_rcu(limit, item_bytes, consistent=consistent)


def full_scan_rcu(table_items: int, item_bytes: float, *, consistent: bool = False) -> tuple[float, int]:
    """(RCU, pages) to Scan a whole table of ``table_items`` items."""
    total = table_items * item_bytes
    pages = max(1, math.ceil(total / PAGE_BYTES))
    units = max(1, math.ceil(total / READ_UNIT))
    return (float(units) if consistent else units / 2.0), pages


@dataclass(kw_only=True)
class Needs:
    target_rate: float
    mix: dict[str, int]
    route_rps: dict[str, float]
    writes_per_s: float
    reads_per_s: float
    wcu_per_s: float
    rcu_per_s: float
    query_rcu_per_request: float
    scan_rcu_per_request: float
    scan_share: float
    profile: Profile
    utilisation: float
    recommended_wcu: int
    recommended_rcu: int
    notes: list[str] = field(default_factory=list)


def route_rates(target_rate: float, mix: dict[str, int], kind_routes: dict[str, dict[str, float]]) -> dict[str, float]:
    """Requests/s per route at ``target_rate``: the mix's kinds, each split over the routes it sent
    in the measured run (``Profile.kind_routes``)."""
    total = sum(mix.values())
    if total <= 0:
        raise ConfigError(f"--mix {mix!r} has no weight", value=mix, hint="e.g. --mix writes=8,reads=1,search=1")
    out: dict[str, float] = {}
    for kind, weight in mix.items():
        if weight and kind not in kind_routes:
            raise ConfigError(
                f"--mix: the measured run sent no request of kind {kind!r}",
                value=mix,
                hint=f"kinds in the run: {', '.join(kind_routes) or 'none (a ledger without kinds)'}",
            )
        for route, share in kind_routes.get(kind, {}).items():
            out[route] = out.get(route, 0.0) + target_rate * weight / total * share
    return out


def needs(
    profile: Profile,
    *,
    target_rate: float,
    mix: dict[str, int],
    utilisation: float = DEFAULT_UTILISATION,
    table_items: int | None = None,
) -> Needs:
    if not target_rate > 0:
        raise ConfigError(
            f"--target-rate: {target_rate!r} must be above 0", value=target_rate, hint="e.g. --target-rate 50"
        )
    if not 0 < utilisation <= 1:
        raise ConfigError(
            f"--utilisation: {utilisation!r} is outside (0, 1]", value=utilisation, hint="e.g. --utilisation 0.7"
        )
    mix = mix or dict(profile.kind_requests)  # no --mix: the measured run's own
    rates = route_rates(target_rate, mix, profile.kind_routes)
    writes = sum(rates.get(r, 0.0) for r in profile.write_routes)
    reads = sum(rates.get(r, 0.0) for r in profile.read_routes)
    q_rcu = query_page_rcu(profile.read_limit, profile.write_item_bytes)
    s_rcu = scan_page_rcu(profile.read_limit, profile.write_item_bytes)
    wcu = writes * profile.write_wcu
    rcu = reads * ((1 - profile.scan_share) * q_rcu + profile.scan_share * s_rcu)
    notes = [
        f"writes: {profile.write_item_bytes:.0f} B per item on average -> {profile.write_wcu:g} WCU each (1 KB units)",
        f"reads: a Query page of {profile.read_limit} items costs {q_rcu:g} RCU (4 KB units, eventually consistent)",
    ]
    if profile.scan_share:
        notes.append(
            f"{100 * profile.scan_share:.0f}% of reads ({', '.join(profile.read_routes)}) named no hash key: "
            "each is a Scan page costing "
            f"{s_rcu:g} RCU for the {profile.read_limit} items it evaluates"
        )
    if table_items:
        full, pages = full_scan_rcu(table_items, profile.write_item_bytes)
        notes.append(
            f"an unfiltered client paging through {table_items:,} items reads {pages} page(s) of <= 1 MB "
            f"and costs {full:,.1f} RCU: Scan charges every item evaluated"
        )
    if profile.dates_written > 1:
        notes.append(
            f"the measured run spread its writes over {profile.dates_written} dates; production writes "
            "today's date, so hot-key limits are judged for a single key"
        )
    return Needs(
        target_rate=target_rate,
        mix=dict(mix),
        route_rps=rates,
        writes_per_s=writes,
        reads_per_s=reads,
        wcu_per_s=wcu,
        rcu_per_s=rcu,
        query_rcu_per_request=q_rcu,
        scan_rcu_per_request=s_rcu,
        scan_share=profile.scan_share,
        profile=profile,
        utilisation=utilisation,
        recommended_wcu=max(1, math.ceil(wcu / utilisation)),
        recommended_rcu=max(1, math.ceil(rcu / utilisation)),
        notes=notes,
    )


def hot_key_warnings(n: Needs) -> list[str]:
    """Per-key limits (§7.3) under the production key pattern: one ``date`` per day takes everything."""
    out = []
    if n.wcu_per_s > KEY_WCU_LIMIT:
        out.append(
            f"hot key: {n.wcu_per_s:,.0f} WCU/s of writes all land on today's `date` key, above the "
            f"{KEY_WCU_LIMIT:,.0f} WCU/s one partition key can take whatever the table's capacity; "
            "shard the hash key (e.g. date#N) or choose a higher-cardinality key"
        )
    query_rcu = n.reads_per_s * (1 - n.scan_share) * n.query_rcu_per_request
    if query_rcu > KEY_RCU_LIMIT:
        out.append(
            f"hot key: {query_rcu:,.0f} RCU/s of Queries on one `date` key, above the {KEY_RCU_LIMIT:,.0f} "
            "RCU/s one partition key can serve; cache reads or shard the key"
        )
    return out


def knees_to_dict(knees: list[RouteKnee]) -> list[dict[str, Any]]:
    return [asdict(k) for k in knees]
