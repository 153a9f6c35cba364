"""Who may call the domain: SigV4 (service ``es``) and the domain access policy.

A request is authenticated with :func:`loadcheck.core.sigv4.verify` against the keys of
``identities.json`` (a request without ``Authorization`` is *anonymous*), then authorized
(docs/aws-behaviour.md §9.3, AOS:ac):

- action ``es:ESHttp<Method>`` (``ESHttpGet``, ``ESHttpPost``, ``ESHttpPut``, ``ESHttpDelete``,
  ``ESHttpHead``, ``ESHttpPatch``); policies may say ``es:ESHttp*``, ``es:*`` or ``*``;
- resource ``<domain_arn>/<path>`` (``.../domain/d/terms/_search``; ``GET /`` is
  ``.../domain/d/``), so ``<domain_arn>/*`` covers everything and the bare domain ARN nothing;
- the domain's resource policy: a statement applies when its Principal names the caller:
  ``"*"`` (anyone, anonymous included), the account root ``arn:aws:iam::<acct>:root`` or the
  bare account id (any principal of that account), a user ARN, or a role ARN (any assumed-role
  session of that role; the session ARN itself also matches);
- the caller's identity-based policies (``policies`` in identities.json) for signed callers of
  the domain's account: in one account, IAM allows when either policy allows;
- an explicit Deny in either wins; wildcards ``*`` and ``?`` in Action and Resource.

Failures answer 403 with the AWS front end's bodies (docs/aws-behaviour.md §9.2): anonymous and
not allowed → ``{"Message": "User: anonymous is not authorized to perform: es:ESHttpPost because
no resource-based policy allows the es:ESHttpPost action"}``; signed and not allowed →
``{"Message": "User: <caller arn> is not authorized to perform: es:ESHttpGet on resource: <domain>"}``;
SigV4 failures → ``{"message": "<SigV4 error>"}`` (lower-case key).

Departures from AWS (docs/fidelity.md, section search):

- The signature window is ±5 minutes (config ``signature_window_s``, default 300), the IAM
  SigV4 documentation's general rule; the window AWS applies for ``es`` is UNCONFIRMED.
- The bad-signature message omits the canonical request and string-to-sign AWS appends.
- ``on resource:`` names the domain (as in the one public sample,
  DataBiosphere/team-lighthouse-point#274); whether AWS adds the path is UNCONFIRMED.
- Conditions: only ``IpAddress``/``NotIpAddress`` on ``aws:SourceIp``; NotPrincipal and other
  condition operators are refused when the service starts (ConfigError naming them).
- Fine-grained access control (internal users, roles mapping) is not modelled.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import SigV4Failure, verify
from loadcheck.core.state import Identity, identity_by_access_key, secrets_by_access_key

SERVICE = "es"
ACTIONS = {
    "GET": "ESHttpGet",
    "POST": "ESHttpPost",
    "PUT": "ESHttpPut",
    "DELETE": "ESHttpDelete",
    "HEAD": "ESHttpHead",
    "PATCH": "ESHttpPatch",
}
_CONDITION_OPERATORS = {"IpAddress", "NotIpAddress"}


@dataclass(frozen=True)
class Caller:
    """The authenticated caller; ``identity`` is None for anonymous requests."""

    identity: Identity | None

    @property
    def arn(self) -> str:
        return self.identity.arn if self.identity else "anonymous"

    @property
    def account(self) -> str | None:
        return self.identity.arn.split(":")[4] if self.identity else None


class AuthFailure(Exception):
    """A request the AWS front end refuses; ``body`` is the JSON it answers with (status 403)."""

    def __init__(self, body: dict[str, str], status: int = 403) -> None:
        super().__init__(next(iter(body.values())))
        self.body = body
        self.status = status


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    # IAM wildcards: * and ? only; fnmatch's [...] classes must not apply.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


@dataclass
class Statement:
    effect: str
    principals: list[str] | None  # None for identity-based statements
    actions: list[str]
    not_actions: list[str]
    resources: list[str]
    not_resources: list[str]
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def matches_action(self, action: str) -> bool:
        if self.not_actions:
            return not any(_wildcard(a, action, case_sensitive=False) for a in self.not_actions)
        return any(_wildcard(a, action, case_sensitive=False) for a in self.actions)

    def matches_resource(self, resource: str) -> bool:
        if self.not_resources:
            return not any(_wildcard(r, resource) for r in self.not_resources)
        return any(_wildcard(r, resource) for r in self.resources)

    def matches_principal(self, caller: Caller) -> bool:
        assert self.principals is not None
        for p in self.principals:
            if p == "*":
                return True
            if caller.identity is None:
                continue
            ident = caller.identity
            if p in (ident.arn, ident.principal_arn):
                return True
            if p in (f"arn:aws:iam::{caller.account}:root", caller.account):
                return True
        return False

    def matches_conditions(self, source_ip: str) -> bool:
        for operator, tests in self.conditions.items():
            for _key, values in tests.items():
                ip = ipaddress.ip_address(source_ip)
                inside = any(ip in ipaddress.ip_network(v, strict=False) for v in _as_list(values))
                if (operator == "IpAddress") != inside:
                    return False
        return True


def parse_policy(document: Any, *, resource_policy: bool, where: str) -> list[Statement]:
    """Validate a policy document; raise ConfigError naming what is unsupported."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise ConfigError(f"{where}: the policy is not valid JSON ({exc})", value=document) from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise ConfigError(
            f"{where}: a policy document needs a Statement",
            value=document,
            hint='write {"Version": "2012-10-17", "Statement": [...]}',
        )
    out = []
    for i, st in enumerate(_as_list(document["Statement"])):
        at = f"{where}: Statement[{i}]"
        if st.get("Effect") not in ("Allow", "Deny"):
            raise ConfigError(f"{at}: Effect must be Allow or Deny", value=st.get("Effect"))
        if "NotPrincipal" in st:
            raise ConfigError(
                f"{at}: NotPrincipal is not supported by the local search service",
                value=st,
                hint="name the principals with Principal",
            )
        principals = None
        if resource_policy:
            raw = st.get("Principal")
            if raw == "*":
                principals = ["*"]
            elif isinstance(raw, dict) and set(raw) <= {"AWS"}:
                principals = [str(p) for p in _as_list(raw.get("AWS", []))]
            else:
                raise ConfigError(f'{at}: Principal must be "*" or {{"AWS": [...]}}', value=raw)
        conditions = st.get("Condition", {}) or {}
        for operator, tests in conditions.items():
            if operator not in _CONDITION_OPERATORS or set(tests) != {"aws:SourceIp"}:
                raise ConfigError(
                    f"{at}: condition {operator} {sorted(tests)} is not supported by the local search service",
                    value=conditions,
                    hint="use IpAddress/NotIpAddress on aws:SourceIp",
                )
        out.append(
            Statement(
                effect=st["Effect"],
                principals=principals,
                actions=[str(a) for a in _as_list(st.get("Action", []))],
                not_actions=[str(a) for a in _as_list(st.get("NotAction", []))],
                resources=[str(r) for r in _as_list(st.get("Resource", []))],
                not_resources=[str(r) for r in _as_list(st.get("NotResource", []))],
                conditions=conditions,
            )
        )
    return out


class Authorizer:
    """Authenticates (SigV4 ``es``) and authorizes requests to one domain."""

    def __init__(
        self,
        *,
        domain_arn: str,
        access_policy: Any,
        identities: Mapping[str, Identity],
        region: str,
        window: _dt.timedelta = _dt.timedelta(minutes=5),
        now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC),
    ) -> None:
        if not re.fullmatch(r"arn:aws[a-z-]*:es:[a-z0-9-]+:\d{12}:domain/[a-z][a-z0-9-]{2,27}", domain_arn):
            raise ConfigError(
                f"domain_arn {domain_arn!r} is not an OpenSearch domain ARN",
                value=domain_arn,
                hint="use arn:aws:es:<region>:<account>:domain/<name>",
            )
        self.domain_arn = domain_arn
        self.domain_name = domain_arn.rsplit("/", 1)[1]
        self.account = domain_arn.split(":")[4]
        self.region = region
        self.window = window
        self._now = now
        self.resource_policy = parse_policy(access_policy, resource_policy=True, where="access_policy")
        self.identities = dict(identities)
        self._secrets = secrets_by_access_key(self.identities)
        self._by_key = identity_by_access_key(self.identities)
        self._identity_policies = {
            name: [
                s
                for doc in ident.policies
                for s in parse_policy(doc, resource_policy=False, where=f"identities.{name}.policies")
            ]
            for name, ident in self.identities.items()
        }

    def resource_for(self, raw_path: str) -> str:
        return f"{self.domain_arn}/{unquote(raw_path).lstrip('/')}"

    def authenticate(
        self, *, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes
    ) -> Caller:
        if not any(n.lower() == "authorization" for n, _ in headers):
            return Caller(None)
        try:
            verified = verify(
                method=method,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=headers,
                body=body,
                service=SERVICE,
                region=self.region,
                secret_for=self._secrets,
                now=self._now(),
                window=self.window,
            )
        except SigV4Failure as exc:
            raise AuthFailure({"message": exc.message}) from None
        return Caller(self._by_key[verified.access_key])

    def authorize(self, caller: Caller, *, method: str, raw_path: str, source_ip: str = "127.0.0.1") -> None:
        action = f"es:{ACTIONS.get(method.upper(), 'ESHttp' + method.capitalize())}"
        resource = self.resource_for(raw_path)
        allowed = False
        for st in self.resource_policy:
            if (
                st.matches_principal(caller)
                and st.matches_action(action)
                and st.matches_resource(resource)
                and st.matches_conditions(source_ip)
            ):
                if st.effect == "Deny":
                    raise self._denied(caller, action)
                allowed = True
        if caller.identity is not None and caller.account == self.account:
            for st in self._identity_policies.get(caller.identity.name, []):
                if st.matches_action(action) and st.matches_resource(resource) and st.matches_conditions(source_ip):
                    if st.effect == "Deny":
                        raise self._denied(caller, action)
                    allowed = True
        if not allowed:
            raise self._denied(caller, action)

    def _denied(self, caller: Caller, action: str) -> AuthFailure:
        if caller.identity is None:
            return AuthFailure(
                {
                    "Message": f"User: anonymous is not authorized to perform: {action} because no "
                    f"resource-based policy allows the {action} action"
                }
            )
        return AuthFailure(
            {"Message": f"User: {caller.arn} is not authorized to perform: {action} on resource: {self.domain_name}"}
        )

    def check(
        self,
        *,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str = "127.0.0.1",
    ) -> Caller:
        """Authenticate then authorize; raises AuthFailure."""
        caller = self.authenticate(method=method, raw_path=raw_path, raw_query=raw_query, headers=headers, body=body)
        self.authorize(caller, method=method, raw_path=raw_path, source_ip=source_ip)
        return caller
