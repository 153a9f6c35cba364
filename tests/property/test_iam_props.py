"""Property tests of the core IAM evaluator (loadcheck/core/iam.py).

The evaluator loops over a request's statements; the reference model here goes the other way
round: it enumerates, for every statement, the set of requests of a small universe that the
statement applies to (with matchers written independently: a textbook glob, the set of names
that designate a caller, one hand-written predicate per condition), and decides each request from
the union of the Deny sets and of the Allow sets.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from loadcheck.core.iam import Decision, Policy, PolicyKind, Principal, Request, evaluate, wildcard_match

ALPHABET = "ab/$:*?.-"
text = st.text(alphabet="ab/$:.-", max_size=8)
pattern = st.text(alphabet=ALPHABET, max_size=8)


def reference_match(p: str, v: str, *, ignore_case: bool = False) -> bool:
    """Textbook recursive glob: * = any run (also empty, also "/"), ? = exactly one character."""
    if ignore_case:
        p, v = p.lower(), v.lower()

    @cache
    def m(i: int, j: int) -> bool:
        if i == len(p):
            return j == len(v)
        if p[i] == "*":
            return m(i + 1, j) or (j < len(v) and m(i, j + 1))
        if j < len(v) and (p[i] == "?" or p[i] == v[j]):
            return m(i + 1, j + 1)
        return False

    return m(0, 0)


@given(pattern, text)
@example("a*", "a/b:c")
@example("?", "")
@example("a.b", "aXb")
@example("$default/*", "$default/GET/x")
def test_wildcard_match_agrees_with_a_reference_glob(p: str, v: str) -> None:
    assert wildcard_match(p, v) is reference_match(p, v)


@given(st.lists(st.tuples(st.sampled_from(["Allow", "Deny"]), pattern), max_size=4), text)
def test_decision_is_deny_if_any_deny_matches_else_allow_if_any_allow_matches(
    stmts: list[tuple[str, str]], resource: str
) -> None:
    doc = {"Statement": [{"Effect": e, "Action": "execute-api:Invoke", "Resource": r} for e, r in stmts]}
    policies = [Policy.parse(doc, kind=PolicyKind.IDENTITY, where="p")] if stmts else []
    denied = any(e == "Deny" and reference_match(r, resource) for e, r in stmts)
    allowed = any(e == "Allow" and reference_match(r, resource) for e, r in stmts)
    expected = "deny" if denied else "allow" if allowed else "implicit"
    request = Request(action="execute-api:Invoke", resource=resource)
    assert evaluate(request, identity_policies=policies) == expected


# -- the whole evaluator against an enumerating reference model ---------------------------------

ACCOUNT = "123456789012"
USER = Principal(arn=f"arn:aws:iam::{ACCOUNT}:user/u", principal_arn=f"arn:aws:iam::{ACCOUNT}:user/u")
ROLE = f"arn:aws:iam::{ACCOUNT}:role/r"
SESSION = Principal(arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/s", principal_arn=ROLE)
OTHER = Principal(arn="arn:aws:iam::999999999999:user/o", principal_arn="arn:aws:iam::999999999999:user/o")

ACTIONS = ["execute-api:Invoke", "es:ESHttpGet", "es:ESHttpPost"]
RESOURCES = ["arn:aws:es:us-east-1:123456789012:domain/d/i/_search", "arn:aws:es:us-east-1:123456789012:domain/d/"]
CALLERS: list[Principal | None] = [None, USER, SESSION, OTHER]
UNIVERSE = [
    Request(action=a, resource=r, principal=p, source_ip=ip, secure_transport=tls)
    for a, r, p, ip, tls in itertools.product(
        ACTIONS, RESOURCES, CALLERS, [None, "10.1.1.1", "192.0.2.7"], [None, True, False]
    )
]

ACTION_PATTERNS = ["*", "es:*", "ES:esHttpGET", "es:ESHttp???t", "execute-api:Invoke", "s3:*"]
RESOURCE_PATTERNS = ["*", "arn:aws:es:*:*:domain/d/*", "arn:aws:es:us-east-1:123456789012:domain/d/", "*_search"]
PRINCIPALS = ["*", ACCOUNT, f"arn:aws:iam::{ACCOUNT}:root", ROLE, SESSION.arn, USER.arn, OTHER.arn]


def _ip_in_10(r: Request) -> bool:
    return r.source_ip is not None and r.source_ip.startswith("10.")


def _is_role(r: Request) -> bool:
    return r.principal is not None and ":role/" in r.principal.principal_arn


# One operator each, so any subset merges into one Condition block; the predicate says, by hand,
# when the condition holds.
CONDITIONS: list[tuple[str, dict[str, Any], Any]] = [
    ("IpAddress", {"aws:SourceIp": "10.0.0.0/8"}, _ip_in_10),
    ("NotIpAddress", {"aws:SourceIp": ["10.0.0.0/8", "172.16.0.0/12"]}, lambda r: not _ip_in_10(r)),
    ("Bool", {"aws:SecureTransport": "true"}, lambda r: r.secure_transport is True),
    ("StringLike", {"aws:PrincipalArn": "*:role/*"}, _is_role),
    ("StringNotEquals", {"aws:PrincipalAccount": ACCOUNT}, lambda r: r.principal is None or r.principal is OTHER),
    ("ArnLike", {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}, lambda r: r.principal in (USER, OTHER)),
    ("Null", {"aws:SourceIp": "true"}, lambda r: r.source_ip is None),
    ("IpAddressIfExists", {"aws:SourceIp": "192.0.2.0/24"}, lambda r: r.source_ip in (None, "192.0.2.7")),
    ("StringEqualsIgnoreCase", {"aws:PrincipalArn": ROLE.upper()}, _is_role),
]


@st.composite
def statements(draw: st.DrawFn, *, resource: bool) -> dict[str, Any]:
    stmt: dict[str, Any] = {"Effect": draw(st.sampled_from(["Allow", "Deny"]))}
    actions = draw(st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2))
    stmt["NotAction" if draw(st.booleans()) else "Action"] = actions
    resources = draw(st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2))
    stmt["NotResource" if draw(st.integers(0, 3)) == 0 else "Resource"] = resources
    if resource:
        principals = draw(st.lists(st.sampled_from(PRINCIPALS), min_size=1, max_size=2))
        key = "NotPrincipal" if draw(st.integers(0, 3)) == 0 else "Principal"
        stmt[key] = "*" if principals == ["*"] and key == "Principal" else {"AWS": principals}
    chosen = draw(st.sets(st.integers(0, len(CONDITIONS) - 1), max_size=2))
    if chosen:
        stmt["Condition"] = {CONDITIONS[i][0]: CONDITIONS[i][1] for i in chosen}
    return stmt


def names_of(caller: Principal | None) -> set[str]:
    """Every Principal entry that designates the caller."""
    if caller is None:
        return {"*"}
    account = caller.arn.split(":")[4]
    return {"*", caller.arn, caller.principal_arn, account, f"arn:aws:iam::{account}:root"}


def applies_to(stmt: dict[str, Any]) -> set[int]:
    """The indices of UNIVERSE the statement applies to."""
    out = set()
    predicates = [pred for op, _, pred in CONDITIONS if op in stmt.get("Condition", {})]
    for n, req in enumerate(UNIVERSE):
        if "Action" in stmt:
            ok = any(reference_match(a, req.action, ignore_case=True) for a in stmt["Action"])
        else:
            ok = not any(reference_match(a, req.action, ignore_case=True) for a in stmt["NotAction"])
        if "Resource" in stmt:
            ok = ok and any(reference_match(r, req.resource) for r in stmt["Resource"])
        else:
            ok = ok and not any(reference_match(r, req.resource) for r in stmt["NotResource"])
        for key in ("Principal", "NotPrincipal"):
            if key in stmt:
                listed = {"*"} if stmt[key] == "*" else set(stmt[key]["AWS"])
                named = bool(listed & names_of(req.principal))
                ok = ok and (named if key == "Principal" else not named)
        ok = ok and all(pred(req) for pred in predicates)
        if ok:
            out.add(n)
    return out


@given(
    identity=st.lists(statements(resource=False), max_size=3),
    resource=st.one_of(st.none(), st.lists(statements(resource=True), min_size=1, max_size=3)),
)
def test_evaluator_equals_the_enumerating_reference_model(
    identity: list[dict[str, Any]], resource: list[dict[str, Any]] | None
) -> None:
    identity_policy = Policy.parse({"Statement": identity}, kind=PolicyKind.IDENTITY, where="i") if identity else None
    resource_policy = Policy.parse({"Statement": resource}, kind=PolicyKind.RESOURCE, where="r") if resource else None
    deny: set[int] = set()
    allow_identity: set[int] = set()
    allow_resource: set[int] = set()
    for stmts, allow_set in ((identity, allow_identity), (resource or [], allow_resource)):
        for stmt in stmts:
            (deny if stmt["Effect"] == "Deny" else allow_set).update(applies_to(stmt))
    anonymous = {n for n, r in enumerate(UNIVERSE) if r.principal is None}
    allow_identity -= anonymous  # an anonymous caller has no identity-based policies
    deny -= anonymous - {n for s in resource or [] if s["Effect"] == "Deny" for n in applies_to(s)}
    cross = {n for n, r in enumerate(UNIVERSE) if r.principal is OTHER} if resource is not None else set()
    allow = ((allow_identity | allow_resource) - cross) | (allow_identity & allow_resource & cross)

    for n, req in enumerate(UNIVERSE):
        expected = Decision.DENY if n in deny else Decision.ALLOW if n in allow else Decision.IMPLICIT
        policies = [identity_policy] if identity_policy is not None and req.principal is not None else []
        got = evaluate(req, identity_policies=policies, resource_policy=resource_policy, resource_account=ACCOUNT)
        assert got is expected, (req, identity, resource)
