"""Condition operators of the core IAM evaluator, one pinned example each, and the policies it
refuses when they are loaded (loadcheck/core/iam.py)."""

from __future__ import annotations

from typing import Any

import pytest

from loadcheck.core.errors import ConfigError
from loadcheck.core.iam import Policy, PolicyKind, Principal, Request, arn_match, evaluate, wildcard_match

ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/loadcheck-search-role"
SESSION = Principal(arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/loadcheck-search-role/fn", principal_arn=ROLE_ARN)
USER = Principal(
    arn=f"arn:aws:iam::{ACCOUNT}:user/loadcheck-admin", principal_arn=f"arn:aws:iam::{ACCOUNT}:user/loadcheck-admin"
)


def holds(condition: dict[str, Any], *, principal: Principal | None = USER, **request: Any) -> bool:
    """Whether an Allow carrying ``condition`` grants the request."""
    doc = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": condition}]}
    policy = Policy.parse(doc, kind=PolicyKind.IDENTITY, where="test")
    req = Request(action="s3:GetObject", resource="arn:aws:s3:::b/k", principal=principal, **request)
    return evaluate(req, identity_policies=[policy]) == "allow"


@pytest.mark.parametrize(
    ("condition", "request_", "expected"),
    [
        # String operators on aws:PrincipalAccount / aws:PrincipalArn
        ({"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}, {}, True),
        ({"StringEquals": {"aws:PrincipalAccount": "999999999999"}}, {}, False),
        ({"StringEquals": {"aws:PrincipalArn": USER.principal_arn.upper()}}, {}, False),  # case-sensitive
        ({"StringEqualsIgnoreCase": {"aws:PrincipalArn": USER.principal_arn.upper()}}, {}, True),
        ({"StringNotEquals": {"aws:PrincipalAccount": "999999999999"}}, {}, True),
        ({"StringNotEquals": {"aws:PrincipalAccount": ["999999999999", ACCOUNT]}}, {}, False),  # NOR
        ({"StringNotEqualsIgnoreCase": {"aws:PrincipalArn": USER.principal_arn.upper()}}, {}, False),
        ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/loadcheck-*"}}, {}, True),
        ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, {}, False),
        ({"StringLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/*", "*admin"]}}, {}, True),  # OR
        ({"StringNotLike": {"aws:PrincipalArn": "*:role/*"}}, {}, True),
        ({"StringNotLike": {"aws:PrincipalArn": "*admin"}}, {}, False),
        # IP addresses
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "10.1.2.3"}, True),
        ({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "10.0.0.0/8"]}}, {"source_ip": "10.1.2.3"}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "127.0.0.1"}, False),
        ({"IpAddress": {"aws:SourceIp": "127.0.0.1"}}, {"source_ip": "127.0.0.1"}, True),  # a bare address is /32
        ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"source_ip": "2001:db8::1"}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "2001:db8::1"}, False),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "127.0.0.1"}, True),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "10.0.0.1"}, False),
        # Bool
        ({"Bool": {"aws:SecureTransport": "true"}}, {"secure_transport": True}, True),
        ({"Bool": {"aws:SecureTransport": True}}, {"secure_transport": True}, True),  # a JSON boolean
        ({"Bool": {"aws:SecureTransport": "false"}}, {"secure_transport": True}, False),
        # ARN operators: each of the six parts on its own
        ({"ArnEquals": {"aws:PrincipalArn": ROLE_ARN}}, {"principal": SESSION}, True),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/loadcheck-*"}}, {"principal": SESSION}, True),
        ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/other"}}, {"principal": SESSION}, False),
        ({"ArnNotEquals": {"aws:PrincipalArn": ROLE_ARN}}, {"principal": SESSION}, False),
        ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, {"principal": SESSION}, True),
        # Several keys under one operator, several operators: AND
        (
            {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "Bool": {"aws:SecureTransport": "true"}},
            {"source_ip": "10.0.0.1", "secure_transport": False},
            False,
        ),
        (
            {"StringEquals": {"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalArn": USER.principal_arn}},
            {},
            True,
        ),
        (
            {"StringEquals": {"aws:PrincipalAccount": ACCOUNT, "aws:PrincipalArn": ROLE_ARN}},
            {},
            False,
        ),
        # A key missing from the request: false, but true for a negated operator ...
        ({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, {}, False),
        ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {}, False),
        ({"StringEquals": {"aws:PrincipalArn": "x"}}, {"principal": None}, False),
        ({"StringNotLike": {"aws:PrincipalArn": "x"}}, {"principal": None}, True),
        ({"StringEquals": {"aws:SourceAccount": ACCOUNT}}, {}, False),  # only for service-to-service calls
        # ... and true for ...IfExists, which tests the value when it is there
        ({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {}, True),
        ({"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}, {"source_ip": "127.0.0.1"}, False),
        ({"StringEqualsIfExists": {"aws:PrincipalArn": "x"}}, {"principal": None}, True),
        # Null: is the key absent?
        ({"Null": {"aws:SourceIp": "true"}}, {}, True),
        ({"Null": {"aws:SourceIp": "true"}}, {"source_ip": "127.0.0.1"}, False),
        ({"Null": {"aws:PrincipalArn": "false"}}, {}, True),
        # Condition keys are case-insensitive
        ({"IpAddress": {"AWS:SOURCEIP": "10.0.0.0/8"}}, {"source_ip": "10.0.0.1"}, True),
    ],
)
def test_condition_operator(condition: dict[str, Any], request_: dict[str, Any], expected: bool) -> None:
    assert holds(condition, **request_) is expected


def test_arn_wildcards_stay_inside_their_part() -> None:
    value = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/f:*"
    pattern = "arn:aws:*:log-group:/aws/lambda/f:*"  # "*" would have to span region and account
    assert wildcard_match(pattern, value)  # as a plain string pattern it matches
    assert not arn_match(pattern, value)
    assert arn_match("arn:aws:logs:*:*:log-group:/aws/lambda/*", value)


# -- what the evaluator refuses when a policy is loaded ----------------------------------------


def stmt(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "*", "Resource": "*", **extra}


@pytest.mark.parametrize(
    ("document", "kind", "named", "hint"),
    [
        ({"Version": "2012-10-17"}, "identity", "needs a Statement", "Statement"),
        ("{not json", "identity", "not valid JSON", "JSON"),
        ({"Statement": [stmt(Effect="Maybe")]}, "identity", "Effect must be Allow or Deny", "Allow"),
        ({"Statement": [{"Effect": "Allow", "Resource": "*"}]}, "identity", "exactly one of Action and NotAction", ""),
        ({"Statement": [stmt(NotResource="x")]}, "identity", "exactly one of Resource and NotResource", ""),
        ({"Statement": [stmt(Resources="*")]}, "identity", "unknown statement element 'Resources'", ""),
        ({"Statement": [stmt(Action=[])]}, "identity", "Action must be a string", ""),
        ({"Statement": [stmt(Principal="*")]}, "identity", "identity-based policy cannot name a Principal", ""),
        ({"Statement": [stmt()]}, "resource", "exactly one of Principal and NotPrincipal", "Principal"),
        ({"Statement": [stmt(Principal={"Federated": "x"})]}, "resource", "Federated principals", "AWS"),
        ({"Statement": [stmt(Principal={"AWS": "arn:aws:iam::*:role/x"})]}, "resource", "partial wildcard", "ArnLike"),
        ({"Statement": [stmt(Principal={"AWS": "somebody"})]}, "resource", "account id or an ARN", ""),
        ({"Statement": [stmt(Resource="arn:aws:s3:::${aws:username}/*")]}, "identity", "policy variable", ""),
        (
            {"Statement": [stmt(Condition={"NumericLessThan": {"aws:SourceIp": "3"}})]},
            "identity",
            "condition operator 'NumericLessThan' is not supported",
            "StringEquals",
        ),
        (
            {"Statement": [stmt(Condition={"ForAnyValue:StringEquals": {"aws:PrincipalArn": "x"}})]},
            "identity",
            "'ForAnyValue:StringEquals' is not supported",
            "",
        ),
        (
            {"Statement": [stmt(Condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}})]},
            "identity",
            "condition key 'aws:SourceVpc' is not known",
            "aws:sourceip",
        ),
        (
            {"Statement": [stmt(Condition={"IpAddress": {"aws:PrincipalArn": "10.0.0.0/8"}})]},
            "identity",
            "operator IpAddress does not apply to aws:PrincipalArn",
            "",
        ),
        (
            {"Statement": [stmt(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}})]},
            "identity",
            "not an IP address or CIDR",
            "",
        ),
        ({"Statement": [stmt(Condition={"Bool": {"aws:SecureTransport": "yes"}})]}, "identity", "true or false", ""),
        (
            {"Statement": [stmt(Condition={"ArnLike": {"aws:PrincipalArn": "*role*"}})]},
            "identity",
            "not an ARN pattern",
            "",
        ),
        ({"Statement": [stmt(Condition={"StringEquals": {}})]}, "identity", "must map condition keys", ""),
    ],
)
def test_policies_it_cannot_decide_are_refused_at_load(document: Any, kind: str, named: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        Policy.parse(document, kind=PolicyKind(kind), where="identities.json: requester.policies[0]")
    assert named in err.value.message
    assert err.value.hint and hint in err.value.hint
    if isinstance(document, dict) and "Statement" in document:
        assert "requester.policies[0]: Statement[0]" in err.value.message  # names the statement


def test_the_error_names_the_statement_by_sid() -> None:
    doc = {"Statement": [stmt(), stmt(Sid="OnlyFromTheOffice", Condition={"IpAddres": {"aws:SourceIp": "10.0.0.0/8"}})]}
    with pytest.raises(ConfigError, match=r"Statement\[1\] \(Sid OnlyFromTheOffice\): condition operator 'IpAddres'"):
        Policy.parse(doc, kind=PolicyKind.IDENTITY, where="p")
