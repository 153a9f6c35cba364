"""AWS_IAM authorization of a route: SigV4 (service ``execute-api``) and identity-policy evaluation.

Sources: docs/aws-behaviour.md §1.1 (only identity-based policies decide; HTTP APIs have no resource
policies), §1.2 (failure statuses and messages), §1.3 (the execute-api ARN with the literal
``$default`` stage), and the IAM policy evaluation logic (explicit deny wins, then an allow,
else the implicit default deny; ``*`` and ``?`` wildcards; actions match case-insensitively,
resources case-sensitively).

Failure answers (all 403; the HTTP API bodies are UNCONFIRMED, docs/aws-behaviour.md §10.1). The
choice made here, following the only HTTP-API observation (the reason is in
``$context.authorizer.error``, the body is terse):

    case                               body                           x-amzn-ErrorType
    unsigned / malformed Authorization {"message":"Forbidden"}        MissingAuthenticationTokenException /
                                                                      IncompleteSignatureException
    unknown access key, bad token      {"message":"<SigV4 message>"}  UnrecognizedClientException
    expired role session               {"message":"The security token ExpiredTokenException
                                        included in the request is
                                        expired"}  (§12.2; HTTP API body §10.13)
    bad signature, expired, not yet,   {"message":"<SigV4 message>"}  InvalidSignatureException
      wrong region/service/date scope
    signed but not allowed             {"message":"Forbidden"}        AccessDeniedException

Policies are decided by the core IAM evaluator (:mod:`loadcheck.core.iam`, which lists what it
evaluates and refuses): identity-based policies only (HTTP APIs have no resource policies), with
``aws:SourceIp`` (the client address), ``aws:SecureTransport`` (always true: HTTPS only) and
``aws:PrincipalArn``/``aws:PrincipalAccount`` in the request context. Identities and their
policies come from :class:`loadcheck.core.state.IdentityStore`, so a policy the evaluator cannot
decide stops the gateway at start with a ConfigError. Role sessions (``X-Amz-Security-Token``)
issued by the aws endpoint's STS are known from the moment STS answers (the store looks again
when a request names a key it does not hold) and carry their role's policies.
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadcheck.core import iam
from loadcheck.core.sigv4 import SigV4Failure, credential_key, verify
from loadcheck.core.state import Identities, Identity
from loadcheck.core.state import IdentityStore as CoreIdentityStore

ACTION = "execute-api:Invoke"
SIGNATURE_WINDOW = _dt.timedelta(minutes=5)  # docs/aws-behaviour.md §1.2(c): execute-api uses ±5 min

# SigV4Failure.kind -> (x-amzn-ErrorType, error.responseType, body carries the SigV4 message)
_FAILURES: dict[str, tuple[str, str, bool]] = {
    "missing": ("MissingAuthenticationTokenException", "MISSING_AUTHENTICATION_TOKEN", False),
    "malformed": ("IncompleteSignatureException", "MISSING_AUTHENTICATION_TOKEN", False),
    "unknown_key": ("UnrecognizedClientException", "UNAUTHORIZED", True),
    "token": ("UnrecognizedClientException", "UNAUTHORIZED", True),
    "token_expired": ("ExpiredTokenException", "EXPIRED_TOKEN", True),
    "signature": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "expired": ("InvalidSignatureException", "EXPIRED_TOKEN", True),
    "not_yet": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "scope_region": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "scope_service": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "scope_date": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
}
DECISION_CACHE_SIZE = 4096  # distinct (identity, route path, source IP) decisions kept
# What API Gateway writes to $context.authorizer.error for a request without a usable
# Authorization header (observed on an HTTP API, docs/aws-behaviour.md §1.2(a)).
FORMAT_MESSAGE = "The request for the IAM Authorizer doesn't match the format that API Gateway expects."


@dataclass(frozen=True)
class AuthFailure:
    """Why a request was refused: what the client sees and what the access log records."""

    error_type: str  # x-amzn-ErrorType
    response_type: str  # $context.error.responseType
    body_message: str  # {"message": ...}
    detail: str  # $context.authorizer.error


@dataclass(frozen=True)
class AuthResult:
    identity: Identity | None = None
    access_key: str | None = None
    failure: AuthFailure | None = None


# The fault allow-denied: a broken policy that grants what it should not.
ALLOW_ALL = iam.Policy.parse(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    kind=iam.PolicyKind.IDENTITY,
    where="fault allow-denied",
)


class IdentityStore:
    """The core :class:`~loadcheck.core.state.IdentityStore` read as ``(by access key, secrets)``,
    the shape the gateway's process wiring (``__main__``) takes for its log-shipping client."""

    def __init__(
        self, path: str | os.PathLike[str], *, recheck_s: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = CoreIdentityStore(path, recheck_s=recheck_s, clock=clock)

    def current(self) -> tuple[dict[str, Identity], dict[str, tuple[str, str | None]]]:
        ids = self.store.current()
        return ids.by_key, ids.secrets


class Authorizer:
    """Verifies SigV4 and evaluates ``execute-api:Invoke`` on the route ARN."""

    def __init__(
        self,
        *,
        store: IdentityStore | CoreIdentityStore | Identities,
        region: str,
        account_id: str,
        api_id: str,
        now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC),
        window: _dt.timedelta = SIGNATURE_WINDOW,
        allow_denied: Callable[[], bool] = lambda: False,
    ) -> None:
        self._identities = store.store if isinstance(store, IdentityStore) else store
        self._identities.current()  # loads now: a bad identities file stops the gateway at start
        self.region = region
        self.account_id = account_id
        self.api_id = api_id
        self._now = now
        self._window = window
        self._allow_denied = allow_denied
        # (the identities set the decisions were made under, {(name, arn, principal arn, route, source ip,
        # override): (route ARN, decision)})
        self._decisions: tuple[Identities | None, dict[tuple[object, ...], tuple[str, iam.Decision]]] = (None, {})

    def _decide(
        self, identities: Identities, identity: Identity, route: str, source_ip: str | None, override: bool
    ) -> tuple[str, iam.Decision]:
        """The route ARN and the IAM decision, remembered per identities set.

        A decision depends only on the policies, the principal, the resource and the request
        context (source IP; the transport is always TLS), so it is kept until the identities or
        sessions file changes (a new :class:`Identities` set: policies, keys and sessions are
        read again) and bounded in size. Session expiry is SigV4's check, made before this one
        on every request.
        """
        key = (identity.name, identity.arn, identity.principal_arn, route, source_ip, override)
        cache = self._decisions
        if cache[0] is not identities:
            cache = self._decisions = (identities, {})
        found = cache[1].get(key)
        if found is not None:
            return found
        resource = iam.route_arn(self.region, self.account_id, self.api_id, route)
        policies = (ALLOW_ALL,) if override else identities.policies.get(identity.name, ())
        request = iam.Request(
            action=ACTION, resource=resource, principal=identity.principal, source_ip=source_ip, secure_transport=True
        )
        found = (resource, iam.evaluate(request, identity_policies=policies))
        if len(cache[1]) >= DECISION_CACHE_SIZE:
            cache[1].clear()
        cache[1][key] = found
        return found

    def authorize(
        self,
        *,
        method: str,
        raw_path: str,
        raw_query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        route_method: str,
        route_path: str,
        source_ip: str | None = None,
    ) -> AuthResult:
        identities = self._identities.for_key(credential_key(headers))
        try:
            verified = verify(
                method=method,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=headers,
                body=body,
                service="execute-api",
                region=self.region,
                secret_for=identities.secrets,
                now=self._now(),
                window=self._window,
                expires_at=identities.expiry,
            )
        except SigV4Failure as exc:
            error_type, response_type, verbose = _FAILURES.get(
                exc.kind, ("InvalidSignatureException", "INVALID_SIGNATURE", True)
            )
            detail = FORMAT_MESSAGE if exc.kind == "missing" else exc.message
            return AuthResult(
                failure=AuthFailure(error_type, response_type, exc.message if verbose else "Forbidden", detail)
            )
        identity = identities.by_key[verified.access_key]
        override = identity.name == "denied" and self._allow_denied()
        resource, decision = self._decide(identities, identity, f"{route_method} {route_path}", source_ip, override)
        if decision is iam.Decision.ALLOW:
            return AuthResult(identity=identity, access_key=verified.access_key)
        why = (
            "with an explicit deny in an identity-based policy"
            if decision is iam.Decision.DENY
            else "because no identity-based policy allows the execute-api:Invoke action"
        )
        detail = f"User: {identity.arn} is not authorized to perform: {ACTION} on resource: {resource} {why}"
        return AuthResult(
            identity=identity,
            access_key=verified.access_key,
            failure=AuthFailure("AccessDeniedException", "ACCESS_DENIED", "Forbidden", detail),
        )


__all__ = [
    "ALLOW_ALL",
    "ACTION",
    "AuthFailure",
    "AuthResult",
    "Authorizer",
    "IdentityStore",
]
