"""Role sessions on the local stack: sessions.json (what the aws endpoint's STS issued) joins
identities.json in the one identity store; the gateway and the search service accept a session
with its role's policies at once, and refuse it once expired as AWS does (docs/aws-behaviour.md
§12.2). The role assumption itself (botocore refreshable credentials) runs against moto's STS."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from loadcheck.core import roles
from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.state import IdentityStore, Role, RoleSession, record_session, sessions_file_for, write_identities
from reference_stack.local.gateway.auth import Authorizer
from reference_stack.local.search.auth import AuthFailure
from reference_stack.local.search.auth import Authorizer as SearchAuthorizer

REGION = "us-east-1"
ACCOUNT = "123456789012"
API = "a1b2c3d4e5"
HOST = "events.loadcheck.test"
NOW = dt.datetime(2026, 11, 21, 12, 0, 0, tzinfo=dt.UTC)
ROUTE = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{API}/$default/GET/events"
DOMAIN = f"arn:aws:es:{REGION}:{ACCOUNT}:domain/search"
TRUST = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "*"}]}


def _role(key: str, policies: list[dict]) -> Role:
    return Role(
        name=f"loadcheck-{key}",
        arn=f"arn:aws:iam::{ACCOUNT}:role/loadcheck-{key}",
        trust_policy=TRUST,
        policies=policies,
    )


ROLES = {
    "requester": _role(
        "requester", [{"Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ROUTE}]}]
    ),
    "denied": _role("denied", []),
    "search-admin": _role(
        "search-admin", [{"Statement": [{"Effect": "Allow", "Action": "es:ESHttp*", "Resource": f"{DOMAIN}/*"}]}]
    ),
}


def _session(key: str, role: str, *, expires: dt.datetime) -> RoleSession:
    name = ROLES[role].name
    return RoleSession(
        access_key_id=key,
        secret_access_key=f"secret-{key}",
        session_token=f"token-{key}",
        expires_at=expires.timestamp(),
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/s",
        role_arn=ROLES[role].arn,
        user_id="AROAEXAMPLE:s",
    )


@pytest.fixture
def identities_file(tmp_path: Path) -> Path:
    path = tmp_path / "identities.json"
    write_identities(path, {}, ACCOUNT, roles=ROLES)
    return path


def _issue(identities_file: Path, key: str, role: str, *, expires: dt.datetime = NOW + dt.timedelta(hours=1)) -> None:
    record_session(
        sessions_file_for(identities_file),
        _session(key, role, expires=expires),
        now=NOW.timestamp(),
        keep_expired_s=3600,
    )


def _headers(
    key: str, *, service: str = "execute-api", path: str = "/events", token: str | None = None
) -> list[tuple[str, str]]:
    creds = Credentials(key, f"secret-{key}", f"token-{key}" if token is None else token)
    signed = Signer(service, REGION).sign(creds, "GET", HOST, path, "", amz_date=NOW.strftime("%Y%m%dT%H%M%SZ"))
    return [("Host", HOST), *signed.items()]


def _gateway(identities_file: Path, *, now: dt.datetime = NOW) -> Authorizer:
    # recheck_s large: only the store's look-again on an unknown key can find a new session
    store = IdentityStore(identities_file, recheck_s=3600)
    return Authorizer(store=store, region=REGION, account_id=ACCOUNT, api_id=API, now=lambda: now)


def _invoke(auth: Authorizer, headers: list[tuple[str, str]]):
    return auth.authorize(
        method="GET",
        raw_path="/events",
        raw_query="",
        headers=headers,
        body=b"",
        route_method="GET",
        route_path="/events",
    )


def test_a_session_issued_after_start_is_accepted_at_once_with_its_roles_policies(identities_file: Path) -> None:
    auth = _gateway(identities_file)
    _issue(identities_file, "ASIAREQUESTER", "requester")
    _issue(identities_file, "ASIADENIED", "denied")
    allowed = _invoke(auth, _headers("ASIAREQUESTER"))
    assert allowed.failure is None and allowed.identity is not None
    assert allowed.identity.arn.endswith(":assumed-role/loadcheck-requester/s")
    refused = _invoke(auth, _headers("ASIADENIED"))
    assert refused.failure is not None and refused.failure.error_type == "AccessDeniedException"
    assert "assumed-role/loadcheck-denied/s is not authorized" in refused.failure.detail


def test_a_session_needs_its_token(identities_file: Path) -> None:
    _issue(identities_file, "ASIAREQUESTER", "requester")
    result = _invoke(_gateway(identities_file), _headers("ASIAREQUESTER", token="someone-elses"))
    assert result.failure is not None and result.failure.error_type == "UnrecognizedClientException"


def test_an_expired_session_is_refused_as_aws_refuses_it(identities_file: Path) -> None:
    _issue(identities_file, "ASIAREQUESTER", "requester", expires=NOW + dt.timedelta(seconds=1))
    assert _invoke(_gateway(identities_file), _headers("ASIAREQUESTER")).failure is None
    later = _invoke(_gateway(identities_file, now=NOW + dt.timedelta(seconds=1)), _headers("ASIAREQUESTER"))
    assert later.failure is not None
    assert (later.failure.error_type, later.failure.response_type) == ("ExpiredTokenException", "EXPIRED_TOKEN")
    assert later.failure.body_message == "The security token included in the request is expired"


def test_the_search_service_evaluates_sessions_the_same_way(identities_file: Path) -> None:
    _issue(identities_file, "ASIAADMIN", "search-admin", expires=NOW + dt.timedelta(seconds=1))
    _issue(identities_file, "ASIADENIED", "denied")
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": ROLES["search-admin"].arn},
                "Action": "es:*",
                "Resource": f"{DOMAIN}/*",
            }
        ]
    }

    def search(now: dt.datetime) -> SearchAuthorizer:
        store = IdentityStore(identities_file, recheck_s=3600)
        return SearchAuthorizer(
            domain_arn=DOMAIN, access_policy=policy, identities=store, region=REGION, now=lambda: now
        )

    def check(auth: SearchAuthorizer, key: str) -> object:
        return auth.check(
            method="GET",
            raw_path="/terms/_search",
            raw_query="",
            headers=_headers(key, service="es", path="/terms/_search"),
            body=b"",
        )

    assert check(search(NOW), "ASIAADMIN") is not None
    with pytest.raises(AuthFailure, match="is not authorized to perform: es:ESHttpGet"):
        check(search(NOW), "ASIADENIED")
    with pytest.raises(AuthFailure) as err:
        check(search(NOW + dt.timedelta(seconds=2)), "ASIAADMIN")
    assert err.value.status == 403 and err.value.body == {
        "message": "The security token included in the request is expired"
    }


def test_sessions_long_expired_are_forgotten(identities_file: Path) -> None:
    path = sessions_file_for(identities_file)
    _issue(identities_file, "ASIAOLD", "requester", expires=NOW - dt.timedelta(hours=2))
    record_session(
        path,
        _session("ASIANEW", "requester", expires=NOW + dt.timedelta(hours=1)),
        now=NOW.timestamp(),
        keep_expired_s=3600,
    )
    assert set(IdentityStore(identities_file).current().by_key) == {"ASIANEW"}


@mock_aws
def test_assumed_role_credentials_are_assumed_again_before_they_expire() -> None:
    sts = boto3.client("sts", region_name=REGION, aws_access_key_id="AKIACALLER", aws_secret_access_key="x")
    now = [dt.datetime.now(dt.UTC)]
    creds = roles.assume_role(sts, ROLES["requester"].arn, role="requester", time_fetcher=lambda: now[0])
    first = creds.get_frozen_credentials()
    assert first.access_key.startswith("ASIA") and first.token
    now[0] += dt.timedelta(minutes=30)  # 30 minutes left: no refresh yet
    assert creds.get_frozen_credentials().access_key == first.access_key
    now[0] += dt.timedelta(minutes=20)  # 10 minutes left: assumed again
    second = creds.get_frozen_credentials()
    assert second.access_key != first.access_key and second.token != first.token
