"""The core IAM evaluator (loadcheck/core/iam.py): decisions, wildcards, principals, route ARNs.

Condition operators and configuration errors: tests/unit/test_iam_conditions.py; the evaluator
held against a reference model: tests/property/test_iam_props.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError
from loadcheck.core.iam import (
    Decision,
    Policy,
    PolicyKind,
    Principal,
    Request,
    evaluate,
    evaluate_assume_role,
    route_arn,
    wildcard_match,
)

REGION = "us-east-1"
ACCOUNT = "123456789012"
API = "a1b2c3d4e5"
ARN_GET = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/GET/events"
ARN_POST = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/POST/events"
USER = Principal(arn=f"arn:aws:iam::{ACCOUNT}:user/u", principal_arn=f"arn:aws:iam::{ACCOUNT}:user/u")
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/r"
SESSION = Principal(arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/fn", principal_arn=ROLE_ARN)
OTHER = Principal(arn="arn:aws:iam::999999999999:user/x", principal_arn="arn:aws:iam::999999999999:user/x")
DOMAIN = f"arn:aws:es:{REGION}:{ACCOUNT}:domain/d"


def allow(*resources: str, action: str | list[str] = "execute-api:Invoke") -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": list(resources)}]}


def decide(documents: list[dict[str, Any]], *, action: str = "execute-api:Invoke", resource: str = ARN_GET) -> str:
    """Identity-based policies only, as the gateway decides."""
    policies = [Policy.parse(d, kind=PolicyKind.IDENTITY, where=f"p{i}") for i, d in enumerate(documents)]
    return evaluate(Request(action=action, resource=resource, principal=USER), identity_policies=policies)


def resource_decide(
    statement: dict[str, Any], caller: Principal | None, *, identity: list[dict[str, Any]] = (), **request: Any
) -> Decision:
    resource_policy = Policy.parse({"Statement": [statement]}, kind=PolicyKind.RESOURCE, where="resource")
    identity_policies = [Policy.parse(d, kind=PolicyKind.IDENTITY, where="identity") for d in identity]
    req = Request(action="es:ESHttpGet", resource=f"{DOMAIN}/i/_search", principal=caller, **request)
    return evaluate(req, identity_policies=identity_policies, resource_policy=resource_policy, resource_account=ACCOUNT)


# -- identity-based decisions (the gateway's) -------------------------------------------------


def test_exact_route_allowed_and_other_route_implicitly_denied() -> None:
    policies = [allow(ARN_GET)]
    assert decide(policies, resource=ARN_GET) == "allow"
    assert decide(policies, resource=ARN_POST) == "implicit"


def test_no_policies_is_default_deny() -> None:
    assert decide([]) == "implicit"


def test_explicit_deny_wins_over_allow() -> None:
    policies = [allow("*"), {"Statement": {"Effect": "Deny", "Action": "execute-api:*", "Resource": ARN_POST}}]
    assert decide(policies, resource=ARN_GET) == "allow"
    assert decide(policies, resource=ARN_POST) == "deny"


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/*", ARN_GET, True),  # * spans "/"
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/???/events", ARN_GET, True),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/???/events", ARN_POST, False),  # ? is one char
        (f"arn:aws:execute-api:*:{ACCOUNT}:*/$default/GET/*", ARN_GET, True),
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/GET/Events", ARN_GET, False),  # case-sensitive
        (f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/GET/events.", ARN_GET, False),  # "." is literal
    ],
)
def test_resource_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_match(pattern, value) is expected
    assert (decide([allow(pattern)], resource=value) == "allow") is expected


def test_action_matching_is_case_insensitive_and_wildcarded() -> None:
    for action in ("execute-api:invoke", "EXECUTE-API:*", "execute-api:Inv?ke", "*"):
        assert decide([allow(ARN_GET, action=action)]) == "allow"
    assert decide([allow(ARN_GET, action="execute-api:InvalidateCache")]) == "implicit"


def test_not_action_and_not_resource() -> None:
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "dynamodb:*", "Resource": "*"}]}
    assert decide([not_action]) == "allow"
    not_action_excl = {"Statement": [{"Effect": "Allow", "NotAction": "execute-api:*", "Resource": "*"}]}
    assert decide([not_action_excl]) == "implicit"
    not_resource = {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "NotResource": ARN_POST}]}
    assert decide([not_resource], resource=ARN_GET) == "allow"
    assert decide([not_resource], resource=ARN_POST) == "implicit"
    deny_not_resource = {"Statement": [{"Effect": "Deny", "Action": "*", "NotResource": ARN_GET}]}
    assert decide([allow("*"), deny_not_resource], resource=ARN_POST) == "deny"
    assert decide([allow("*"), deny_not_resource], resource=ARN_GET) == "allow"


def test_a_conditional_allow_grants_when_its_condition_holds() -> None:
    cond = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    doc = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": cond}]}
    policy = [Policy.parse(doc, kind=PolicyKind.IDENTITY, where="p")]
    inside = Request(action="execute-api:Invoke", resource=ARN_GET, principal=USER, source_ip="10.9.8.7")
    outside = Request(action="execute-api:Invoke", resource=ARN_GET, principal=USER, source_ip="192.0.2.1")
    assert evaluate(inside, identity_policies=policy) is Decision.ALLOW
    assert evaluate(outside, identity_policies=policy) is Decision.IMPLICIT


def test_a_conditional_deny_holds_only_when_its_condition_holds() -> None:
    deny = {
        "Statement": [
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]
    }
    policies = [Policy.parse(d, kind=PolicyKind.IDENTITY, where="p") for d in (allow("*"), deny)]
    plain = Request(action="execute-api:Invoke", resource=ARN_GET, principal=USER, secure_transport=False)
    tls = Request(action="execute-api:Invoke", resource=ARN_GET, principal=USER, secure_transport=True)
    assert evaluate(plain, identity_policies=policies) is Decision.DENY
    assert evaluate(tls, identity_policies=policies) is Decision.ALLOW


# -- resource-based policies and principals (the search domain's) ------------------------------


def statement(principal: Any, *, effect: str = "Allow", key: str = "Principal") -> dict[str, Any]:
    return {"Effect": effect, key: principal, "Action": "es:ESHttp*", "Resource": f"{DOMAIN}/*"}


@pytest.mark.parametrize(
    ("principal", "caller", "expected"),
    [
        ("*", None, Decision.ALLOW),  # "*" admits anonymous callers
        ({"AWS": "*"}, None, Decision.ALLOW),
        ({"AWS": "*"}, USER, Decision.ALLOW),
        ({"AWS": ACCOUNT}, USER, Decision.ALLOW),  # the bare account id: every principal of the account
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, SESSION, Decision.ALLOW),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, None, Decision.IMPLICIT),
        ({"AWS": ROLE_ARN}, SESSION, Decision.ALLOW),  # a role names each of its sessions
        ({"AWS": SESSION.arn}, SESSION, Decision.ALLOW),
        ({"AWS": ROLE_ARN}, USER, Decision.IMPLICIT),
        ({"AWS": [ROLE_ARN, USER.arn]}, USER, Decision.ALLOW),
        ({"Service": "es.amazonaws.com"}, USER, Decision.IMPLICIT),  # no AWS service calls the local stack
    ],
)
def test_principal_matching(principal: Any, caller: Principal | None, expected: Decision) -> None:
    assert resource_decide(statement(principal), caller) is expected


def test_not_principal_applies_to_everyone_else() -> None:
    deny_others = statement({"AWS": ROLE_ARN}, effect="Deny", key="NotPrincipal")
    admin = [allow("*", action="*")]
    assert resource_decide(deny_others, USER, identity=admin) is Decision.DENY
    assert resource_decide(deny_others, SESSION, identity=admin) is Decision.ALLOW
    allow_others = statement({"AWS": ROLE_ARN}, key="NotPrincipal")
    assert resource_decide(allow_others, None) is Decision.ALLOW
    assert resource_decide(allow_others, SESSION) is Decision.IMPLICIT


def test_same_account_either_policy_allows_and_any_deny_wins() -> None:
    nobody = statement({"AWS": f"arn:aws:iam::{ACCOUNT}:user/nobody"})
    assert resource_decide(nobody, USER) is Decision.IMPLICIT
    assert resource_decide(nobody, USER, identity=[allow("*", action="es:*")]) is Decision.ALLOW
    deny = {"Statement": {"Effect": "Deny", "Action": "es:ESHttpGet", "Resource": "*"}}
    assert resource_decide(statement({"AWS": "*"}), USER, identity=[deny]) is Decision.DENY
    assert resource_decide(statement({"AWS": USER.arn}, effect="Deny"), USER, identity=[allow("*", action="*")]) == (
        Decision.DENY
    )


def test_cross_account_needs_both_policies() -> None:
    everyone = statement({"AWS": "*"})
    assert resource_decide(everyone, OTHER) is Decision.IMPLICIT
    assert resource_decide(everyone, OTHER, identity=[allow("*", action="*")]) is Decision.ALLOW
    assert resource_decide(statement({"AWS": OTHER.arn}), OTHER) is Decision.IMPLICIT
    assert resource_decide(everyone, None) is Decision.ALLOW  # anonymous: the resource policy alone


# -- the route ARN, written once --------------------------------------------------------------


def test_route_arn_is_the_execute_api_arn_and_the_description_uses_it() -> None:
    assert route_arn(REGION, ACCOUNT, API, "GET /events") == ARN_GET
    assert route_arn(REGION, ACCOUNT, API, "POST /events", stage="prod") == ARN_GET.replace("$default/GET", "prod/POST")
    desc = load_description()
    assert desc.route_arn(ACCOUNT, API, "GET /events") == route_arn(desc.region, ACCOUNT, API, "GET /events")


# -- sts:AssumeRole: the role's trust policy must allow the caller explicitly -----------------

TARGET_ROLE = f"arn:aws:iam::{ACCOUNT}:role/requester"
ASSUME = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": TARGET_ROLE}


def assume(
    trust_principal: Any, caller: Principal, *, identity: list[dict[str, Any]] = (), effect: str = "Allow"
) -> Decision:
    trust = Policy.parse(
        {"Statement": [{"Effect": effect, "Principal": {"AWS": trust_principal}, "Action": "sts:AssumeRole"}]},
        kind=PolicyKind.TRUST,
        where="trust",
    )
    identity_policies = [Policy.parse(d, kind=PolicyKind.IDENTITY, where="identity") for d in identity]
    return evaluate_assume_role(
        Request(action="sts:AssumeRole", resource=TARGET_ROLE, principal=caller),
        trust_policy=trust,
        identity_policies=identity_policies,
        role_account=ACCOUNT,
    )


def test_a_trust_policy_naming_the_account_needs_the_callers_identity_policy_too() -> None:
    root = f"arn:aws:iam::{ACCOUNT}:root"
    assert assume(root, USER) == Decision.IMPLICIT  # trusted account, no identity permission
    assert assume(root, USER, identity=[{"Statement": [ASSUME]}]) == Decision.ALLOW
    assert assume(ACCOUNT, SESSION, identity=[{"Statement": [ASSUME]}]) == Decision.ALLOW


def test_a_trust_policy_naming_the_caller_is_enough_in_the_same_account() -> None:
    assert assume(USER.arn, USER) == Decision.ALLOW
    assert assume(ROLE_ARN, SESSION) == Decision.ALLOW  # a role names each of its sessions


def test_an_identity_policy_alone_never_assumes_a_role() -> None:
    other_user = f"arn:aws:iam::{ACCOUNT}:user/someone-else"
    assert assume(other_user, USER, identity=[{"Statement": [ASSUME]}]) == Decision.IMPLICIT


def test_another_accounts_caller_needs_both_even_when_named() -> None:
    assert assume(OTHER.arn, OTHER) == Decision.IMPLICIT
    assert assume(OTHER.arn, OTHER, identity=[{"Statement": [ASSUME]}]) == Decision.ALLOW


def test_a_deny_in_either_policy_wins() -> None:
    deny_identity = {"Statement": [{**ASSUME, "Effect": "Deny"}]}
    assert assume(USER.arn, USER, identity=[deny_identity]) == Decision.DENY
    assert assume(USER.arn, USER, effect="Deny", identity=[{"Statement": [ASSUME]}]) == Decision.DENY


def test_a_trust_policy_has_no_resource_element() -> None:
    doc = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": USER.arn}, "Action": "sts:AssumeRole", "Resource": "*"}]
    }
    with pytest.raises(ConfigError, match="trust policy cannot name a Resource"):
        Policy.parse(doc, kind=PolicyKind.TRUST, where="trust")
