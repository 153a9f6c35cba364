"""IAM policy evaluation for the local stack: one evaluator, pure (no I/O), used by every service.

Policies are parsed once, when they are loaded (:meth:`Policy.parse`): anything this evaluator
cannot decide exactly (an unknown condition operator or key, a malformed statement, a policy
variable) is a :class:`~loadcheck.core.errors.ConfigError` naming the statement and the fix, so a
policy is never silently taken to allow or to deny. :func:`evaluate` then decides a
:class:`Request` against identity-based policies and, where the service has one, a
resource-based policy.

The logic follows the AWS documentation:

- evaluation: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
  (an explicit Deny in any policy wins; otherwise an Allow in an identity-based *or* the
  resource-based policy allows within one account; cross-account, both must allow; otherwise
  the implicit default deny);
- condition operators:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html
  (a key absent from the request makes a condition false, except that a negated operator
  (``StringNotEquals``, ``StringNotLike``, ``NotIpAddress``, ``ArnNotEquals``, ``ArnNotLike``, ...)
  is then true; ``...IfExists`` is true when the key is absent; ``Null`` tests presence);
- several operators, and several keys under one operator: AND; several values for one key: OR,
  and NOR for a negated operator:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html
- Action matches case-insensitively, Resource case-sensitively; ``*`` matches any run of
  characters (``/`` and ``:`` included), ``?`` exactly one:
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
- Principal: ``"*"`` (anyone, anonymous included), an account id or ``arn:aws:iam::<acct>:root``
  (every principal of that account), a user or role ARN (a role matches each of its sessions),
  an assumed-role session ARN; no partial wildcards (AWS refuses them too):
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html

Supported: operators ``StringEquals``, ``StringNotEquals``, ``StringEqualsIgnoreCase``,
``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike``, ``IpAddress``,
``NotIpAddress``, ``Bool``, ``ArnEquals``, ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike``, each
also as ``...IfExists``, and ``Null``; keys (case-insensitive) in :data:`CONDITION_KEYS`.

Departures from IAM (docs/fidelity.md, "IAM policy evaluation"):

- Not evaluated, refused at load: policy variables (``${aws:username}``), the ``ForAnyValue:`` /
  ``ForAllValues:`` set operators, the Numeric/Date/Binary operators, condition keys outside
  :data:`CONDITION_KEYS`, ``Federated`` and ``CanonicalUser`` principals.
- ``NotPrincipal`` excludes a caller when it names the caller's ARN, its user or role ARN, or its
  account; AWS additionally expects a Deny with NotPrincipal to list the account and the role of a
  session, and denies the session otherwise.
- A ``Service`` principal never matches: no AWS service calls the local stack.
- Permission boundaries, SCPs/RCPs, session policies and the Version ``2008-10-17`` differences
  do not exist here.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from loadcheck.core.errors import ConfigError

CONDITION_OPERATORS_URL = (
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html"
)


def route_arn(region: str, account_id: str, api_id: str, route_key: str, stage: str = "$default") -> str:
    """The execute-api ARN of an HTTP API route, the Resource that ``execute-api:Invoke`` names:
    ``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/{path}`` (``route_key`` is
    ``"GET /events"``). https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-access-control-iam.html
    """
    method, path = route_key.split(" ", 1)
    return f"arn:aws:execute-api:{region}:{account_id}:{api_id}/{stage}/{method}{path}"


# ------------------------------------------------------------------------------------------
# Matching


@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: ``*`` any run of characters (also empty, also ``/`` and ``:``), ``?`` exactly
    one; every other character literal."""
    return _pattern(pattern, ignore_case).match(value) is not None


def arn_match(pattern: str, value: str) -> bool:
    """``ArnLike``/``ArnEquals``: each of the six colon-separated parts matched on its own, so a
    wildcard never spans a ``:`` before the resource part."""
    p, v = pattern.split(":", 5), value.split(":", 5)
    return len(p) == len(v) == 6 and all(wildcard_match(a, b) for a, b in zip(p, v, strict=True))


# ------------------------------------------------------------------------------------------
# The request


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``arn`` is the caller (a user ARN or an assumed-role session ARN),
    ``principal_arn`` what a policy names (the user or role ARN)."""

    arn: str
    principal_arn: str

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


@dataclass(frozen=True)
class Request:
    """What is asked: ``principal`` None is an anonymous (unsigned) caller. ``source_ip`` and
    ``secure_transport`` fill ``aws:SourceIp`` and ``aws:SecureTransport``; the principal fills
    ``aws:PrincipalArn`` and ``aws:PrincipalAccount``."""

    action: str
    resource: str
    principal: Principal | None = None
    source_ip: str | None = None
    secure_transport: bool | None = None

    def context(self) -> dict[str, str]:
        """The request context: condition key (lower case) -> value; absent keys are missing."""
        ctx: dict[str, str] = {}
        if self.principal is not None:
            ctx["aws:principalarn"] = self.principal.principal_arn
            ctx["aws:principalaccount"] = self.principal.account
        if self.source_ip is not None:
            ctx["aws:sourceip"] = self.source_ip
        if self.secure_transport is not None:
            ctx["aws:securetransport"] = "true" if self.secure_transport else "false"
        return ctx


# Condition keys the evaluator knows, with their type (which operators apply to them). The
# aws:SourceAccount and aws:SourceArn keys exist only for service-to-service calls, so they are
# always missing here (AWS: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html).
CONDITION_KEYS: dict[str, str] = {
    "aws:sourceip": "ip",
    "aws:principalarn": "arn",
    "aws:principalaccount": "string",
    "aws:securetransport": "bool",
    "aws:sourceaccount": "string",
    "aws:sourcearn": "arn",
}

# ------------------------------------------------------------------------------------------
# Condition operators: name -> (key types it applies to, negated, test(policy value, request value))


def _ip_in(network: str, value: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False  # a request address of the other family, or none at all


def _bool_eq(expected: str, value: str) -> bool:
    return expected.lower() == value.lower()


_STRINGS = ("string", "arn")
_OPERATORS: dict[str, tuple[tuple[str, ...], bool, Callable[[str, str], bool]]] = {
    "StringEquals": (_STRINGS, False, lambda p, v: p == v),
    "StringNotEquals": (_STRINGS, True, lambda p, v: p == v),
    "StringEqualsIgnoreCase": (_STRINGS, False, lambda p, v: p.casefold() == v.casefold()),
    "StringNotEqualsIgnoreCase": (_STRINGS, True, lambda p, v: p.casefold() == v.casefold()),
    "StringLike": (_STRINGS, False, wildcard_match),
    "StringNotLike": (_STRINGS, True, wildcard_match),
    "IpAddress": (("ip",), False, _ip_in),
    "NotIpAddress": (("ip",), True, _ip_in),
    "Bool": (("bool",), False, _bool_eq),
    "ArnEquals": (("arn",), False, arn_match),
    "ArnLike": (("arn",), False, arn_match),
    "ArnNotEquals": (("arn",), True, arn_match),
    "ArnNotLike": (("arn",), True, arn_match),
}
SUPPORTED_OPERATORS = (*_OPERATORS, *(f"{op}IfExists" for op in _OPERATORS), "Null")


@dataclass(frozen=True)
class Condition:
    """One ``operator: {key: values}`` test of a statement's Condition block."""

    operator: str  # as written, e.g. "StringLikeIfExists"
    key: str  # lower case
    values: tuple[str, ...]

    def holds(self, context: Mapping[str, str]) -> bool:
        value = context.get(self.key)
        if self.operator == "Null":
            return (value is None) == (self.values[0].lower() == "true")
        if_exists = self.operator.endswith("IfExists")
        _types, negated, test = _OPERATORS[self.operator.removesuffix("IfExists")]
        if value is None:
            return if_exists or negated
        matched = any(test(p, value) for p in self.values)
        return not matched if negated else matched


# ------------------------------------------------------------------------------------------
# Parsed policies


class PolicyKind(enum.StrEnum):
    IDENTITY = "identity"
    RESOURCE = "resource"
    TRUST = "trust"  # a role's trust policy: a resource-based policy whose resource is the role


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" | "Deny"
    actions: tuple[str, ...]
    not_action: bool  # actions came from NotAction
    resources: tuple[str, ...]
    not_resource: bool
    principals: tuple[str, ...] | None = None  # None in identity-based policies
    not_principal: bool = False
    conditions: tuple[Condition, ...] = ()
    where: str = ""

    def applies(self, request: Request, context: Mapping[str, str]) -> bool:
        if self.principals is not None and _names(self.principals, request.principal) == self.not_principal:
            return False
        if any(wildcard_match(a, request.action, ignore_case=True) for a in self.actions) == self.not_action:
            return False
        if any(wildcard_match(r, request.resource) for r in self.resources) == self.not_resource:
            return False
        return all(c.holds(context) for c in self.conditions)


def _names(principals: tuple[str, ...], caller: Principal | None) -> bool:
    """Whether a Principal list names the caller (principals are already normalised)."""
    if "*" in principals:
        return True
    if caller is None:
        return False
    account = caller.account
    return any(p in (caller.arn, caller.principal_arn, account, f"arn:aws:iam::{account}:root") for p in principals)


@dataclass(frozen=True)
class Policy:
    """A validated policy document."""

    kind: PolicyKind
    statements: tuple[Statement, ...] = field(default=())
    where: str = ""

    @classmethod
    def parse(cls, document: Any, *, kind: PolicyKind, where: str) -> Policy:
        """Validate ``document`` (a dict, or its JSON text); ``where`` names it in errors."""
        return _Parser(kind, where).policy(document)


class Decision(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"  # an explicit Deny applies
    IMPLICIT = "implicit"  # nothing allows: the default deny


def evaluate(
    request: Request,
    *,
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    resource_account: str | None = None,
) -> Decision:
    """Decide ``request`` (see the module docstring for the rules and their sources).

    ``resource_account`` is the account owning the resource; a caller of another account needs
    an Allow in both its identity-based policies and the resource-based policy. An anonymous
    caller has no identity-based policies: only the resource-based policy can allow it.
    """
    context = request.context()
    allowed_by: set[PolicyKind] = set()
    policies = [*identity_policies, *([resource_policy] if resource_policy is not None else [])]
    for policy in policies:
        for stmt in policy.statements:
            if stmt.applies(request, context):
                if stmt.effect == "Deny":
                    return Decision.DENY
                allowed_by.add(policy.kind)
    caller = request.principal
    if resource_policy is not None and caller is not None and resource_account not in (None, caller.account):
        both = {PolicyKind.IDENTITY, PolicyKind.RESOURCE} <= allowed_by
        return Decision.ALLOW if both else Decision.IMPLICIT
    return Decision.ALLOW if allowed_by else Decision.IMPLICIT


def _names_itself(principals: tuple[str, ...], caller: Principal) -> bool:
    """Whether a Principal list names the caller itself (its ARN, its user or role ARN, or ``*``),
    not only its account."""
    return "*" in principals or caller.arn in principals or caller.principal_arn in principals


def evaluate_assume_role(
    request: Request, *, trust_policy: Policy, identity_policies: Sequence[Policy] = (), role_account: str
) -> Decision:
    """Decide ``sts:AssumeRole`` on a role: its trust policy must allow the caller explicitly.

    Role trust policies are an exception to the same-account rule of :func:`evaluate`
    (docs/aws-behaviour.md §12.1,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):

    - an explicit Deny in the trust policy or in the caller's identity-based policies: DENY;
    - an Allow in the trust policy naming the caller itself (its session or user ARN, its role
      ARN, or ``*``) is enough when the caller is of the role's account;
    - an Allow naming only the caller's account (``arn:aws:iam::<acct>:root`` or the account id)
      delegates to that account: the caller's identity-based policies must allow
      ``sts:AssumeRole`` on the role as well;
    - a caller of another account always needs both;
    - the caller's identity-based policies alone never allow it.
    """
    caller = request.principal
    if caller is None:
        return Decision.IMPLICIT
    context = request.context()
    trusted = trusted_itself = False
    for stmt in trust_policy.statements:
        if stmt.applies(request, context):
            if stmt.effect == "Deny":
                return Decision.DENY
            trusted = True
            if not stmt.not_principal and stmt.principals is not None and _names_itself(stmt.principals, caller):
                trusted_itself = True
    identity_allows = False
    for policy in identity_policies:
        for stmt in policy.statements:
            if stmt.applies(request, context):
                if stmt.effect == "Deny":
                    return Decision.DENY
                identity_allows = True
    if not trusted:
        return Decision.IMPLICIT
    if caller.account == role_account and trusted_itself:
        return Decision.ALLOW
    return Decision.ALLOW if identity_allows else Decision.IMPLICIT


# ------------------------------------------------------------------------------------------
# Validation


_STATEMENT_KEYS = {
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
}


class _Parser:
    def __init__(self, kind: PolicyKind, where: str) -> None:
        self.kind = kind
        self.where = where

    def fail(self, at: str, message: str, value: object, hint: str) -> ConfigError:
        return ConfigError(f"{at}: {message} (got {value!r})", value=value, hint=hint)

    def policy(self, document: Any) -> Policy:
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise self.fail(self.where, f"the policy is not valid JSON ({exc})", document, "fix the JSON") from None
        if not isinstance(document, dict) or "Statement" not in document:
            raise self.fail(
                self.where,
                "a policy document needs a Statement",
                document,
                'write {"Version": "2012-10-17", "Statement": [...]}',
            )
        extra = sorted(set(document) - {"Version", "Id", "Statement"})
        if extra:
            raise self.fail(self.where, f"unknown policy element {extra[0]!r}", extra[0], "use Version, Id, Statement")
        raw = document["Statement"]
        statements = raw if isinstance(raw, list) else [raw]
        return Policy(
            kind=self.kind,
            statements=tuple(self.statement(s, f"{self.where}: Statement[{i}]") for i, s in enumerate(statements)),
            where=self.where,
        )

    def strings(self, value: Any, at: str, element: str) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, str) for v in items):
            raise self.fail(at, f"{element} must be a string or a non-empty list of strings", value, f"fix {element}")
        for v in items:
            if "${" in v:
                raise self.fail(
                    at,
                    f"{element} uses a policy variable, which the local IAM evaluation does not expand",
                    v,
                    "write the value out literally",
                )
        return tuple(items)

    def refuse(self, st: dict[str, Any], at: str, elements: tuple[str, ...], message: str, hint: str) -> None:
        """A ConfigError when ``st`` names any of ``elements`` (``{}`` in the texts: the element)."""
        named = [k for k in elements if k in st]
        if named:
            raise self.fail(at, message.format(named[0]), st[named[0]], hint.format(named[0]))

    def one_of(self, st: dict[str, Any], at: str, positive: str) -> tuple[tuple[str, ...], bool]:
        negative = f"Not{positive}"
        if (positive in st) == (negative in st):
            raise self.fail(
                at,
                f"a statement needs exactly one of {positive} and {negative}",
                {k: st[k] for k in (positive, negative) if k in st},
                f"give the statement either {positive} or {negative}",
            )
        name = positive if positive in st else negative
        return self.strings(st[name], at, name), name == negative

    def statement(self, st: Any, at: str) -> Statement:
        if isinstance(st, dict) and st.get("Sid"):
            at = f"{at} (Sid {st['Sid']})"
        if not isinstance(st, dict):
            raise self.fail(at, "a statement must be a JSON object", st, "write the statement as an object")
        unknown = sorted(set(st) - _STATEMENT_KEYS)
        if unknown:
            raise self.fail(
                at, f"unknown statement element {unknown[0]!r}", unknown[0], f"use {sorted(_STATEMENT_KEYS)}"
            )
        if st.get("Effect") not in ("Allow", "Deny"):
            raise self.fail(at, "Effect must be Allow or Deny", st.get("Effect"), 'write "Effect": "Allow" or "Deny"')
        principals: tuple[str, ...] | None = None
        not_principal = False
        if self.kind is PolicyKind.IDENTITY:
            self.refuse(
                st,
                at,
                ("Principal", "NotPrincipal"),
                "an identity-based policy cannot name a {}",
                "remove {}: the policy applies to the identity it is attached to",
            )
        else:
            if ("Principal" in st) == ("NotPrincipal" in st):
                raise self.fail(
                    at,
                    "a resource-based policy statement needs exactly one of Principal and NotPrincipal",
                    st,
                    'add "Principal": {"AWS": [...]} (or "*")',
                )
            not_principal = "NotPrincipal" in st
            principals = self.principals(st["NotPrincipal" if not_principal else "Principal"], at)
        actions, not_action = self.one_of(st, at, "Action")
        resources: tuple[str, ...]
        if self.kind is PolicyKind.TRUST:
            self.refuse(
                st,
                at,
                ("Resource", "NotResource"),
                "a role trust policy cannot name a {}: the role itself is the resource",
                "remove {} from the trust policy",
            )
            resources, not_resource = ("*",), False
        else:
            resources, not_resource = self.one_of(st, at, "Resource")
        return Statement(
            effect=st["Effect"],
            actions=actions,
            not_action=not_action,
            resources=resources,
            not_resource=not_resource,
            principals=principals,
            not_principal=not_principal,
            conditions=self.conditions(st.get("Condition"), at),
            where=at,
        )

    def principals(self, raw: Any, at: str) -> tuple[str, ...]:
        if raw == "*":
            return ("*",)
        if not isinstance(raw, dict) or not raw:
            raise self.fail(at, 'Principal must be "*" or an object such as {"AWS": [...]}', raw, "fix the Principal")
        out: list[str] = []
        for kind, values in raw.items():
            if kind == "Service":
                self.strings(values, at, "Principal.Service")  # valid, but no AWS service calls the local stack
                continue
            if kind != "AWS":
                raise self.fail(
                    at,
                    f"{kind} principals are not supported by the local IAM evaluation",
                    raw,
                    'name IAM principals with {"AWS": [...]}',
                )
            for p in self.strings(values, at, "Principal.AWS"):
                if p != "*" and ("*" in p or "?" in p):
                    raise self.fail(
                        at,
                        "a Principal cannot hold a partial wildcard (AWS refuses it too)",
                        p,
                        'use "*" and a Condition such as {"ArnLike": {"aws:PrincipalArn": "<pattern>"}}',
                    )
                if p != "*" and not (re.fullmatch(r"\d{12}", p) or p.startswith("arn:")):
                    raise self.fail(at, "an AWS principal is an account id or an ARN", p, "give an ARN or account id")
                out.append(p)
        return tuple(out)

    def conditions(self, raw: Any, at: str) -> tuple[Condition, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, dict):
            raise self.fail(at, "Condition must be an object {operator: {key: values}}", raw, "fix the Condition")
        out: list[Condition] = []
        for operator, tests in raw.items():
            base = operator.removesuffix("IfExists") if operator != "Null" else operator
            if operator not in SUPPORTED_OPERATORS:
                raise self.fail(
                    at,
                    f"condition operator {operator!r} is not supported by the local IAM evaluation",
                    operator,
                    f"use one of {', '.join(SUPPORTED_OPERATORS)} ({CONDITION_OPERATORS_URL})",
                )
            if not isinstance(tests, dict) or not tests:
                raise self.fail(at, f"{operator} must map condition keys to values", tests, "fix the Condition")
            for key, values in tests.items():
                out.append(self.condition(operator, base, key, values, at))
        return tuple(out)

    def condition(self, operator: str, base: str, key: str, values: Any, at: str) -> Condition:
        lkey = key.lower()
        if lkey not in CONDITION_KEYS:
            raise self.fail(
                at,
                f"condition key {key!r} is not known to the local IAM evaluation",
                key,
                f"use one of {', '.join(sorted(CONDITION_KEYS))}",
            )
        items = values if isinstance(values, list) else [values]
        if not items or not all(isinstance(v, (str, bool, int, float)) for v in items):
            raise self.fail(at, f"{operator} {key}: values must be strings or a list of them", values, "fix the values")
        texts = tuple(("true" if v else "false") if isinstance(v, bool) else str(v) for v in items)
        key_type = CONDITION_KEYS[lkey]
        if base in ("Null", "Bool") and not all(t.lower() in ("true", "false") for t in texts):
            raise self.fail(at, f"{operator} {key} takes true or false", values, 'write "true" or "false"')
        if base != "Null" and key_type not in _OPERATORS[base][0]:
            raise self.fail(
                at,
                f"operator {operator} does not apply to {key} (a {key_type} key)",
                operator,
                f"use an operator for {key_type} keys ({CONDITION_OPERATORS_URL})",
            )
        for t in texts:
            if base in ("IpAddress", "NotIpAddress"):
                try:
                    ipaddress.ip_network(t, strict=False)
                except ValueError:
                    raise self.fail(at, f"{operator} {key}: not an IP address or CIDR", t, "e.g. 10.0.0.0/8") from None
            if base.startswith("Arn") and len(t.split(":", 5)) != 6:
                raise self.fail(
                    at,
                    f"{operator} {key}: not an ARN pattern (six ':'-separated parts)",
                    t,
                    "e.g. arn:aws:iam::*:role/x",
                )
        return Condition(operator=operator, key=lkey, values=texts)


__all__ = [
    "CONDITION_KEYS",
    "Condition",
    "Decision",
    "Policy",
    "PolicyKind",
    "Principal",
    "Request",
    "Statement",
    "SUPPORTED_OPERATORS",
    "arn_match",
    "evaluate",
    "route_arn",
    "wildcard_match",
]
