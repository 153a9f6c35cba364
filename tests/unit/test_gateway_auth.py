"""SigV4 verification and IAM identity-policy evaluation of execute-api:Invoke (gateway auth.py).

The policy decisions themselves are the core evaluator's: tests/unit/test_iam.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.state import Identity, write_identities
from reference_stack.local.gateway.auth import ALLOW_ALL, Authorizer, IdentityStore

REGION = "us-east-1"
ACCOUNT = "123456789012"
API = "a1b2c3d4e5"
HOST = "events.loadcheck.test"
ARN_GET = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/GET/events"
ARN_POST = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/POST/events"
NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)


def allow(*resources: str, action: str | list[str] = "execute-api:Invoke") -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": list(resources)}]}


# -- the authorizer over real signatures ------------------------------------------------------


def _identity(name: str, policies: list[dict], key: str) -> Identity:
    return Identity(
        name=name,
        arn=f"arn:aws:iam::{ACCOUNT}:user/loadcheck-{name}",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/loadcheck-{name}",
        user_id=f"AIDA{name.upper()}",
        access_key_id=key,
        secret_access_key=f"secret-{name}",
        policies=policies,
    )


@pytest.fixture
def identities_file(tmp_path: Path) -> Path:
    path = tmp_path / "identities.json"
    write_identities(
        path,
        {
            "requester": _identity("requester", [allow(ARN_GET, ARN_POST)], "AKIAREQUESTER"),
            "denied": _identity("denied", [], "AKIADENIED"),
        },
        ACCOUNT,
    )
    return path


def _authorizer(path: Path, *, now: dt.datetime = NOW, allow_denied: bool = False) -> Authorizer:
    return Authorizer(
        store=IdentityStore(str(path), recheck_s=0),
        region=REGION,
        account_id=ACCOUNT,
        api_id=API,
        now=lambda: now,
        allow_denied=lambda: allow_denied,
    )


def _signed(
    key: str,
    secret: str,
    *,
    method: str = "GET",
    path: str = "/events",
    query: str = "",
    body: bytes = b"",
    region: str = REGION,
    service: str = "execute-api",
    when: dt.datetime = NOW,
) -> list[tuple[str, str]]:
    headers = Signer(service, region).sign(
        Credentials(key, secret), method, HOST, path, query, body=body, amz_date=when.strftime("%Y%m%dT%H%M%SZ")
    )
    return [("Host", HOST), *headers.items()]


def _authorize(
    auth: Authorizer, headers: list[tuple[str, str]], *, method: str = "GET", body: bytes = b"", query: str = ""
):
    return auth.authorize(
        method=method,
        raw_path="/events",
        raw_query=query,
        headers=headers,
        body=body,
        route_method=method,
        route_path="/events",
    )


def test_signed_and_allowed(identities_file: Path) -> None:
    result = _authorize(
        _authorizer(identities_file),
        _signed("AKIAREQUESTER", "secret-requester", query="date=2026-11-21"),
        query="date=2026-11-21",
    )
    assert result.failure is None
    assert result.identity is not None and result.identity.name == "requester"


def test_botocore_sigv4auth_is_accepted(identities_file: Path) -> None:
    req = AWSRequest(
        method="POST",
        url=f"https://{HOST}/events?b=2&a=1",
        data=b'{"x":1}',
        headers={"content-type": "application/json"},
    )
    SigV4Auth(BotoCredentials("AKIAREQUESTER", "secret-requester"), "execute-api", REGION).add_auth(req)
    auth = Authorizer(store=IdentityStore(str(identities_file)), region=REGION, account_id=ACCOUNT, api_id=API)
    result = _authorize(
        auth, list(req.headers.items()) + [("Host", HOST)], method="POST", body=b'{"x":1}', query="b=2&a=1"
    )
    assert result.failure is None, result.failure


def test_unsigned_is_forbidden_with_format_detail(identities_file: Path) -> None:
    result = _authorize(_authorizer(identities_file), [("Host", HOST)])
    assert result.failure is not None
    assert result.failure.body_message == "Forbidden"
    assert result.failure.error_type == "MissingAuthenticationTokenException"
    assert "doesn't match the format" in result.failure.detail


@pytest.mark.parametrize(
    ("case", "error_type", "fragment"),
    [
        ("tampered", "InvalidSignatureException", "signature we calculated does not match"),
        ("expired", "InvalidSignatureException", "Signature expired"),
        ("future", "InvalidSignatureException", "Signature not yet current"),
        ("region", "InvalidSignatureException", "scoped to a valid region"),
        ("service", "InvalidSignatureException", "scoped to correct service"),
        ("unknown-key", "UnrecognizedClientException", "security token included in the request is invalid"),
    ],
)
def test_sigv4_failures_carry_the_sigv4_message(
    identities_file: Path, case: str, error_type: str, fragment: str
) -> None:
    kwargs: dict = {}
    key, secret = "AKIAREQUESTER", "secret-requester"
    if case == "expired":
        kwargs["when"] = NOW - dt.timedelta(minutes=5, seconds=1)
    elif case == "future":
        kwargs["when"] = NOW + dt.timedelta(minutes=5, seconds=1)
    elif case == "region":
        kwargs["region"] = "eu-west-1"
    elif case == "service":
        kwargs["service"] = "execute"
    elif case == "unknown-key":
        key = "AKIANOBODY"
    headers = _signed(key, secret, body=b"original", **kwargs)
    body = b"tampered" if case == "tampered" else b"original"
    result = _authorize(_authorizer(identities_file), headers, method="GET", body=body)
    assert result.failure is not None
    assert result.failure.error_type == error_type
    assert fragment in result.failure.body_message
    assert result.failure.detail == result.failure.body_message


def test_window_edges_are_accepted(identities_file: Path) -> None:
    for skew in (dt.timedelta(minutes=5), -dt.timedelta(minutes=5)):
        headers = _signed("AKIAREQUESTER", "secret-requester", when=NOW + skew)
        assert _authorize(_authorizer(identities_file), headers).failure is None


def test_denied_identity_gets_access_denied_with_arns(identities_file: Path) -> None:
    result = _authorize(_authorizer(identities_file), _signed("AKIADENIED", "secret-denied"))
    assert result.failure is not None
    assert result.failure.error_type == "AccessDeniedException"
    assert result.failure.body_message == "Forbidden"
    assert result.failure.detail == (
        f"User: arn:aws:iam::{ACCOUNT}:user/loadcheck-denied is not authorized to perform: execute-api:Invoke "
        f"on resource: {ARN_GET} because no identity-based policy allows the execute-api:Invoke action"
    )


def test_allow_denied_fault_grants_the_denied_identity(identities_file: Path) -> None:
    result = _authorize(_authorizer(identities_file, allow_denied=True), _signed("AKIADENIED", "secret-denied"))
    assert result.failure is None
    assert ALLOW_ALL.statements[0].actions == ("*",)


def test_identities_reload_when_the_file_changes(identities_file: Path) -> None:
    auth = _authorizer(identities_file)
    assert _authorize(auth, _signed("AKIANEW", "secret-new")).failure is not None
    write_identities(identities_file, {"new": _identity("new", [allow(ARN_GET)], "AKIANEW")}, ACCOUNT)
    assert _authorize(auth, _signed("AKIANEW", "secret-new")).failure is None
    assert _authorize(auth, _signed("AKIAREQUESTER", "secret-requester")).failure is not None


def test_role_sessions_need_their_token(tmp_path: Path) -> None:
    path = tmp_path / "identities.json"
    role = Identity(
        name="events-role",
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/fn",
        principal_arn="p",
        user_id="AROAROLE:fn",
        access_key_id="ASIAROLE",
        secret_access_key="secret-role",  # noqa: S106
        session_token="tok",
        policies=[allow(ARN_GET)],
    )  # noqa: S106 - a test token
    write_identities(path, {"events-role": role}, ACCOUNT)
    auth = _authorizer(path)
    with_token = Signer("execute-api", REGION).sign(
        Credentials("ASIAROLE", "secret-role", "tok"), "GET", HOST, "/events", amz_date=NOW.strftime("%Y%m%dT%H%M%SZ")
    )
    assert _authorize(auth, [("Host", HOST), *with_token.items()]).failure is None
    without = _signed("ASIAROLE", "secret-role")
    result = _authorize(auth, without)
    assert result.failure is not None and result.failure.error_type == "UnrecognizedClientException"


def test_a_conditional_allow_grants_from_the_right_source_address(tmp_path: Path) -> None:
    path = tmp_path / "identities.json"
    office = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": ARN_GET,
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "Bool": {"aws:SecureTransport": "true"}},
            }
        ]
    }
    write_identities(path, {"office": _identity("office", [office], "AKIAOFFICE")}, ACCOUNT)
    auth = _authorizer(path)
    headers = _signed("AKIAOFFICE", "secret-office")
    common = {"method": "GET", "raw_path": "/events", "raw_query": "", "headers": headers, "body": b""}
    route = {"route_method": "GET", "route_path": "/events"}
    assert auth.authorize(**common, **route, source_ip="10.2.3.4").failure is None
    refused = auth.authorize(**common, **route, source_ip="192.0.2.1").failure
    assert refused is not None and refused.error_type == "AccessDeniedException"


def test_a_policy_the_evaluator_cannot_decide_stops_the_gateway_at_start(tmp_path: Path) -> None:
    path = tmp_path / "identities.json"
    cond = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}
    doc = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": cond}]}
    write_identities(path, {"vpc": _identity("vpc", [doc], "AKIAVPC")}, ACCOUNT)
    with pytest.raises(ConfigError, match=r"vpc.policies\[0\]: Statement\[0\]: condition key 'aws:SourceVpc'"):
        _authorizer(path)
