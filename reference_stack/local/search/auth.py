"""Who may call the domain: SigV4 (service ``es``) and the domain access policy.

A request is authenticated with :func:`loadcheck.core.sigv4.verify` against the keys of
``identities.json`` (a request without ``Authorization`` is *anonymous*), then authorized
(docs/aws-behaviour.md §9.3, AOS:ac):

- action ``es:ESHttp<Method>`` (``ESHttpGet``, ``ESHttpPost``, ``ESHttpPut``, ``ESHttpDelete``,
  ``ESHttpHead``, ``ESHttpPatch``); policies may say ``es:ESHttp*``, ``es:*`` or ``*``;
- resource ``<domain_arn>/<path>`` (``.../domain/d/terms/_search``; ``GET /`` is
  ``.../domain/d/``), so ``<domain_arn>/*`` covers everything and the bare domain ARN nothing;
- the domain's resource policy and the caller's identity-based policies (``policies`` in
  identities.json, reloaded when the file changes: :class:`loadcheck.core.state.IdentityStore`)
  are decided by the core IAM evaluator, :mod:`loadcheck.core.iam` (Principal and NotPrincipal,
  wildcards, conditions; in one account IAM allows when either policy allows, an explicit Deny in
  either wins). The request context holds ``aws:SourceIp`` (the client address),
  ``aws:SecureTransport`` (false: the local service speaks plain HTTP, while the AWS domain
  enforces HTTPS) and, for signed callers, ``aws:PrincipalArn`` and ``aws:PrincipalAccount``.

Failures answer 403 with the AWS front end's bodies (docs/aws-behaviour.md §9.2): anonymous and
not allowed → ``{"Message": "User: anonymous is not authorized to perform: es:ESHttpPost because
no resource-based policy allows the es:ESHttpPost action"}``; signed and not allowed →
``{"Message": "User: <caller arn> is not authorized to perform: es:ESHttpGet on resource: <domain>"}``;
SigV4 failures → ``{"message": "<SigV4 error>"}`` (lower-case key), an expired role session
(``X-Amz-Security-Token`` from the aws endpoint's STS) included: ``{"message": "The security
token included in the request is expired"}`` (docs/aws-behaviour.md §12.2).

Departures from AWS (docs/fidelity.md, section search):

- The signature window is ±5 minutes (config ``signature_window_s``, default 300), the IAM
  SigV4 documentation's general rule; the window AWS applies for ``es`` is UNCONFIRMED.
- The bad-signature message omits the canonical request and string-to-sign AWS appends.
- ``on resource:`` names the domain (as in the one public sample,
  DataBiosphere/team-lighthouse-point#274); whether AWS adds the path is UNCONFIRMED.
- Policies the core evaluator cannot decide (see :mod:`loadcheck.core.iam`) are refused when the
  service starts, with a ConfigError naming the statement.
- Fine-grained access control (internal users, roles mapping) is not modelled.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from loadcheck.core import iam
from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import SigV4Failure, credential_key, verify
from loadcheck.core.state import Identities, Identity, IdentityStore

SERVICE = "es"
ACTIONS = {
    "GET": "ESHttpGet",
    "POST": "ESHttpPost",
    "PUT": "ESHttpPut",
    "DELETE": "ESHttpDelete",
    "HEAD": "ESHttpHead",
    "PATCH": "ESHttpPatch",
}


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


class Authorizer:
    """Authenticates (SigV4 ``es``) and authorizes requests to one domain."""

    def __init__(
        self,
        *,
        domain_arn: str,
        access_policy: Any,
        identities: IdentityStore | Identities,
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
        self.resource_policy = iam.Policy.parse(access_policy, kind=iam.PolicyKind.RESOURCE, where="access_policy")
        self._identities = identities
        self._identities.current()  # loads now: a bad identities file stops the service at start

    def resource_for(self, raw_path: str) -> str:
        return f"{self.domain_arn}/{unquote(raw_path).lstrip('/')}"

    def authenticate(
        self, *, method: str, raw_path: str, raw_query: str, headers: list[tuple[str, str]], body: bytes
    ) -> Caller:
        if not any(n.lower() == "authorization" for n, _ in headers):
            return Caller(None)
        identities = self._identities.for_key(credential_key(headers))
        try:
            verified = verify(
                method=method,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=headers,
                body=body,
                service=SERVICE,
                region=self.region,
                secret_for=identities.secrets,
                now=self._now(),
                window=self.window,
                expires_at=identities.expiry,
            )
        except SigV4Failure as exc:
            raise AuthFailure({"message": exc.message}) from None
        return Caller(identities.by_key[verified.access_key])

    def authorize(self, caller: Caller, *, method: str, raw_path: str, source_ip: str = "127.0.0.1") -> None:
        action = f"es:{ACTIONS.get(method.upper(), 'ESHttp' + method.capitalize())}"
        resource = self.resource_for(raw_path)
        identity_policies: tuple[iam.Policy, ...] = ()
        if caller.identity is not None:
            identity_policies = self._identities.current().policies.get(caller.identity.name, ())
        request = iam.Request(
            action=action,
            resource=resource,
            principal=caller.identity.principal if caller.identity else None,
            source_ip=source_ip,
            secure_transport=False,
        )
        decision = iam.evaluate(
            request,
            identity_policies=identity_policies,
            resource_policy=self.resource_policy,
            resource_account=self.account,
        )
        if decision is not iam.Decision.ALLOW:
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
