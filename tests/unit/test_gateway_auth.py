"""SigV4 verification and IAM identity-policy evaluation of execute-api:Invoke (gateway auth.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.state import Identity, write_identities
from reference_stack.local.gateway.auth import ALLOW_ALL, Authorizer, IdentityStore, evaluate, wildcard_match

REGION = "us-east-1"
ACCOUNT = "123456789012"
API = "a1b2c3d4e5"
HOST = "events.loadcheck.test"
ARN_GET = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/GET/events"
ARN_POST = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/POST/events"
NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)


def allow(*resources: str, action: str | list[str] = "execute-api:Invoke") -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": list(resources)}]}


# -- policy evaluation --------------------------------------------------------------------------


def test_exact_route_allowed_and_other_route_implicitly_denied() -> None:
    policies = [allow(ARN_GET)]
    assert evaluate(policies, action="execute-api:Invoke", resource=ARN_GET) == "allow"
    assert evaluate(policies, action="execute-api:Invoke", resource=ARN_POST) == "implicit"


def test_no_policies_is_default_deny() -> None:
    assert evaluate([], action="execute-api:Invoke", resource=ARN_GET) == "implicit"


def test_explicit_deny_wins_over_allow() -> None:
    policies = [allow("*"), {"Statement": {"Effect": "Deny", "Action": "execute-api:*", "Resource": ARN_POST}}]
    assert evaluate(policies, action="execute-api:Invoke", resource=ARN_GET) == "allow"
    assert evaluate(policies, action="execute-api:Invoke", resource=ARN_POST) == "deny"


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
    assert (evaluate([allow(pattern)], action="execute-api:Invoke", resource=value) == "allow") is expected


def test_action_matching_is_case_insensitive_and_wildcarded() -> None:
    for action in ("execute-api:invoke", "EXECUTE-API:*", "execute-api:Inv?ke", "*"):
        assert evaluate([allow(ARN_GET, action=action)], action="execute-api:Invoke", resource=ARN_GET) == "allow"
    assert (
        evaluate([allow(ARN_GET, action="execute-api:InvalidateCache")], action="execute-api:Invoke", resource=ARN_GET)
        == "implicit"
    )


def test_not_action_and_not_resource() -> None:
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "dynamodb:*", "Resource": "*"}]}
    assert evaluate([not_action], action="execute-api:Invoke", resource=ARN_GET) == "allow"
    not_action_excl = {"Statement": [{"Effect": "Allow", "NotAction": "execute-api:*", "Resource": "*"}]}
    assert evaluate([not_action_excl], action="execute-api:Invoke", resource=ARN_GET) == "implicit"
    not_resource = {"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "NotResource": ARN_POST}]}
    assert evaluate([not_resource], action="execute-api:Invoke", resource=ARN_GET) == "allow"
    assert evaluate([not_resource], action="execute-api:Invoke", resource=ARN_POST) == "implicit"
    deny_not_resource = {"Statement": [{"Effect": "Deny", "Action": "*", "NotResource": ARN_GET}]}
    assert evaluate([allow("*"), deny_not_resource], action="execute-api:Invoke", resource=ARN_POST) == "deny"
    assert evaluate([allow("*"), deny_not_resource], action="execute-api:Invoke", resource=ARN_GET) == "allow"


def test_conditions_fail_closed() -> None:
    cond = {"StringEquals": {"aws:SourceVpc": "vpc-1"}}
    allow_cond = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": cond}]}
    deny_cond = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": ARN_GET, "Condition": cond}]}
    assert evaluate([allow_cond], action="execute-api:Invoke", resource=ARN_GET) == "implicit"
    assert evaluate([allow("*"), deny_cond], action="execute-api:Invoke", resource=ARN_GET) == "deny"
    assert evaluate([allow("*"), deny_cond], action="execute-api:Invoke", resource=ARN_POST) == "allow"


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
    assert ALLOW_ALL[0]["Statement"][0]["Action"] == "*"


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


def test_identities_file_is_rechecked_at_most_every_interval(identities_file: Path) -> None:
    now = [0.0]
    store = IdentityStore(str(identities_file), recheck_s=0.5, clock=lambda: now[0])
    assert "AKIAREQUESTER" in store.current()[0]
    write_identities(identities_file, {"new": _identity("new", [], "AKIANEW")}, ACCOUNT)
    now[0] = 0.4
    assert "AKIAREQUESTER" in store.current()[0]  # not looked at yet
    now[0] = 0.6
    assert set(store.current()[0]) == {"AKIANEW"}
