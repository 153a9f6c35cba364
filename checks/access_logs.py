"""access_logs: exactly one complete, correct access-log record per request that reached the gateway.

Joined on the request id (ledger ``request_id`` = the ``apigw-requestid`` response header =
``$context.requestId``, docs/aws-behaviour.md §1.4). Records come from the target's access-log group
(``logsource.fetch``: paginated fully, filtered here). Failures, each named by request id:

- **missing**: a ledger request with a request id has no record (after waiting for delivery
  within the budget, flushing the local stack first). On AWS a request younger than CloudWatch's
  delivery delay (``ctx.delivery_s``, docs/aws-behaviour.md §2.6) whose record has not come when the
  budget ends is **not delivered yet**, not missing: the check answers ``error`` saying
  "not delivered yet: re-run `loadcheck check RUN` later" (figure ``not_delivered``), unless
  something else failed;
- **duplicate**: more than one record for one request id;
- **unexplained**: a record stamped inside the run window whose request id no ledger record has
  (the security check's probes, marked by user agent, are not counted);
- **malformed**: a line that is not a JSON object;
- **no_request_id**: a response that carried no ``apigw-requestid`` (every HTTP API response
  has one, §1.4);
- **field_missing**: a configured field (``description.access_log.format``) absent;
- **blank**: a field rendered ``-`` where AWS sets it (§2.2: ``-`` means unset; unset is
  allowed only where AWS leaves the variable unset, e.g. ``$context.error.message`` on a
  success, ``$context.authorizer.error`` for an authorized caller);
- **bad_form**: wrong type or form (IP, CLF time ``dd/MMM/yyyy:HH:mm:ss +0000``, epoch
  milliseconds, integer status/lengths/latencies, protocol ``HTTP/1.1``);
- **mismatch**: a value that disagrees with the ledger (status, method, route key, path,
  response length, time of sending within the tolerance, latency not above the client's);
- **set_when_unset**: ``-`` expected but a value given (error message on a 2xx), and 403s
  without ``authorizer.error``, 503s without ``integrationErrorMessage``.

The fields are the configured format's, whatever it holds: a field the format drops is not
required; a field it adds is required to be present, and its value judged when its ``$context``
variable is one this check knows (the sets and ``VALUE_CHECKS`` below); the others are listed in
the result as ``unchecked_fields`` (present, form not judged).

A request inside a gateway outage (run.json ``outages``: the gateway was killed and restarted)
whose record is absent is counted as ``lost_with_outage``, not missing: the gateway buffers
records for up to a second before shipping them, and those die with the process.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections import Counter
from collections.abc import Callable
from typing import Any

from checks import logsource
from checks.framework import PROBE_USER_AGENT, CheckContext, budget_note, poll
from loadcheck.core.description import HTTP_METHODS
from loadcheck.core.results import CheckResult

NAME = "access_logs"
UNSET = "-"
PER_KIND_EVIDENCE = 4
GATEWAY_OUTAGES = ("gateway",)  # the access-log records of requests inside these died with the gateway
KINDS = (
    "missing",
    "duplicate",
    "unexplained",
    "malformed",
    "no_request_id",
    "field_missing",
    "blank",
    "bad_form",
    "mismatch",
    "set_when_unset",
)

# Variables API Gateway sets on every request that reached the stage (docs/aws-behaviour.md §2.1).
ALWAYS_SET = frozenset(
    {
        "$context.requestId",
        "$context.extendedRequestId",
        "$context.identity.sourceIp",
        "$context.requestTime",
        "$context.requestTimeEpoch",
        "$context.httpMethod",
        "$context.path",
        "$context.status",
        "$context.protocol",
        "$context.responseLength",
        "$context.responseLatency",
        "$context.domainName",
        "$context.domainPrefix",
        "$context.stage",
        "$context.apiId",
        "$context.accountId",
    }
)
# Set for a request that was authorized and reached the integration (our ledger's 2xx).
SET_ON_SUCCESS = frozenset(
    {
        "$context.routeKey",
        "$context.integrationLatency",
        "$context.integration.latency",
        "$context.integrationStatus",
        "$context.integration.status",
        "$context.integration.integrationStatus",
        "$context.identity.userArn",
        "$context.identity.caller",
        "$context.identity.user",
        "$context.identity.accountId",
    }
)
# Unset on a success.
UNSET_ON_SUCCESS = frozenset(
    {
        "$context.error.message",
        "$context.error.messageString",
        "$context.error.responseType",
        "$context.authorizer.error",
        "$context.integrationErrorMessage",
        "$context.integration.error",
    }
)


def unchecked_fields(fmt: dict[str, str]) -> list[str]:
    """The format's fields whose variable this check has no rule for: presence only."""
    known = ALWAYS_SET | SET_ON_SUCCESS | UNSET_ON_SUCCESS | set(VALUE_CHECKS)
    return [name for name, var in fmt.items() if var.strip() not in known]


def _int(value: str) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _clf(value: str) -> float | None:
    try:
        return _dt.datetime.strptime(value, "%d/%b/%Y:%H:%M:%S %z").timestamp()
    except (TypeError, ValueError):
        return None


class Judge:
    """Checks one record against its ledger request; collects problems as (kind, field, detail)."""

    def __init__(self, ctx: CheckContext, fmt: dict[str, str]) -> None:
        self.fmt = fmt
        self.domain = ctx.target.domain
        self.tol_ms = ctx.time_tolerance_s * 1000.0
        self.vars = {name: var.strip() for name, var in fmt.items()}

    def judge(self, fields: dict[str, Any], rec: dict[str, Any]) -> list[tuple[str, str, str]]:
        problems: list[tuple[str, str, str]] = []
        status = int(rec.get("status") or 0)
        success = 200 <= status < 300
        for name, var in self.vars.items():
            if name not in fields:
                problems.append(("field_missing", name, f"{var} not in the record"))
                continue
            raw = fields[name]
            value = raw if isinstance(raw, str) else str(raw)
            if value == UNSET:
                if var in ALWAYS_SET or (success and var in SET_ON_SUCCESS):
                    problems.append(("blank", name, f"{var} is '-' but API Gateway sets it for this request"))
                elif status == 403 and var == "$context.authorizer.error":
                    problems.append(("set_when_unset", name, "a 403 must carry the authorizer's error"))
                elif status == 503 and var in ("$context.integrationErrorMessage", "$context.integration.error"):
                    problems.append(("set_when_unset", name, "a 503 must carry the integration error"))
                continue
            if success and var in UNSET_ON_SUCCESS:
                problems.append(("set_when_unset", name, f"{var}={value!r} on a {status}: AWS leaves it unset"))
                continue
            check = VALUE_CHECKS.get(var)
            if check is not None:
                problem = check(self, value, rec)
                if problem:
                    problems.append((problem[0], name, problem[1]))
        return problems


def _v_ip(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return ("bad_form", f"{v!r} is not an IP address")
    return None


def _v_time(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    t = _clf(v)
    if t is None:
        return ("bad_form", f"{v!r} is not CLF time dd/MMM/yyyy:HH:mm:ss +0000")
    sent = float(rec["t_start_ms"]) / 1000.0
    if not (
        sent - j.tol_ms / 1000.0 - 1.0 <= t <= sent + j.tol_ms / 1000.0 + float(rec.get("latency_ms") or 0) / 1000.0
    ):
        return (
            "mismatch",
            f"{v} is not when the client sent it ({_dt.datetime.fromtimestamp(sent, _dt.UTC):%d/%b/%Y:%H:%M:%S} UTC)",
        )
    return None


def _v_epoch(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    ms = _int(v)
    if ms is None or ms < 10**12:
        return ("bad_form", f"{v!r} is not epoch milliseconds")
    sent = float(rec["t_start_ms"])
    if not (sent - j.tol_ms <= ms <= sent + j.tol_ms + float(rec.get("latency_ms") or 0)):
        return ("mismatch", f"{ms} is {ms - sent:+.0f} ms from the client's send time")
    return None


def _v_method(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    if v not in HTTP_METHODS:
        return ("bad_form", f"{v!r} is not an HTTP method")
    return None if v == rec.get("method") else ("mismatch", f"{v} != ledger {rec.get('method')}")


def _v_route(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    return None if v == rec.get("route") else ("mismatch", f"{v!r} != ledger {rec.get('route')!r}")


def _v_path(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    sent = str(rec.get("path") or "").split("?", 1)[0]
    return None if not sent or v == sent else ("mismatch", f"{v!r} != sent {sent!r}")


def _v_status(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    s = _int(v)
    if s is None or not 100 <= s <= 599:
        return ("bad_form", f"{v!r} is not an HTTP status")
    return None if s == int(rec.get("status") or 0) else ("mismatch", f"{s} != client saw {rec.get('status')}")


def _v_protocol(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    return None if v == "HTTP/1.1" else ("bad_form", f"{v!r}: HTTP APIs log HTTP/1.1 (§2.1)")


def _v_length(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    n = _int(v)
    if n is None or n < 0:
        return ("bad_form", f"{v!r} is not a byte count")
    want = rec.get("response_length")
    return None if want is None or n == int(want) else ("mismatch", f"{n} bytes != client received {want}")


def _v_latency(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    n = _int(v)
    if n is None or n < -1:  # -1: integration timed out (third-party observation, §3.3)
        return ("bad_form", f"{v!r} is not milliseconds")
    client = float(rec.get("latency_ms") or 0.0)
    if n > client + j.tol_ms:
        return ("mismatch", f"{n} ms > the client's own {client:.0f} ms")
    return None


def _v_int(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    return None if _int(v) is not None else ("bad_form", f"{v!r} is not an integer")


def _v_domain(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    return None if v == j.domain else ("mismatch", f"{v!r} != {j.domain!r}")


def _v_arn(j: Judge, v: str, rec: dict[str, Any]) -> tuple[str, str] | None:
    return None if v.startswith("arn:") else ("bad_form", f"{v!r} is not an ARN")


VALUE_CHECKS: dict[str, Callable[[Judge, str, dict[str, Any]], tuple[str, str] | None]] = {
    "$context.identity.sourceIp": _v_ip,
    "$context.requestTime": _v_time,
    "$context.requestTimeEpoch": _v_epoch,
    "$context.httpMethod": _v_method,
    "$context.routeKey": _v_route,
    "$context.path": _v_path,
    "$context.status": _v_status,
    "$context.protocol": _v_protocol,
    "$context.responseLength": _v_length,
    "$context.responseLatency": _v_latency,
    "$context.integrationLatency": _v_latency,
    "$context.integration.latency": _v_latency,
    "$context.integrationStatus": _v_int,
    "$context.integration.status": _v_int,
    "$context.integration.integrationStatus": _v_int,
    "$context.domainName": _v_domain,
    "$context.identity.userArn": _v_arn,
}


def _expected_requests(ctx: CheckContext) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], int]:
    """Ledger records that reached the gateway (by request id); responses without one; total."""
    by_id: dict[str, dict[str, Any]] = {}
    no_id: list[dict[str, Any]] = []
    total = 0
    for rec in ctx.ledger():
        total += 1
        rid = rec.get("request_id")
        if rid:
            by_id[rid] = {
                k: rec.get(k)
                for k in (
                    "status",
                    "method",
                    "route",
                    "path",
                    "t_start_ms",
                    "latency_ms",
                    "response_length",
                    "worker",
                    "seq",
                )
            }
        elif int(rec.get("status") or 0) > 0:
            no_id.append(rec)
    return by_id, no_id, total


def _fetch_until_complete(
    ctx: CheckContext, group: str, id_field: str, wanted: set[str], start_ms: float, end_ms: float, budget: Any
) -> tuple[list[logsource.LogRecord], bool]:
    def fetch() -> list[logsource.LogRecord] | None:
        try:
            return logsource.fetch(ctx.client("logs"), group, start_ms, end_ms)
        except logsource.LogGroupMissing:
            return None

    def done(records: list[logsource.LogRecord] | None) -> bool:
        if records is None:
            return False
        return wanted <= {str(r.get(id_field)) for r in records}

    def waiting(records: list[logsource.LogRecord] | None, wait: float) -> None:
        have = 0 if records is None else len(wanted & {str(r.get(id_field)) for r in records})
        ctx.say(f"{NAME}: {have}/{len(wanted)} records delivered, waiting {wait:.1f}s ({budget_note(budget)})")

    records, complete = poll(fetch, done, budget=budget, before_each=ctx.flush, on_wait=waiting)
    if records is None:
        raise logsource.LogGroupMissing(group)
    return records, complete


def run(ctx: CheckContext) -> CheckResult:
    budget = ctx.budget()
    fmt = ctx.description.access_log.format
    group = ctx.target.access_log_group
    id_field = logsource.request_id_field(fmt)
    expected, no_id, total = _expected_requests(ctx)
    if total == 0:
        return CheckResult(NAME, "skipped", "the ledger is empty: no request to account for", reason="empty ledger")
    if ctx.stack_note:
        return CheckResult(NAME, "error", f"cannot read the run's access logs: {ctx.stack_note}", reason=ctx.stack_note)
    window = ctx.run_window()
    # A record the gateway buffered when it was killed died with it: do not wait for those.
    wanted = {rid for rid, rec in expected.items() if ctx.outage_of(rec, GATEWAY_OUTAGES) is None}
    try:
        records, complete = _fetch_until_complete(ctx, group, id_field, wanted, window.start_ms, window.end_ms, budget)
    except logsource.LogGroupMissing:
        return CheckResult(
            NAME,
            "error",
            f"log group {group} does not exist",
            reason="no access-log group",
            figures={"expected": len(expected)},
        )
    except Exception as exc:  # noqa: BLE001 - unreadable logs are an error, never a pass
        return CheckResult(NAME, "error", f"could not read {group}: {exc}", reason=str(exc))
    ctx.cache["access_log_records"] = records
    return judge_records(ctx, records, expected, no_id, fmt=fmt, group=group, complete=complete, budget=budget)


def judge_records(
    ctx: CheckContext,
    records: list[logsource.LogRecord],
    expected: dict[str, dict[str, Any]],
    no_id: list[dict[str, Any]],
    *,
    fmt: dict[str, str],
    group: str,
    complete: bool,
    budget: Any,
) -> CheckResult:
    id_field = logsource.request_id_field(fmt)
    window = ctx.run_window()
    tol = ctx.time_tolerance_s * 1000.0
    ua_field = next((n for n, v in fmt.items() if v.strip() == "$context.identity.userAgent"), None)
    epoch_field = next((n for n, v in fmt.items() if v.strip() == "$context.requestTimeEpoch"), None)
    counts: Counter[str] = Counter()
    evidence: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    bad_requests: set[str] = set()

    def note(kind: str, rid: str | None, **detail: Any) -> None:
        counts[kind] += 1
        if rid:
            bad_requests.add(rid)
        if len(evidence[kind]) < PER_KIND_EVIDENCE:
            evidence[kind].append({"kind": kind, "request_id": rid, **detail})

    judge = Judge(ctx, fmt)
    # A ledger cut by a killed writer lacks its last requests: their records, stamped after the
    # earliest worker's last recorded request, are the ledger's loss, not the gateway's invention.
    cut_from = None
    if ctx.ledger_tail_unknown and expected:
        last: dict[str, float] = {}
        for rec in expected.values():
            w = str(rec.get("worker"))
            last[w] = max(last.get(w, 0.0), float(rec.get("t_start_ms") or 0.0))
        cut_from = min(last.values())
    unrecorded = lost_with_outage = 0
    by_id: dict[str, list[logsource.LogRecord]] = {}
    for r in records:
        if r.fields is None:
            note("malformed", None, line=r.message[:300], stream=r.stream)
            continue
        rid = r.get(id_field)
        if not isinstance(rid, str) or rid in ("", UNSET):
            note("malformed", None, line=r.message[:300], detail=f"no {id_field}")
            continue
        by_id.setdefault(rid, []).append(r)
    for rid, recs in by_id.items():
        if rid in expected:
            continue
        first = recs[0]
        if ua_field and PROBE_USER_AGENT in str(first.get(ua_field) or ""):
            continue  # the security check's own probes
        stamp = _int(str(first.get(epoch_field))) if epoch_field else None
        stamp = stamp if stamp is not None else first.timestamp
        if cut_from is not None and stamp >= cut_from - tol:
            unrecorded += 1
        elif window.start_ms - tol <= stamp <= window.end_ms + tol:
            note("unexplained", rid, line=first.message[:600], copies=len(recs))
    judged = 0
    pending: list[dict[str, Any]] = []
    for rid, rec in expected.items():
        recs = by_id.get(rid) or []
        if not recs and ctx.outage_of(rec, GATEWAY_OUTAGES) is not None:
            lost_with_outage += 1
            continue
        if not recs:
            sent = float(rec["t_start_ms"] or 0.0)
            if not complete and ctx.still_in_delivery(sent + float(rec.get("latency_ms") or 0.0)):
                pending.append({"kind": "not_delivered", "request_id": rid, "route": rec["route"], "sent_ms": sent})
            else:
                note("missing", rid, route=rec["route"], status=rec["status"], sent_ms=rec["t_start_ms"])
            continue
        if len(recs) > 1:
            note("duplicate", rid, copies=len(recs), lines=[r.message[:200] for r in recs[:2]])
        judged += 1
        for kind, field, detail in judge.judge(recs[0].fields or {}, rec):
            note(kind, rid, field=field, detail=detail)
    for rec in no_id:
        note("no_request_id", None, route=rec.get("route"), status=rec.get("status"), seq=rec.get("seq"))

    unchecked = unchecked_fields(fmt)
    figures: dict[str, Any] = {
        "expected": len(expected),
        "records_read": len(records),
        "joined": judged,
        "requests_with_problems": len(bad_requests),
        "fields": len(fmt),
        "unchecked_fields": ", ".join(unchecked) or None,
        "delivery_complete": int(complete),
        "waited_s": round(budget.elapsed, 2),
        "unrecorded_after_ledger_cut": unrecorded,
        "lost_with_outage": lost_with_outage,
        "not_delivered": len(pending),
        # What CloudWatch Logs bills ingestion on: the capacity plan prices log volume with it.
        "record_bytes_mean": round(sum(len(r.message.encode()) for r in records) / len(records), 1)
        if records
        else None,
    }
    figures.update({k: counts.get(k, 0) for k in KINDS})
    ev = [e for k in KINDS for e in evidence[k]]
    where = f"log group {group}"

    if unrecorded:
        ev.insert(
            0,
            {
                "kind": "note",
                "detail": f"{unrecorded} record(s) after the ledger's cut: requests the killed load generator sent "
                "but never recorded (not counted as unexplained)",
            },
        )
    if lost_with_outage:
        ev.insert(
            0,
            {
                "kind": "note",
                "detail": f"{lost_with_outage} record(s) missing for requests inside a gateway outage (run.json "
                "outages): buffered in the killed gateway, lost with it (not counted as missing)",
            },
        )
    if not complete:
        ev.insert(
            0, {"kind": "note", "detail": f"records still missing when the budget ran out ({budget_note(budget)})"}
        )
    if pending:
        ev[:0] = [
            {
                "kind": "note",
                "detail": f"{len(pending)} record(s) {ctx.rerun_hint()} (their requests are younger than "
                f"CloudWatch's delivery delay of {ctx.delivery_s:.0f}s; or raise --check-budget)",
            },
            *pending[:PER_KIND_EVIDENCE],
        ]
    problems = {k: counts[k] for k in KINDS if counts.get(k)}
    if problems:
        what = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in problems.items())
        later = f"; {len(pending)} not delivered yet" if pending else ""
        return CheckResult(
            NAME,
            "fail",
            f"{what} across {len(bad_requests)} request(s) of {len(expected)}{later} ({where})",
            figures=figures,
            evidence=ev,
        )
    if pending:
        return CheckResult(
            NAME,
            "error",
            f"{len(pending)} of {len(expected)} records {ctx.rerun_hint()}; the {judged} delivered are "
            f"complete and agree with the ledger ({where})",
            reason=ctx.rerun_hint(),
            figures=figures,
            evidence=ev,
        )
    if not expected:
        return CheckResult(
            NAME,
            "skipped",
            "no request reached the gateway (none has a request id)",
            reason="no request ids in the ledger",
            figures=figures,
        )
    return CheckResult(
        NAME,
        "pass",
        f"exactly one well-formed record for each of {len(expected)} requests, "
        f"{len(fmt)} fields each, values agree with the ledger ({where})"
        + (f"; present, form not judged: {', '.join(f'{n} ({fmt[n]})' for n in unchecked)}" if unchecked else ""),
        figures=figures,
        evidence=ev,
    )
