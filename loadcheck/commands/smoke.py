"""``loadcheck smoke``: seconds after ``terraform apply`` (or ``loadcheck stack up``), does the
stack answer as it should?

Five requests to the custom domain, each judged on its own:

    write      POST /events signed as the requester role          201
    read-back  GET /events?date=<that date> as the requester      200 with the item written
    search     GET /search?q=<a corpus prefix> as the requester   200 with suggestions
    denied     GET /events signed as the denied role              403
    unsigned   GET /events without a signature                    403

Before them, the caller assumes the requester and denied roles, and the custom domain is
resolved (or taken from ``--resolve``). Every failure is printed with the fix for its common
cause: DNS not propagated, certificate pending or not trusted, corpus not loaded, wrong profile.
The write goes to the date 1999-12-31, a partition no run writes (runs use dates from 2100), with
the current time as the sort key.

Exit status (docs/cli.md): 0 when every step behaves, 1 when one answers wrongly, 5 when the
target cannot be used (roles not assumed, DNS, TLS or the connection failed), 2 for bad options.
"""

from __future__ import annotations

import datetime as _dt
import json
import ssl
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import click

from checks import probe_http
from loadcheck.commands.target_options import build_target, target_options
from loadcheck.core.description import PLACEHOLDER_TLD, load_description, placeholder_error
from loadcheck.core.errors import ExitCode, LoadcheckError
from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.target import Target

SMOKE_DATE = "1999-12-31"
SEARCH_PREFIX = "pri"  # "print", "property", ...: the corpus has many completions
USER_AGENT = "loadcheck-smoke/1"

FIX_DNS = (
    "the custom domain does not resolve yet: Route 53 changes take up to a minute or two, resolvers' caches "
    "longer (check `dig +short {domain}`); meanwhile pass --resolve {domain}:{port}:ADDR with an address of "
    "the API's regional domain name"
)
FIX_CERT = (
    "the certificate is not valid for {domain} yet: on AWS, ACM validates it through the DNS record Terraform "
    "creates (`aws acm describe-certificate` says PENDING_VALIDATION until then; minutes); for a certificate of "
    "your own CA, pass --ca-bundle or set AWS_CA_BUNDLE"
)
FIX_CONNECT = (
    "nothing answers at {address}:{port}: is the stack up (`terraform apply` finished, `loadcheck stack status`)?"
)
FIX_PROFILE = (
    "wrong profile? --profile names the caller, which must be allowed to assume the stack's roles "
    "(iam.tf trusts the stack's account by default) and belong to the stack's account"
)
FIX_CORPUS = "corpus not loaded? run `loadcheck corpus load` (same target options), then smoke again"


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    unusable: bool = False  # failed before the stack could answer: roles, DNS, TLS, connection


class Smoke:
    """The smoke test of one target; :meth:`run` returns every step, stopping early only when
    nothing further can be tried (no credentials, no address)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        parts = urlsplit(target.url)
        self.host = parts.netloc
        self.port = target.connect_port or parts.port or 443
        self.signer = Signer("execute-api", target.region)
        self.tls = probe_http.tls_context(target.ca_bundle)
        self.address = target.connect_address or ""
        self.fmt = {"domain": target.domain, "port": self.port, "address": self.address}

    def placeholder(self) -> Step | None:
        """On AWS (reached through DNS), a domain still holding the tracked description's local-only
        placeholder: the user's override was never filled in (reference_stack/terraform). Asked
        when the domain does not resolve."""
        if self.target.kind != "aws" or self.target.connect_address or not self.target.domain.endswith(PLACEHOLDER_TLD):
            return None
        err = placeholder_error(load_description(aws=True))
        if err is None:
            return None
        return Step("config", False, err.message, err.hint)

    def run(self) -> list[Step]:
        steps: list[Step] = []
        try:
            requester = self.target.credentials("requester")
            denied = self.target.credentials("denied")
        except LoadcheckError as exc:
            why = str(exc).splitlines()[0]
            return [Step("roles", False, why, f"{FIX_PROFILE}; {exc.hint or ''}".rstrip("; "), unusable=True)]
        steps.append(Step("roles", True, "the caller assumed the requester and denied roles"))
        if not self.address:
            try:
                self.address = probe_http.resolve(self.target.domain, self.port)
                self.fmt["address"] = self.address
            except OSError as exc:
                dns = Step("dns", False, f"{self.target.domain}: {exc}", FIX_DNS.format(**self.fmt), unusable=True)
                steps.append(dns)
                unset = self.placeholder()  # the domain may be the description's placeholder, never deployed
                return [*steps, unset] if unset is not None else steps
        steps.append(Step("dns", True, f"{self.target.domain} -> {self.address}"))

        when = _dt.datetime.now(_dt.UTC).strftime("%H:%M:%S.%f")[:12]
        item = {"date": SMOKE_DATE, "time": when, "userId": "loadcheck-smoke", "eventType": "smoke"}
        body = json.dumps(item, separators=(",", ":")).encode()
        answer = self._send(steps, "write", "POST", "/events", "", requester, body)
        if answer is None:
            return steps
        steps.append(self._judge("write", answer, 201, "stored"))

        query = urlencode({"date": SMOKE_DATE, "limit": "100"})
        answer = self._send(steps, "read-back", "GET", "/events", query, requester)
        if answer is not None:
            found = answer.status == 200 and any(i.get("time") == when for i in _json(answer).get("items", []))
            steps.append(
                Step("read-back", True, f"200, item {SMOKE_DATE} {when} read back")
                if found
                else Step(
                    "read-back",
                    False,
                    f"{answer.status} {answer.body[:160]!r}: the item written is not there",
                    "see the events function's log group" if answer.status >= 500 else None,
                )
            )

        answer = self._send(steps, "search", "GET", "/search", urlencode({"q": SEARCH_PREFIX}), requester)
        if answer is not None:
            got = _json(answer).get("suggestions") if answer.status == 200 else None
            if got:
                steps.append(Step("search", True, f"200, {len(got)} suggestions for {SEARCH_PREFIX!r}"))
            else:
                steps.append(
                    Step("search", False, f"{answer.status} {answer.body[:160]!r}: no suggestions", FIX_CORPUS)
                )

        answer = self._send(steps, "denied", "GET", "/events", query, denied)
        if answer is not None:
            steps.append(
                self._judge(
                    "denied",
                    answer,
                    403,
                    "refused",
                    "the denied role was allowed: its permissions (iam.tf) or the routes' AWS_IAM authorization are wrong",
                )
            )
        answer = self._send(steps, "unsigned", "GET", "/events", query, None)
        if answer is not None:
            steps.append(
                self._judge(
                    "unsigned", answer, 403, "refused", "an unsigned request got through: the routes lack AWS_IAM"
                )
            )
        return steps

    def _send(
        self,
        steps: list[Step],
        name: str,
        method: str,
        path: str,
        query: str,
        creds: Credentials | None,
        body: bytes = b"",
    ) -> probe_http.Answer | None:
        headers = {"Host": self.host, "User-Agent": USER_AGENT}
        extra = {"content-type": "application/json"} if body else {}
        headers.update(extra)
        if creds is not None:
            headers.update(self.signer.sign(creds, method, self.host, path, query, headers=extra, body=body))
        try:
            return probe_http.send(
                server_name=self.target.domain,
                address=self.address,
                port=self.port,
                method=method,
                path=f"{path}?{query}" if query else path,
                headers=headers,
                body=body,
                context=self.tls,
                timeout=15.0,
            )
        except ssl.SSLCertVerificationError as exc:
            steps.append(Step(name, False, f"TLS: {exc.verify_message}", FIX_CERT.format(**self.fmt), unusable=True))
        except (TimeoutError, ssl.SSLError, ConnectionError, OSError) as exc:
            fix = FIX_CONNECT.format(**self.fmt)
            steps.append(Step(name, False, f"{type(exc).__name__}: {exc}", fix, unusable=True))
        return None

    def _judge(self, name: str, answer: probe_http.Answer, want: int, what: str, fix: str | None = None) -> Step:
        if answer.status == want:
            return Step(name, True, f"{answer.status}, {what}")
        if fix is None:
            error = answer.headers.get("x-amzn-errortype", "")
            fix = (
                FIX_PROFILE
                if answer.status == 403
                else "see the function's log group (terraform output lambda_log_groups)"
                if answer.status >= 500
                else None
            )
            if error:
                fix = f"{error}: {fix}" if fix else error
        return Step(name, False, f"{answer.status} {answer.body[:160]!r} (expected {want})", fix)


def _json(answer: probe_http.Answer) -> dict[str, Any]:
    try:
        data = json.loads(answer.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def render(steps: list[Step]) -> list[str]:
    lines = []
    for s in steps:
        lines.append(f"  {'ok  ' if s.ok else 'FAIL'}  {s.name:<10} {s.detail}")
        if not s.ok and s.fix:
            lines.append(f"        fix: {s.fix}")
    return lines


@click.command("smoke")
@target_options
def command(**options: Any) -> None:
    """One signed write, its read-back, one search, one denied and one unsigned request: does the stack behave?"""
    target = build_target(**options)
    click.echo(f"smoke test of {target.url} ({target.kind})")
    steps = Smoke(target).run()
    for line in render(steps):
        click.echo(line)
    failed = [s.name for s in steps if not s.ok]
    click.echo("verdict: " + (f"FAIL ({', '.join(failed)})" if failed else "all behave"))
    if any(s.unusable for s in steps):
        sys.exit(ExitCode.TARGET_UNUSABLE)
    sys.exit(ExitCode.CHECK_FAILED if failed else ExitCode.PASSED)
