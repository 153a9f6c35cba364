"""security: the API refuses what AWS refuses, and logs each refusal.

The check sends a few requests of its own (bounded: 12, one of them a body just over the payload limit; none writes),
marked with the user agent ``loadcheck-check-probe/1`` so that access_logs does not count them
as unexplained. Expected answers (docs/aws-behaviour.md sections; HTTP API bodies are UNCONFIRMED,
§10.1, so only statuses and headers are held):

    probe               request                                          expected (AWS)
    control             requester role session, GET <probe path>         2xx (proves the others fail for their reason)
    unsigned            no Authorization                                 403 (§1.2a)
    tampered            signature with one hex digit changed             403 InvalidSignature (§1.2b)
    expired             X-Amz-Date 10 minutes old                        403 Signature expired (§1.2c, 5-minute window)
    wrong_region        credential scope names another region            403 (§1.2, "scoped to a valid Region")
    wrong_service       credential scope service "lambda"                403 (§1.2)
    denied              a session of the denied role (no permissions)    403 AccessDenied (§1.2d)
    tls_1_1             TLS 1.1-only handshake                           refused (§6: TLS_1_2 policy)
    default_endpoint    Host/SNI <api-id>.execute-api.<region>.amazonaws.com, signed
                                                                         404 when disabled (§6), else 2xx
    cors_allowed        OPTIONS preflight from an allowed origin         2xx with Access-Control-Allow-Origin (§5)
    cors_disallowed     OPTIONS preflight from another origin            no Access-Control-Allow-Origin (§5)
    oversized           POST <probe path>, payload_limit_bytes + 1 bytes 413 (HTTP API payload quota 10 MB)

The probe path reads a partition no run writes (hash key ``1999-01-01``): the table function's GET
route with the fewest path variables (the reference's ``GET /events?date=1999-01-01``), each path
variable set to that value and, when the hash key is not one of them, the hash key as a query
parameter. The unsigned/tampered/expired/wrong-scope/denied probes send the same request.

Then every probe that reached the stage must have exactly one access-log record with its
status, 403s with ``authorizerError`` set (the refusal's reason lives there on HTTP APIs, §1.2a).
The default-endpoint probe and the TLS handshake never reach the stage: no record expected.
A probe whose answer cannot prove anything (the control throttled, TLS 1.1 not offered by this
machine's OpenSSL) is reported as inconclusive, never as a pass.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from checks import logsource, probe_http
from checks.framework import PROBE_USER_AGENT, CheckContext, budget_note, poll
from loadcheck.core.description import StackDescription
from loadcheck.core.errors import ConfigError
from loadcheck.core.results import CheckResult
from loadcheck.core.sigv4 import Credentials, Signer

NAME = "security"
PROBE_DATE = "1999-01-01"  # a partition no run writes: the control reads nothing
CLIENT_ERRORS = ("NO_PROTOCOLS_AVAILABLE", "NO_CIPHERS_AVAILABLE", "UNSUPPORTED_PROTOCOL_VERSION_CLIENT")


@dataclass
class Outcome:
    probe: str
    expected: str
    verdict: str  # ok | fail | inconclusive
    got: str
    request_id: str | None = None
    status: int | None = None
    log_expected: bool = True


class Prober:
    """Builds and sends the probes for one target."""

    def __init__(self, ctx: CheckContext) -> None:
        t = ctx.target
        self.ctx = ctx
        self.target = t
        parts = urlsplit(t.url)
        self.host = parts.netloc  # Host header (and signed host): the domain, with a port if not 443
        self.port = t.connect_port or parts.port or 443
        self.address = t.connect_address or probe_http.resolve(t.domain, self.port)
        self.tls = probe_http.tls_context(t.ca_bundle)
        self.signer = Signer("execute-api", t.region)

    def creds(self, role: str) -> Credentials | None:
        """A session of ``role`` (requester, denied) assumed by the target's caller; None when the
        target names no such role (Terraform outputs from before the roles existed)."""
        if role not in self.target.role_arns:
            return None
        return self.target.credentials(role)

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Host": self.host, "User-Agent": f"{PROBE_USER_AGENT} security", **(extra or {})}

    def signed(
        self,
        creds: Credentials,
        method: str,
        path: str,
        query: str = "",
        body: bytes = b"",
        *,
        signer: Signer | None = None,
        amz_date: str | None = None,
        host: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> dict[str, str]:
        extra = dict(extra or {})
        sig = (signer or self.signer).sign(
            creds, method, host or self.host, path, query, headers=extra, body=body, amz_date=amz_date
        )
        return {**self.headers(extra), **sig, **({"Host": host} if host else {})}

    def send(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        *,
        server_name: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> probe_http.Answer:
        return probe_http.send(
            server_name=server_name or self.target.domain,
            address=self.address,
            port=self.port,
            method=method,
            path=path,
            headers=headers,
            body=body,
            context=context or self.tls,
        )


def _expect_status(
    name: str, want: Callable[[int], bool], label: str, answer: probe_http.Answer, *, log_expected: bool = True
) -> Outcome:
    ok = want(answer.status)
    return Outcome(
        name,
        label,
        "ok" if ok else "fail",
        f"{answer.status} {answer.body[:120]!r}",
        answer.request_id,
        answer.status,
        log_expected,
    )


def probe_request(desc: StackDescription) -> tuple[str, str]:
    """(path, query) of the control read: see the module docstring."""
    gets = [rk.split(" ", 1)[1] for rk in desc.table_routes if rk.startswith("GET ")]
    if not gets:
        raise ConfigError(
            f"the table function {desc.table.function!r} serves no GET route; the security check's control needs one",
            hint="add a GET route for the table's function to the description's routes",
        )
    route = min(gets, key=lambda r: (r.count("{"), r))
    names = re.findall(r"\{([^}+]+)\+?\}", route)
    path = re.sub(r"\{[^}]+\}", PROBE_DATE, route)
    query = "" if desc.table.hash_key in names else f"{quote(desc.table.hash_key, safe='')}={PROBE_DATE}"
    return path, query


def _probes(p: Prober, ctx: CheckContext, budget: Any) -> list[Outcome]:
    out: list[Outcome] = []
    path, query = probe_request(ctx.description)
    full = f"{path}?{query}" if query else path
    requester = p.creds("requester")
    if requester is None:
        return [Outcome("control", "2xx", "inconclusive", "no requester credentials for this target")]

    # control: signed by the allowed identity; retried while throttled (a busy 1-RCU table)
    answer = None
    for _ in range(6):
        answer = p.send("GET", full, p.signed(requester, "GET", path, query))
        if answer.status != 429 or budget.remaining < 2:
            break
        budget.clock.sleep(min(2.0, budget.remaining))
    assert answer is not None
    control = _expect_status("control", lambda s: 200 <= s < 300, "2xx", answer)
    if answer.status in (429,) or answer.status >= 500:
        control.verdict = "inconclusive"
    if answer.tls_version not in ("TLSv1.2", "TLSv1.3"):
        control.verdict, control.got = "fail", f"{control.got}; negotiated {answer.tls_version}"
    out.append(control)

    out.append(_expect_status("unsigned", lambda s: s == 403, "403", p.send("GET", full, p.headers())))
    h = p.signed(requester, "GET", path, query)
    sig = h["Authorization"]
    h["Authorization"] = sig[:-1] + ("0" if sig[-1] != "0" else "1")
    out.append(_expect_status("tampered", lambda s: s == 403, "403", p.send("GET", full, h)))
    old = (_dt.datetime.now(_dt.UTC) - _dt.timedelta(minutes=10)).strftime("%Y%m%dT%H%M%SZ")
    out.append(
        _expect_status(
            "expired",
            lambda s: s == 403,
            "403",
            p.send("GET", full, p.signed(requester, "GET", path, query, amz_date=old)),
        )
    )
    other = "eu-west-1" if p.target.region != "eu-west-1" else "us-east-1"
    out.append(
        _expect_status(
            "wrong_region",
            lambda s: s == 403,
            "403",
            p.send("GET", full, p.signed(requester, "GET", path, query, signer=Signer("execute-api", other))),
        )
    )
    out.append(
        _expect_status(
            "wrong_service",
            lambda s: s == 403,
            "403",
            p.send("GET", full, p.signed(requester, "GET", path, query, signer=Signer("lambda", p.target.region))),
        )
    )
    denied = p.creds("denied")
    if denied is None:
        out.append(
            Outcome(
                "denied",
                "403",
                "inconclusive",
                "no denied role for this target: the Terraform outputs lack denied_role_arn "
                "(run `terraform apply` again, then `terraform output -json`)",
            )
        )
    else:
        out.append(
            _expect_status(
                "denied", lambda s: s == 403, "403", p.send("GET", full, p.signed(denied, "GET", path, query))
            )
        )

    out.append(_tls_1_1(p))
    out.append(_default_endpoint(p, ctx, requester, path, query))
    out.extend(_cors(p, ctx, path))

    limit = ctx.description.payload_limit_bytes
    body = b"x" * (limit + 1)
    hdr = p.signed(requester, "POST", path, body=body, extra={"content-type": "application/json"})
    out.append(_expect_status("oversized", lambda s: s == 413, "413", p.send("POST", path, hdr, body)))
    return out


def _tls_1_1(p: Prober) -> Outcome:
    # Offering TLS 1.1 is the point of this probe: Python's deprecation warning is expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _tls_1_1_handshake(p)


def _tls_1_1_handshake(p: Prober) -> Outcome:
    ctx = probe_http.tls_context(p.target.ca_bundle)
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as exc:
        return Outcome(
            "tls_1_1",
            "handshake refused",
            "inconclusive",
            f"this Python cannot offer TLS 1.1: {exc}",
            log_expected=False,
        )
    try:
        version = probe_http.handshake(server_name=p.target.domain, address=p.address, port=p.port, context=ctx)
    except ssl.SSLError as exc:
        if any(code in str(exc) for code in CLIENT_ERRORS):
            return Outcome(
                "tls_1_1",
                "handshake refused",
                "inconclusive",
                f"refused by this machine's OpenSSL before sending: {exc}",
                log_expected=False,
            )
        return Outcome(
            "tls_1_1", "handshake refused", "ok", f"refused: {getattr(exc, 'reason', None) or exc}", log_expected=False
        )
    except (ConnectionError, TimeoutError, OSError) as exc:
        return Outcome("tls_1_1", "handshake refused", "ok", f"connection closed: {exc}", log_expected=False)
    return Outcome("tls_1_1", "handshake refused", "fail", f"server negotiated {version}", log_expected=False)


def _default_endpoint(p: Prober, ctx: CheckContext, creds: Credentials, path: str, query: str) -> Outcome:
    t = p.target
    host = f"{t.api_id}.execute-api.{t.region}.amazonaws.com"
    disabled = ctx.description.disable_execute_api_endpoint
    label = "404 (default endpoint disabled)" if disabled else "2xx"
    # Routing, not PKI, is under test: the local certificate need not name the default host.
    tls = probe_http.tls_context(t.ca_bundle, check_hostname=False)
    try:
        address = p.address if t.kind == "local" else probe_http.resolve(host, 443)
        answer = probe_http.send(
            server_name=host,
            address=address,
            port=p.port if t.kind == "local" else 443,
            method="GET",
            path=f"{path}?{query}" if query else path,
            context=tls,
            headers=p.signed(creds, "GET", path, query, host=host),
        )
    except (OSError, ssl.SSLError) as exc:
        verdict = "ok" if disabled else "fail"
        return Outcome("default_endpoint", label, verdict, f"no answer: {exc}", log_expected=False)
    want = (lambda s: s in (403, 404)) if disabled else (lambda s: 200 <= s < 300)
    return _expect_status("default_endpoint", want, label, answer, log_expected=False)


def _cors(p: Prober, ctx: CheckContext, path: str) -> list[Outcome]:
    cors = ctx.description.cors
    allowed = next((o for o in cors.allow_origins if "*" not in o), None) or "https://probe.loadcheck.test"
    out = []
    ans = p.send(
        "OPTIONS",
        path,
        p.headers(
            {
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            }
        ),
    )
    acao = ans.headers.get("access-control-allow-origin")
    ok = 200 <= ans.status < 300 and acao in (allowed, "*")
    out.append(
        Outcome(
            "cors_allowed",
            f"2xx with Access-Control-Allow-Origin: {allowed}",
            "ok" if ok else "fail",
            f"{ans.status}, Access-Control-Allow-Origin={acao!r}",
            ans.request_id,
            ans.status,
        )
    )
    if "*" in cors.allow_origins:
        out.append(
            Outcome(
                "cors_disallowed",
                "no Access-Control-Allow-Origin",
                "inconclusive",
                "every origin is allowed ('*')",
                log_expected=False,
            )
        )
        return out
    evil = "https://evil.example"
    ans = p.send("OPTIONS", path, p.headers({"Origin": evil, "Access-Control-Request-Method": "POST"}))
    acao = ans.headers.get("access-control-allow-origin")
    out.append(
        Outcome(
            "cors_disallowed",
            "no Access-Control-Allow-Origin",
            "fail" if acao else "ok",
            f"{ans.status}, Access-Control-Allow-Origin={acao!r}",
            ans.request_id,
            ans.status,
        )
    )
    return out


def _check_logs(ctx: CheckContext, outcomes: list[Outcome], budget: Any) -> tuple[list[dict[str, Any]], int]:
    """Exactly one record per probe that reached the stage, with its status; 403s with a reason.

    Returns (problems, records not delivered yet): on AWS a probe's record that has not come when
    the budget ends is still on its way (``ctx.delivery_s``), not missing."""
    fmt = ctx.description.access_log.format
    id_field = logsource.request_id_field(fmt)
    status_field = next((n for n, v in fmt.items() if v.strip() == "$context.status"), None)
    authz_field = next((n for n, v in fmt.items() if v.strip() == "$context.authorizer.error"), None)
    wanted = {o.request_id: o for o in outcomes if o.log_expected and o.request_id}
    if not wanted:
        return [], 0
    now_ms = ctx.clock.time() * 1000.0

    def fetch() -> list[logsource.LogRecord]:
        try:
            return logsource.fetch(ctx.client("logs"), ctx.target.access_log_group, now_ms - 600_000, now_ms)
        except logsource.LogGroupMissing:
            return []

    records, complete = poll(
        fetch, lambda rs: set(wanted) <= {str(r.get(id_field)) for r in rs}, budget=budget, before_each=ctx.flush
    )
    problems = []
    pending = 0
    for rid, o in wanted.items():
        mine = [r for r in records if r.get(id_field) == rid]
        if not mine and not complete and ctx.still_in_delivery(now_ms):
            pending += 1
            continue
        if len(mine) != 1:
            problems.append(
                {"probe": o.probe, "request_id": rid, "problem": f"{len(mine)} access-log records (want 1)"}
            )
            continue
        rec = mine[0]
        if status_field and str(rec.get(status_field)) != str(o.status):
            problems.append(
                {
                    "probe": o.probe,
                    "request_id": rid,
                    "problem": f"logged status {rec.get(status_field)!r}, answered {o.status}",
                }
            )
        if o.status == 403 and authz_field and rec.get(authz_field) in (None, "", "-"):
            problems.append(
                {
                    "probe": o.probe,
                    "request_id": rid,
                    "problem": "403 logged without authorizerError",
                    "line": json.dumps(rec.fields)[:300],
                }
            )
    return problems, pending


def run(ctx: CheckContext) -> CheckResult:
    budget = ctx.budget()
    if ctx.stack_note:
        return CheckResult(NAME, "error", f"cannot probe the API: {ctx.stack_note}", reason=ctx.stack_note)
    try:
        prober = Prober(ctx)
        ctx.say(f"{NAME}: probing https://{prober.host} via {prober.address}:{prober.port} ({budget_note(budget)})")
        outcomes = _probes(prober, ctx, budget)
    except (OSError, ssl.SSLError) as exc:
        return CheckResult(NAME, "error", f"could not reach {ctx.target.url}: {exc}", reason=str(exc))
    log_problems, log_pending = _check_logs(ctx, outcomes, budget)
    evidence: list[dict[str, Any]] = [
        {"probe": o.probe, "expected": o.expected, "verdict": o.verdict, "got": o.got, "request_id": o.request_id}
        for o in outcomes
        if o.verdict != "ok"
    ]
    evidence += [{"kind": "access_log", **p} for p in log_problems]
    evidence += [
        {"probe": o.probe, "expected": o.expected, "verdict": o.verdict, "got": o.got[:80], "request_id": o.request_id}
        for o in outcomes
        if o.verdict == "ok"
    ]
    failed = [o for o in outcomes if o.verdict == "fail"]
    figures: dict[str, Any] = {
        "probes": len(outcomes),
        "ok": sum(o.verdict == "ok" for o in outcomes),
        "failed": len(failed),
        "inconclusive": sum(o.verdict == "inconclusive" for o in outcomes),
        "access_log_problems": len(log_problems),
        "not_delivered": log_pending,
    }
    if failed or log_problems:
        what = ", ".join(f"{o.probe} (want {o.expected}, got {o.got[:60]})" for o in failed[:4])
        if log_problems:
            what += ("; " if what else "") + f"{len(log_problems)} access-log problem(s) for probes"
        return CheckResult(
            NAME,
            "fail",
            f"{len(failed)} of {len(outcomes)} probes answered unlike AWS: {what}",
            figures=figures,
            evidence=evidence,
        )
    if log_pending:
        return CheckResult(
            NAME,
            "error",
            f"no probe failed, but the access-log records of {log_pending} probe(s) were not "
            "delivered within the budget (CloudWatch delivers minutes late): raise --check-budget",
            reason="probe access-log records not delivered yet: raise --check-budget",
            figures=figures,
            evidence=evidence,
        )
    inconclusive = [o for o in outcomes if o.verdict == "inconclusive"]
    if inconclusive or not outcomes:
        why = "; ".join(f"{o.probe}: {o.got[:100]}" for o in inconclusive[:4]) or "no probe was sent"
        return CheckResult(
            NAME,
            "error",
            f"{len(inconclusive)} of {len(outcomes)} probes inconclusive, so the refusals prove nothing ({why})",
            reason=f"inconclusive probes: {why}",
            figures=figures,
            evidence=evidence,
        )
    return CheckResult(
        NAME,
        "pass",
        f"{figures['ok']} of {len(outcomes)} probes answered as AWS does, each refusal logged with its reason",
        figures=figures,
        evidence=evidence,
    )
