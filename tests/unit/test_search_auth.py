"""SigV4 (service es) and domain access policy evaluation of the search service (no process)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import Credentials as SigCredentials
from loadcheck.core.sigv4 import Signer
from loadcheck.core.state import Identities, Identity
from reference_stack.local.search.auth import AuthFailure, Authorizer, Caller

ACCT = "123456789012"
DOMAIN = f"arn:aws:es:us-east-1:{ACCT}:domain/loadcheck-search"
ROLE = f"arn:aws:iam::{ACCT}:role/loadcheck-search-role"
NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)


def identities() -> dict[str, Identity]:
    return {
        "admin": Identity(
            name="admin",
            arn=f"arn:aws:iam::{ACCT}:user/loadcheck-admin",
            principal_arn=f"arn:aws:iam::{ACCT}:user/loadcheck-admin",
            user_id="AIDAADMIN",
            access_key_id="AKIAADMIN",
            secret_access_key="admin-secret",  # noqa: S106 - a test key
            policies=[{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}],
        ),
        "requester": Identity(
            name="requester",
            arn=f"arn:aws:iam::{ACCT}:user/loadcheck-requester",
            principal_arn=f"arn:aws:iam::{ACCT}:user/loadcheck-requester",
            user_id="AIDAREQ",
            access_key_id="AKIAREQ",
            secret_access_key="req-secret",  # noqa: S106 - a test key
            policies=[
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
                }
            ],
        ),
        "search-role": Identity(
            name="search-role",
            arn=f"arn:aws:sts::{ACCT}:assumed-role/loadcheck-search-role/fn",
            principal_arn=ROLE,
            user_id="AROA:fn",
            access_key_id="ASIAROLE",
            secret_access_key="role-secret",  # noqa: S106 - a test key
            session_token="token-1",  # noqa: S106 - a test key
        ),
    }


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


ROLE_ONLY = policy({"Effect": "Allow", "Principal": {"AWS": [ROLE]}, "Action": "es:ESHttp*", "Resource": f"{DOMAIN}/*"})


def authorizer(access_policy: Any = ROLE_ONLY, now: dt.datetime = NOW) -> Authorizer:
    return Authorizer(
        domain_arn=DOMAIN,
        access_policy=access_policy,
        identities=Identities.of(identities()),
        region="us-east-1",
        now=lambda: now,
    )


def signed(
    name: str | None,
    method: str = "POST",
    path: str = "/terms/_search",
    body: bytes = b"{}",
    *,
    when: dt.datetime = NOW,
    secret: str | None = None,
    region: str = "us-east-1",
    service: str = "es",
) -> dict[str, Any]:
    headers: dict[str, str] = {"Host": "127.0.0.1:9200", "Content-Type": "application/json"}
    if name is not None:
        # loadcheck's Signer equals botocore's SigV4Auth (tests/unit/test_sigv4*) and takes a fixed time;
        # the integration tests sign with opensearch-py / requests-aws4auth at the real time.
        ident = identities()[name]
        creds = SigCredentials(ident.access_key_id, secret or ident.secret_access_key, ident.session_token)
        raw_path, _, raw_query = path.partition("?")
        headers.update(
            Signer(service, region).sign(
                creds,
                method,
                headers["Host"],
                raw_path,
                raw_query,
                {"Content-Type": "application/json"},
                body,
                amz_date=when.strftime("%Y%m%dT%H%M%SZ"),
            )
        )
    raw_path, _, raw_query = path.partition("?")
    return {
        "method": method,
        "raw_path": raw_path,
        "raw_query": raw_query,
        "headers": list(headers.items()),
        "body": body,
    }


def test_role_session_is_allowed_by_the_role_arn() -> None:
    caller = authorizer().check(**signed("search-role"))
    assert caller.arn.endswith("assumed-role/loadcheck-search-role/fn")


def test_admin_allowed_by_its_identity_policy() -> None:
    assert authorizer().check(**signed("admin", "PUT", "/terms")).identity.name == "admin"  # type: ignore[union-attr]


def test_requester_refused_with_aws_message() -> None:
    with pytest.raises(AuthFailure) as err:
        authorizer().check(**signed("requester", "GET", "/terms/_search"))
    assert err.value.status == 403
    assert err.value.body == {
        "Message": f"User: arn:aws:iam::{ACCT}:user/loadcheck-requester is not authorized to "
        "perform: es:ESHttpGet on resource: loadcheck-search"
    }


def test_unsigned_refused_with_anonymous_message() -> None:
    with pytest.raises(AuthFailure) as err:
        authorizer().check(**signed(None, "POST"))
    assert err.value.body == {
        "Message": "User: anonymous is not authorized to perform: es:ESHttpPost because no "
        "resource-based policy allows the es:ESHttpPost action"
    }


def test_open_policy_admits_anonymous() -> None:
    open_policy = policy({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*", "Resource": f"{DOMAIN}/*"})
    assert authorizer(open_policy).check(**signed(None, "GET", "/")).identity is None


def test_bad_signature_and_expired_and_wrong_scope() -> None:
    with pytest.raises(AuthFailure) as err:
        authorizer().check(**signed("search-role", secret="not-the-secret"))  # noqa: S106 - a test key
    assert err.value.body["message"].startswith("The request signature we calculated does not match")
    req = signed("search-role")
    req["body"] = b'{"query": {"match_all": {}}}'  # tampered after signing
    with pytest.raises(AuthFailure, match="signature we calculated does not match"):
        authorizer().check(**req)
    with pytest.raises(AuthFailure, match="Signature expired"):
        authorizer().check(**signed("search-role", when=NOW - dt.timedelta(minutes=6)))
    authorizer().check(**signed("search-role", when=NOW - dt.timedelta(minutes=4)))
    with pytest.raises(AuthFailure, match="Credential should be scoped to correct service: 'es'"):
        authorizer().check(**signed("search-role", service="execute-api"))
    with pytest.raises(AuthFailure, match="valid region"):
        authorizer().check(**signed("search-role", region="eu-west-1"))


@pytest.mark.parametrize(
    "method, action",
    [
        ("GET", "es:ESHttpGet"),
        ("POST", "es:ESHttpPost"),
        ("PUT", "es:ESHttpPut"),
        ("DELETE", "es:ESHttpDelete"),
        ("HEAD", "es:ESHttpHead"),
        ("PATCH", "es:ESHttpPatch"),
    ],
)
def test_action_per_method(method: str, action: str) -> None:
    only = policy({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": action, "Resource": f"{DOMAIN}/*"})
    az = authorizer(only)
    role = Caller(identities()["search-role"])
    az.authorize(role, method=method, raw_path="/terms")
    other = "GET" if method != "GET" else "POST"
    with pytest.raises(AuthFailure):
        az.authorize(role, method=other, raw_path="/terms")


def test_resource_narrowing_and_wildcards() -> None:
    narrow = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": ROLE},
            "Action": "es:ESHttp*",
            "Resource": [f"{DOMAIN}/terms/_search", f"{DOMAIN}/log?/*"],
        }
    )
    az = authorizer(narrow)
    role = Caller(identities()["search-role"])
    az.authorize(role, method="POST", raw_path="/terms/_search")
    az.authorize(role, method="POST", raw_path="/logs/_doc/1")
    for path in ("/terms/_doc/1", "/terms", "/logsx/_doc/1", "/"):
        with pytest.raises(AuthFailure):
            az.authorize(role, method="POST", raw_path=path)


def test_domain_arn_without_slash_star_covers_no_path() -> None:
    bare = policy({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "es:*", "Resource": DOMAIN})
    with pytest.raises(AuthFailure):
        authorizer(bare).authorize(Caller(identities()["search-role"]), method="GET", raw_path="/terms/_search")


def test_account_root_admits_every_principal_of_the_account() -> None:
    root = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
            "Action": "es:ESHttpGet",
            "Resource": f"{DOMAIN}/*",
        }
    )
    az = authorizer(root)
    az.authorize(Caller(identities()["requester"]), method="GET", raw_path="/terms/_search")
    with pytest.raises(AuthFailure):
        az.authorize(Caller(None), method="GET", raw_path="/terms/_search")
    other = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
            "Action": "es:*",
            "Resource": f"{DOMAIN}/*",
        }
    )
    with pytest.raises(AuthFailure):
        authorizer(other).authorize(Caller(identities()["requester"]), method="GET", raw_path="/terms/_search")


def test_explicit_deny_wins_over_allow() -> None:
    deny = policy(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "es:*", "Resource": f"{DOMAIN}/*"},
        {"Effect": "Deny", "Principal": {"AWS": ROLE}, "Action": "es:ESHttpDelete", "Resource": f"{DOMAIN}/*"},
    )
    az = authorizer(deny)
    role = Caller(identities()["search-role"])
    az.authorize(role, method="GET", raw_path="/terms")
    with pytest.raises(AuthFailure, match="es:ESHttpDelete on resource: loadcheck-search"):
        az.authorize(role, method="DELETE", raw_path="/terms")
    # A Deny in the domain policy also beats the admin's allow-all identity policy.
    deny_admin = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/loadcheck-admin"},
            "Action": "es:*",
            "Resource": f"{DOMAIN}/*",
        }
    )
    with pytest.raises(AuthFailure):
        authorizer(deny_admin).authorize(Caller(identities()["admin"]), method="GET", raw_path="/")


def test_source_ip_condition() -> None:
    cond = policy(
        {
            "Effect": "Allow",
            "Principal": {"AWS": "*"},
            "Action": "es:*",
            "Resource": f"{DOMAIN}/*",
            "Condition": {"IpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}},
        }
    )
    az = authorizer(cond)
    az.authorize(Caller(None), method="GET", raw_path="/", source_ip="10.1.2.3")
    with pytest.raises(AuthFailure):
        az.authorize(Caller(None), method="GET", raw_path="/", source_ip="127.0.0.1")


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"Statement": [{"Effect": "Maybe"}]}, "Effect must be Allow or Deny"),
        (
            policy({"Effect": "Allow", "Principal": {"Federated": "cognito"}, "Action": "es:*", "Resource": "*"}),
            "Federated principals",
        ),
        (
            policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "es:*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:username": "x"}},
                }
            ),
            "condition key 'aws:username'",
        ),
        ({"Version": "2012-10-17"}, "needs a Statement"),
    ],
)
def test_unsupported_policies_are_refused_at_start(bad: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        authorizer(bad)


def test_not_principal_denies_everyone_but_the_role() -> None:
    only_role = policy(
        {"Effect": "Allow", "Principal": "*", "Action": "es:*", "Resource": f"{DOMAIN}/*"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": ROLE}, "Action": "es:*", "Resource": f"{DOMAIN}/*"},
    )
    az = authorizer(only_role)
    az.authorize(Caller(identities()["search-role"]), method="GET", raw_path="/terms/_search")
    for caller in (Caller(identities()["admin"]), Caller(None)):
        with pytest.raises(AuthFailure):
            az.authorize(caller, method="GET", raw_path="/terms/_search")


def test_domain_arn_is_validated() -> None:
    with pytest.raises(ConfigError, match="not an OpenSearch domain ARN"):
        Authorizer(
            domain_arn="loadcheck-search", access_policy=ROLE_ONLY, identities=Identities.of({}), region="us-east-1"
        )
