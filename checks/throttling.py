"""throttling: the table throttled when, and as much as, its provisioned capacity says; clients
were told so with 429 + Retry-After; CloudWatch agrees with what clients saw.

Inputs: the ledger's requests that touch DynamoDB: the writes the workload declared (records
with an ``item_key``) and the requests on the routes served by the description's table function
(``table.function``: ``StackDescription.table_routes``), the table's provisioned capacity (DescribeTable), its ``AWS/DynamoDB``
metrics over the run's minutes (flushed first on the local stack), and, for classifying 429s
and 5xx, the access-log records of those requests.

Failures:

- **over_admission**: some interval accepted more WCU than ``300 s burst + rate x seconds``
  allows (throttle_model rule 1);
- **early_throttling**: throttling began before the table had even used its provisioned rate
  (rule 2);
- **refusals_mismatch**: after onset, observed refusals differ from the model's prediction by
  more than the stated tolerance (rule 3);
- **no_retry_after**: a throttled request answered 429 without ``Retry-After`` (the handler's
  promise; a gateway throttle, whose access-log record shows no integration, is exempt);
- **throttle_as_5xx**: a 5xx on a table route in a minute with throttle events whose
  access-log record shows no integration error: a throttle answered 5xx instead of 429;
- **throttle_metrics_absent**: clients saw 429s but Write/ReadThrottleEvents (or
  ThrottledRequests) are zero. The reverse is allowed: the handler's SDK retries can turn
  throttle events into a 2xx (one client 429 = several throttle events, §7.5);
- **consumed_mismatch**: ConsumedWriteCapacityUnits (Sum over the run's minutes) differs from
  the WCU of the writes that consumed capacity: 2xx writes and 409s (a failed conditional
  write still costs, §7.2), plus at most the writes whose outcome is unknown; exact. The
  metrics are per minute, so another client's writes in the run's first or last minute (a run
  or `loadcheck smoke` just before or after, other traffic) count too: when the metric exceeds
  the run's writes and the access log shows, in those minutes, charged writes on the table's
  write routes (POST, PUT, PATCH, DELETE) whose request ids the ledger does not hold, at least
  one WCU each, the excess is theirs: not a failure, a note naming them (figure
  ``other_clients_writes``). Writes that reach the table by another way than the API stay a
  ``consumed_mismatch``;
- **read_consumed_out_of_range**: ConsumedReadCapacityUnits outside [0.5 per 2xx read,
  ceil(bytes/4 KB) per 2xx read + 2], "within rounding", compared over the run's minutes
  before its last (the checks' own reads, this session's and earlier ones, land in the last
  minute and later; a run shorter than its last minute says so in the evidence).

Datapoints still short of the ledger when the budget ends are **not delivered yet** while the
run's end is younger than CloudWatch's delivery delay (``ctx.delivery_s``, docs/aws-behaviour.md
§2.6): the check answers ``error`` "not delivered yet: re-run `loadcheck check RUN` later"
(figure ``not_delivered``). Older than that (a re-run later), or on the local stack (flushed
before every read), a shortfall is judged: the rules above fail.

A run that never approached capacity (no refusal, peak offered load below half the burst) is
a ``pass`` whose summary says so and whose figure ``capacity_exercised`` is 0: the metric and
response-shape rules were still verified.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from checks import logsource
from checks.framework import CheckContext, budget_note, poll
from checks.metrics import TableMetrics, read_table_metrics
from loadcheck.core import throttle_model
from loadcheck.core.capacity import BURST_SECONDS
from loadcheck.core.ledger import charged_write, outcome
from loadcheck.core.plain_items import item_size, write_units
from loadcheck.core.results import CheckResult

NAME = "throttling"
PER_KIND = 4
KINDS = (
    "over_admission",
    "early_throttling",
    "refusals_mismatch",
    "no_retry_after",
    "throttle_as_5xx",
    "throttle_metrics_absent",
    "consumed_mismatch",
    "read_consumed_out_of_range",
)


@dataclass
class Req:
    t_ms: float
    status: int
    error: str | None
    latency_ms: float
    request_id: str | None
    retry_after: Any  # value, None (header absent) or ... (ledger does not record it)
    units: int = 0  # writes: WCU if accepted
    length: int | None = None

    @property
    def outcome(self) -> str:
        """``ok``, ``rejected`` or ``unknown``: :func:`loadcheck.core.ledger.outcome`."""
        return outcome({"status": self.status, "error": self.error})


@dataclass
class Gathered:
    writes: list[Req]
    reads: list[Req]
    conflict_units: int
    ledger_has_retry_after: bool


def _gather(ctx: CheckContext) -> Gathered:
    table_routes = set(ctx.description.table_routes)
    writes: list[Req] = []
    reads: list[Req] = []
    first_item: dict[str, int] = {}  # key -> size of the first acknowledged item (409s pay max(old, new))
    conflict_sizes: list[tuple[str, int]] = []
    has_ra = False
    for rec in ctx.ledger():
        if rec.get("route") not in table_routes and rec.get("item_key") is None:
            continue
        has_ra = has_ra or "retry_after" in rec
        req = Req(
            float(rec["t_start_ms"]),
            int(rec.get("status") or 0),
            rec.get("error"),
            float(rec.get("latency_ms") or 0.0),
            rec.get("request_id"),
            rec.get("retry_after", ...),
            length=rec.get("response_length"),
        )
        if rec.get("item_key") is not None:
            size = item_size(rec["item"]) if rec.get("item") else 0
            req.units = write_units(size)
            key = str(sorted(rec["item_key"].items()))
            if 200 <= req.status < 300:
                first_item.setdefault(key, size)
            elif req.status == 409:
                conflict_sizes.append((key, size))
            writes.append(req)
        else:
            reads.append(req)
    conflict_units = sum(write_units(max(size, first_item.get(key, 0))) for key, size in conflict_sizes)
    return Gathered(writes, reads, conflict_units, has_ra)


def _is_gateway_throttle(req: Req, logs: dict[str, logsource.LogRecord] | None, fmt: dict[str, str]) -> bool:
    """A 429 API Gateway itself answered (stage/route throttling) never reached the function."""
    if logs is None or not req.request_id or req.request_id not in logs:
        return False
    rec = logs[req.request_id]
    integration = [
        n for n, v in fmt.items() if v.strip() in ("$context.integrationStatus", "$context.integrationLatency")
    ]
    return bool(integration) and all(rec.get(n) in ("-", None) for n in integration)


def _integration_error(req: Req, logs: dict[str, logsource.LogRecord] | None, fmt: dict[str, str]) -> bool | None:
    """Whether the access log shows an integration error for ``req`` (None: no record to tell)."""
    if logs is None or not req.request_id or req.request_id not in logs:
        return None
    rec = logs[req.request_id]
    names = [
        n for n, v in fmt.items() if v.strip() in ("$context.integrationErrorMessage", "$context.integration.error")
    ]
    if not names:
        return None
    return any(rec.get(n) not in ("-", None, "") for n in names)


def run(ctx: CheckContext) -> CheckResult:
    budget = ctx.budget()
    g = _gather(ctx)
    if not g.writes and not g.reads:
        return CheckResult(
            NAME,
            "skipped",
            "the run sent no request that touches the table",
            reason="no declared write and no request on the table's routes "
            f"({', '.join(ctx.description.table_routes) or 'none'}) in the ledger",
        )
    if ctx.stack_note:
        return CheckResult(NAME, "error", f"cannot read the table's metrics: {ctx.stack_note}", reason=ctx.stack_note)
    table = ctx.target.table_name
    try:
        desc = ctx.client("dynamodb").describe_table(TableName=table)["Table"]
    except Exception as exc:  # noqa: BLE001 - no capacity, no model: error, never pass
        return CheckResult(NAME, "error", f"could not describe table {table}: {exc}", reason=str(exc))
    provisioned = (desc.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED") == "PROVISIONED"
    wcu = float(desc.get("ProvisionedThroughput", {}).get("WriteCapacityUnits") or 0)
    fmt = ctx.description.access_log.format
    logs = logsource.records_by_request_id(ctx)
    fails: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    counts: Counter[str] = Counter()

    def bad(kind: str, **detail: Any) -> None:
        counts[kind] += 1
        if len(fails[kind]) < PER_KIND:
            fails[kind].append({"kind": kind, **detail})

    notes: list[dict[str, Any]] = []
    # --- what clients were told ------------------------------------------------------------
    throttled_writes = [r for r in g.writes if r.status == 429 and not _is_gateway_throttle(r, logs, fmt)]
    throttled_reads = [r for r in g.reads if r.status == 429 and not _is_gateway_throttle(r, logs, fmt)]
    if not g.ledger_has_retry_after and (throttled_writes or throttled_reads):
        notes.append(
            {
                "kind": "note",
                "detail": "the ledger does not record Retry-After (no retry_after field): "
                "the header could not be verified",
            }
        )
    else:
        for r in throttled_writes + throttled_reads:
            if r.retry_after in (None, "", ...):
                bad("no_retry_after", request_id=r.request_id, t_ms=r.t_ms)

    # --- metrics -------------------------------------------------------------------------------
    window = ctx.run_window()
    certain = sum(r.units for r in g.writes if r.outcome == "ok") + g.conflict_units
    maybe = sum(r.units for r in g.writes if r.outcome == "unknown")
    # Reads are compared over the run's minutes before its last one: the checks' own reads
    # (this session's and any earlier `loadcheck check`) land in the last minute and later.
    last_minute_ms = window.end_ms // 60_000 * 60_000
    ok_reads = [r for r in g.reads if r.outcome == "ok" and r.t_ms < last_minute_ms]
    read_low = 0.5 * sum(1 for r in ok_reads if r.t_ms + r.latency_ms < last_minute_ms)
    read_high = (
        sum(max(1, math.ceil((r.length or 0) / 4096)) for r in ok_reads)
        + sum(1 for r in g.reads if r.outcome == "unknown" and r.t_ms < last_minute_ms)
        + 2
    )

    if certain <= 0 and not throttled_writes and not throttled_reads and not ok_reads:
        return CheckResult(
            NAME,
            "skipped",
            f"no request reached table {table}: no write landed, none was throttled, no read succeeded; "
            "nothing to hold to the capacity model",
            reason="no request reached the table",
            figures={"writes": len(g.writes), "reads": len(g.reads), "expected_wcu": certain},
        )

    def fetch() -> TableMetrics | Exception:
        try:
            return read_table_metrics(ctx.client("cloudwatch"), table, window.start_ms, window.end_ms)
        except Exception as exc:  # noqa: BLE001 - reported below
            return exc

    def complete(m: TableMetrics | Exception) -> bool:
        if isinstance(m, Exception):
            return False
        return (
            m.total("ConsumedWriteCapacityUnits") >= certain - 1e-6
            and (not throttled_writes or m.total("WriteThrottleEvents") > 0)
            and (not throttled_reads or m.total("ReadThrottleEvents") > 0)
            and _before(m, "ConsumedReadCapacityUnits", last_minute_ms) >= read_low - 1e-6
        )

    ctx.say(f"{NAME}: reading AWS/DynamoDB metrics for {table} ({budget_note(budget)})")
    metrics, settled = poll(
        fetch,
        complete,
        budget=budget,
        before_each=ctx.flush,
        initial_s=1.0,
        on_wait=lambda m, w: ctx.say(f"{NAME}: metrics not complete yet, waiting {w:.1f}s"),
    )
    if isinstance(metrics, Exception):
        return CheckResult(
            NAME, "error", f"could not read CloudWatch metrics for {table}: {metrics}", reason=str(metrics)
        )
    if not settled and ctx.still_in_delivery(window.end_ms):
        return CheckResult(
            NAME,
            "error",
            f"CloudWatch metrics for {table} {ctx.rerun_hint()} ({budget_note(budget)}; AWS publishes "
            f"them minutes late: {_shortfall(metrics, certain, throttled_writes, throttled_reads)})",
            reason=ctx.rerun_hint(),
            figures={
                "consumed_wcu_metric": metrics.total("ConsumedWriteCapacityUnits"),
                "expected_wcu": certain,
                "not_delivered": 1,
            },
        )
    wte, rte = metrics.total("WriteThrottleEvents"), metrics.total("ReadThrottleEvents")
    consumed_w, consumed_r = metrics.total("ConsumedWriteCapacityUnits"), metrics.total("ConsumedReadCapacityUnits")
    throttled_reqs = sum(metrics.throttled_requests.values())
    if throttled_writes and (wte <= 0 or metrics.throttled_requests.get("PutItem", 0.0) <= 0):
        bad(
            "throttle_metrics_absent",
            detail=f"clients saw {len(throttled_writes)} throttled writes but "
            f"WriteThrottleEvents={wte:g}, ThrottledRequests(PutItem)={metrics.throttled_requests.get('PutItem', 0):g}",
            request_ids=[r.request_id for r in throttled_writes[:5]],
        )
    if throttled_reads and rte <= 0:
        bad(
            "throttle_metrics_absent",
            detail=f"clients saw {len(throttled_reads)} throttled reads but ReadThrottleEvents={rte:g}",
            request_ids=[r.request_id for r in throttled_reads[:5]],
        )
    others: list[str] = []
    if consumed_w > certain + maybe + 1e-6:
        others = _other_clients_writes(ctx, metrics, g, fmt)
        if others and consumed_w >= certain + len(others) - 1e-6:
            notes.append(
                {
                    "kind": "note",
                    "detail": f"ConsumedWriteCapacityUnits={consumed_w:g} over {metrics.start_s}..{metrics.end_s} "
                    f"exceeds the run's {certain:g}: the access log shows {len(others)} charged writes on the "
                    "table's routes in those minutes that this run did not send (another client shared the "
                    "table); the excess is theirs",
                    "request_ids": others[:5],
                }
            )
        else:
            others = []
    if not others and not (certain - 1e-6 <= consumed_w <= certain + maybe + 1e-6):
        bad(
            "consumed_mismatch",
            detail=f"ConsumedWriteCapacityUnits={consumed_w:g} over {metrics.start_s}..{metrics.end_s}"
            f" but the ledger's landed writes cost {certain}" + (f" (+ up to {maybe} indeterminate)" if maybe else ""),
            metric_present=metrics.sums.get("ConsumedWriteCapacityUnits") is not None,
        )
    consumed_r_compared = _before(metrics, "ConsumedReadCapacityUnits", last_minute_ms)
    if ok_reads and not (read_low - 1e-6 <= consumed_r_compared <= read_high + 1e-6):
        bad(
            "read_consumed_out_of_range",
            detail=f"ConsumedReadCapacityUnits={consumed_r_compared:g} in the minutes "
            f"before {last_minute_ms / 1000:.0f}, expected {read_low:g}..{read_high:g} for {len(ok_reads)} successful reads",
        )
    elif g.reads and not ok_reads:
        notes.append(
            {
                "kind": "note",
                "detail": "reads not compared with ConsumedReadCapacityUnits: the run's "
                "reads all fall in its last minute, which also holds the checks' own reads",
            }
        )

    # --- 5xx that should have been 429 ---------------------------------------------------------
    for r in g.writes + g.reads:
        if r.status < 500:
            continue
        minute_events = metrics.in_minute("WriteThrottleEvents", r.t_ms / 1000) + metrics.in_minute(
            "ReadThrottleEvents", r.t_ms / 1000
        )
        if minute_events > 0 and _integration_error(r, logs, fmt) is not True:
            bad(
                "throttle_as_5xx",
                request_id=r.request_id,
                status=r.status,
                t_ms=r.t_ms,
                detail=f"answered {r.status} in a minute with {minute_events:g} throttle events; "
                "throttled requests must get 429 + Retry-After",
            )

    # --- the capacity model -------------------------------------------------------------------
    figures: dict[str, Any] = {
        "provisioned_wcu": wcu,
        "burst_wcu": BURST_SECONDS * wcu,
        "billing_mode": "PROVISIONED" if provisioned else "PAY_PER_REQUEST",
        "writes": len(g.writes),
        "reads": len(g.reads),
        "client_throttled_writes": len(throttled_writes),
        "writes_5xx": sum(1 for r in g.writes if r.status >= 500),
        "reads_5xx": sum(1 for r in g.reads if r.status >= 500),
        "client_throttled_reads": len(throttled_reads),
        "write_throttle_events": wte,
        "read_throttle_events": rte,
        "throttled_requests": throttled_reqs,
        "consumed_wcu_metric": consumed_w,
        "expected_wcu": certain,
        "indeterminate_wcu": maybe,
        "consumed_rcu_metric": consumed_r,
        "other_clients_writes": len(others),
        "reads_compared": len(ok_reads),
        "throttle_events_per_throttled_write": round(wte / len(throttled_writes), 2) if throttled_writes else None,
    }
    exercised = bool(throttled_writes)
    if provisioned and wcu > 0 and g.writes:
        exercised = _judge_model(g, throttled_writes, wcu, figures, bad)
    figures["capacity_exercised"] = int(exercised)
    figures.update({k: counts.get(k, 0) for k in KINDS})
    evidence = notes + [e for k in KINDS for e in fails[k]]
    problems = {k: counts[k] for k in KINDS if counts.get(k)}
    where = f"table {table}, {wcu:g} WCU + {BURST_SECONDS * wcu:g} burst"
    agree = "metrics agree" + (
        f" once {len(others)} writes other clients sent in the run's minutes are counted" if others else ""
    )
    consumed_text = f"{consumed_w:g} WCU consumed = ledger" + (
        f" + {len(others)} other clients' writes" if others else ""
    )
    if problems:
        what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in problems.items())
        return CheckResult(NAME, "fail", f"{what} ({where})", figures=figures, evidence=evidence)
    if not provisioned or wcu <= 0:
        return CheckResult(
            NAME,
            "pass",
            f"on-demand table: no provisioned-capacity model to hold the run to; {len(throttled_writes)} "
            f"throttled writes, each answered 429 with Retry-After; {agree} ({consumed_text})",
            figures=figures,
            evidence=evidence,
        )
    if not exercised or not throttled_writes:
        return CheckResult(
            NAME,
            "pass",
            f"no throttling: the run never approached capacity (peak offered "
            f"{figures.get('peak_offered_excess_wcu', 0):g} WCU above the provisioned rate vs "
            f"{BURST_SECONDS * wcu:g} burst); {agree} ({consumed_text})",
            figures=figures,
            evidence=evidence,
        )
    return CheckResult(
        NAME,
        "pass",
        f"throttling began at {figures.get('onset_s', 0):.1f}s after "
        f"{figures.get('burst_used_before_onset_wcu', 0):g} WCU of burst "
        f"(offered {figures.get('offered_wcu_per_s_at_onset', 0):g} WCU/s); after onset the table took "
        f"{figures.get('observed_accepted_after_onset', 0)} writes, the model "
        f"{figures.get('predicted_accepted_after_onset', 0)} (±{figures.get('tolerance', 0)}); "
        f"{len(throttled_writes)} refused with 429"
        + (f", {figures['writes_5xx']} failed 5xx (integration errors)" if figures.get("writes_5xx") else "")
        + "; "
        f"every throttle answered 429 with Retry-After; {agree} ({where})",
        figures=figures,
        evidence=evidence,
    )


def _other_clients_writes(ctx: CheckContext, metrics: TableMetrics, g: Gathered, fmt: dict[str, str]) -> list[str]:
    """Request ids of charged writes (2xx, 409) on the table's write routes that the access log
    shows within the metrics' minutes and the ledger does not hold: writes another client sent,
    which the table's per-minute metrics count too. Empty when the log or its fields are missing."""
    by_var = {v.strip(): name for name, v in fmt.items()}
    route_field, status_field = by_var.get("$context.routeKey"), by_var.get("$context.status")
    write_routes = {r for r in ctx.description.table_routes if r.split()[0] in ("POST", "PUT", "PATCH", "DELETE")}
    if not route_field or not status_field or not write_routes:
        return []
    try:
        id_field = logsource.request_id_field(fmt)
        records = logsource.fetch(
            ctx.client("logs"), ctx.target.access_log_group, metrics.start_s * 1000.0, metrics.end_s * 1000.0
        )
    except Exception:  # noqa: BLE001 - no log, no explanation: the mismatch stands
        return []
    ours = {r.request_id for r in g.writes + g.reads if r.request_id}
    out: list[str] = []
    for rec in records:
        if rec.fields is None or str(rec.get(route_field)) not in write_routes:
            continue
        if not metrics.start_s * 1000 <= rec.timestamp < metrics.end_s * 1000:
            continue
        try:
            status = int(rec.get(status_field))
        except (TypeError, ValueError):
            continue
        rid = str(rec.get(id_field))
        if charged_write(status) and rid not in ours:
            out.append(rid)
    return out


def _shortfall(m: TableMetrics, certain: float, throttled_writes: list[Req], throttled_reads: list[Req]) -> str:
    """What the metrics lack so far, in words."""
    short = []
    if m.total("ConsumedWriteCapacityUnits") < certain - 1e-6:
        short.append(f"ConsumedWriteCapacityUnits {m.total('ConsumedWriteCapacityUnits'):g} of {certain:g}")
    if throttled_writes and m.total("WriteThrottleEvents") <= 0:
        short.append(f"no WriteThrottleEvents yet for {len(throttled_writes)} throttled writes")
    if throttled_reads and m.total("ReadThrottleEvents") <= 0:
        short.append(f"no ReadThrottleEvents yet for {len(throttled_reads)} throttled reads")
    return "; ".join(short) or "ConsumedReadCapacityUnits short"


def _before(m: TableMetrics, name: str, end_ms: float) -> float:
    return sum(v for minute, v in m.per_minute.get(name, {}).items() if minute * 1000 < end_ms)


def _judge_model(g: Gathered, throttled: list[Req], wcu: float, figures: dict[str, Any], bad: Any) -> bool:
    t0 = min(r.t_ms for r in g.writes)
    refused_ids = {id(r) for r in throttled}
    writes = [
        throttle_model.Write(
            t=(r.t_ms - t0) / 1000.0,
            units=r.units,
            accepted=charged_write(r.status),
            refused=id(r) in refused_ids,
            latency_s=r.latency_ms / 1000.0,
        )
        for r in g.writes
    ]
    burst = BURST_SECONDS * wcu
    lat = sorted(w.latency_s for w in writes)
    slack_s = max(1.0, lat[min(len(lat) - 1, int(0.99 * len(lat)))])
    slack = wcu * slack_s
    consumed = throttle_model.per_second(writes)
    worst = throttle_model.worst_interval(consumed, wcu, burst)
    offered = throttle_model.worst_interval(throttle_model.per_second(writes, accepted_only=False), wcu, burst)
    peak_excess = 0.0 if offered is None else offered.consumed - wcu * (offered.end_s - offered.start_s + 1)
    figures["peak_offered_excess_wcu"] = round(peak_excess, 2)
    figures["slack_s"] = round(slack_s, 2)
    if worst is not None and worst.consumed > worst.allowed + slack:
        bad(
            "over_admission",
            detail=f"accepted {worst.consumed:g} WCU in seconds {worst.start_s}..{worst.end_s} of the "
            f"run; {wcu:g} WCU/s + {burst:g} burst allows {worst.allowed:g} (+{slack:g} slack)",
        )
    pred = throttle_model.predict_after_onset(writes, rate=wcu, burst=burst)
    figures["model_onset_s_burst_full"] = throttle_model.model_onset(writes, rate=wcu, burst=burst, start_level=burst)
    figures["model_onset_s_burst_empty"] = throttle_model.model_onset(writes, rate=wcu, burst=burst, start_level=0.0)
    if pred.onset_s is None:
        return peak_excess >= 0.5 * burst
    used = pred.burst_used_before_onset or 0.0
    tol = throttle_model.tolerance(pred.predicted_accepted_after_onset, rate=wcu, slack_s=slack_s)
    figures.update(
        {
            "onset_s": round(pred.onset_s, 3),
            "burst_used_before_onset_wcu": round(used, 2),
            "predicted_refused": pred.predicted_refused_after_onset,
            "tolerance": tol,
            "observed_refused": pred.observed_refused_after_onset,
            "predicted_accepted_after_onset": pred.predicted_accepted_after_onset,
            "observed_accepted_after_onset": pred.observed_accepted_after_onset,
            "offered_wcu_per_s_at_onset": _offered_rate(writes, pred.onset_s),
        }
    )
    if used < -slack:
        bad(
            "early_throttling",
            detail=f"first refusal at {pred.onset_s:.1f}s when the table had accepted "
            f"{used + wcu * pred.onset_s:g} WCU, less than its provisioned {wcu:g} WCU/s x {pred.onset_s:.1f}s",
        )
    if abs(pred.observed_accepted_after_onset - pred.predicted_accepted_after_onset) > tol:
        bad(
            "refusals_mismatch",
            detail=f"after onset the table took {pred.observed_accepted_after_onset} of "
            f"{pred.offered_after_onset} writes and refused {pred.observed_refused_after_onset}; at {wcu:g} WCU/s the "
            f"model takes {pred.predicted_accepted_after_onset} (tolerance ±{tol})",
        )
    return True


def _offered_rate(writes: list[throttle_model.Write], at_s: float, span_s: float = 10.0) -> float:
    units = sum(w.units for w in writes if at_s - span_s <= w.t <= at_s)
    return round(units / min(span_s, max(at_s, 1.0)), 3)
