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
    bad signature, expired, not yet,   {"message":"<SigV4 message>"}  InvalidSignatureException
      wrong region/service/date scope
    signed but not allowed             {"message":"Forbidden"}        AccessDeniedException

Departures from IAM: ``Condition`` blocks are not evaluated; a statement with a Condition is
treated the safe way (an Allow with a Condition never grants; a Deny with a Condition is taken
to hold whenever its Action and Resource match). Policy variables (``${aws:username}``) are not expanded. Permission boundaries, SCPs
and session policies do not exist locally.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from loadcheck.core.sigv4 import SigV4Failure, verify
from loadcheck.core.state import Identity, load_identities

log = logging.getLogger("loadcheck.gateway.auth")

ACTION = "execute-api:Invoke"
SIGNATURE_WINDOW = _dt.timedelta(minutes=5)  # docs/aws-behaviour.md §1.2(c): execute-api uses ±5 min

# SigV4Failure.kind -> (x-amzn-ErrorType, error.responseType, body carries the SigV4 message)
_FAILURES: dict[str, tuple[str, str, bool]] = {
    "missing": ("MissingAuthenticationTokenException", "MISSING_AUTHENTICATION_TOKEN", False),
    "malformed": ("IncompleteSignatureException", "MISSING_AUTHENTICATION_TOKEN", False),
    "unknown_key": ("UnrecognizedClientException", "UNAUTHORIZED", True),
    "token": ("UnrecognizedClientException", "UNAUTHORIZED", True),
    "signature": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "expired": ("InvalidSignatureException", "EXPIRED_TOKEN", True),
    "not_yet": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "scope_region": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "scope_service": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
    "scope_date": ("InvalidSignatureException", "INVALID_SIGNATURE", True),
}
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


def route_arn(*, region: str, account_id: str, api_id: str, method: str, path: str, stage: str = "$default") -> str:
    """``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}`` (§1.3); ``path``
    starts with ``/``."""
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}{path}"


# ------------------------------------------------------------------------------------------
# Identity-policy evaluation


@lru_cache(maxsize=1024)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # IAM wildcards: * = any run of characters (including "/" and ":"), ? = exactly one.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _pattern(pattern, ignore_case).match(value) is not None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _statement_matches(stmt: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in stmt:
        if not any(wildcard_match(p, action, ignore_case=True) for p in _as_list(stmt["Action"])):
            return False
    elif "NotAction" in stmt:
        if any(wildcard_match(p, action, ignore_case=True) for p in _as_list(stmt["NotAction"])):
            return False
    else:
        return False  # IAM requires Action or NotAction; a statement with neither grants nothing
    if "Resource" in stmt:
        return any(wildcard_match(p, resource) for p in _as_list(stmt["Resource"]))
    if "NotResource" in stmt:
        return not any(wildcard_match(p, resource) for p in _as_list(stmt["NotResource"]))
    return False


def evaluate(policies: list[dict[str, Any]], *, action: str, resource: str) -> str:
    """``"deny"`` (explicit), ``"allow"`` or ``"implicit"`` (no statement allows: default deny)."""
    allowed = False
    for doc in policies:
        statements = doc.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        for stmt in statements:
            if not isinstance(stmt, dict):
                continue
            effect = stmt.get("Effect")
            has_condition = bool(stmt.get("Condition"))
            # Conditions are not evaluated: a conditional Deny is taken to hold (fail closed).
            if effect == "Deny" and _statement_matches(stmt, action, resource):
                return "deny"
            if effect == "Allow" and not has_condition and _statement_matches(stmt, action, resource):
                allowed = True
    return "allow" if allowed else "implicit"


ALLOW_ALL = [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]


# ------------------------------------------------------------------------------------------
# Identities file, reloaded when it changes


class IdentityStore:
    """identities.json, re-read when its inode, mtime or size changes, so the supervisor can rotate
    keys. The file is looked at no more often than every ``recheck_s`` seconds (a ``stat`` per
    request would be a system call, and a GIL hand-off, on the hot path)."""

    def __init__(self, path: str, *, recheck_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = path
        self._recheck_s = recheck_s
        self._clock = clock
        self._next_check = float("-inf")
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = (-1, -1, -1)  # never a real stamp: load on first use
        self._by_key: dict[str, Identity] = {}
        self._secrets: dict[str, tuple[str, str | None]] = {}

    def current(self) -> tuple[dict[str, Identity], dict[str, tuple[str, str | None]]]:
        now = self._clock()
        if now < self._next_check:
            return self._by_key, self._secrets
        with self._lock:
            # The next check is scheduled only once the file has been read: a thread arriving
            # while another loads waits here instead of reading a half-built (first: empty) map.
            if now < self._next_check:
                return self._by_key, self._secrets
            try:
                st = os.stat(self._path)
                stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if stamp != self._stamp:
                if stamp is None:
                    log.warning("identities file %s does not exist: every signed request will be refused", self._path)
                identities = load_identities(self._path) if stamp else {}
                self._by_key = {i.access_key_id: i for i in identities.values()}
                self._secrets = {i.access_key_id: (i.secret_access_key, i.session_token) for i in identities.values()}
                self._stamp = stamp
            self._next_check = self._clock() + self._recheck_s
            return self._by_key, self._secrets


class Authorizer:
    """Verifies SigV4 and evaluates ``execute-api:Invoke`` on the route ARN."""

    def __init__(
        self,
        *,
        store: IdentityStore,
        region: str,
        account_id: str,
        api_id: str,
        now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC),
        window: _dt.timedelta = SIGNATURE_WINDOW,
        allow_denied: Callable[[], bool] = lambda: False,
    ) -> None:
        self._store = store
        self.region = region
        self.account_id = account_id
        self.api_id = api_id
        self._now = now
        self._window = window
        self._allow_denied = allow_denied

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
    ) -> AuthResult:
        by_key, secrets = self._store.current()
        try:
            verified = verify(
                method=method,
                raw_path=raw_path,
                raw_query=raw_query,
                headers=headers,
                body=body,
                service="execute-api",
                region=self.region,
                secret_for=secrets,
                now=self._now(),
                window=self._window,
            )
        except SigV4Failure as exc:
            error_type, response_type, verbose = _FAILURES.get(
                exc.kind, ("InvalidSignatureException", "INVALID_SIGNATURE", True)
            )
            detail = FORMAT_MESSAGE if exc.kind == "missing" else exc.message
            return AuthResult(
                failure=AuthFailure(error_type, response_type, exc.message if verbose else "Forbidden", detail)
            )
        identity = by_key[verified.access_key]
        resource = route_arn(
            region=self.region, account_id=self.account_id, api_id=self.api_id, method=route_method, path=route_path
        )
        policies = identity.policies
        if identity.name == "denied" and self._allow_denied():
            policies = ALLOW_ALL  # fault allow-denied: a broken policy grants what it should not
        decision = evaluate(policies, action=ACTION, resource=resource)
        if decision == "allow":
            return AuthResult(identity=identity, access_key=verified.access_key)
        why = (
            "with an explicit deny in an identity-based policy"
            if decision == "deny"
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
    "evaluate",
    "route_arn",
    "wildcard_match",
]
