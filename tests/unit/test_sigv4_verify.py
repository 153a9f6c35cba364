"""The verifier accepts what botocore signs and refuses each kind of bad request with AWS's words."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from loadcheck.core import sigv4

KEYS = {"AKIDEXAMPLE": ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None)}
HOST = "events.loadcheck.test"


def signed(
    method: str = "GET",
    path: str = "/events",
    query: str = "date=2026-01-01",
    body: bytes = b"",
    region: str = "us-east-1",
    service: str = "execute-api",
    secret: str = KEYS["AKIDEXAMPLE"][0],
):  # type: ignore[no-untyped-def]
    url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
    req = AWSRequest(method, url, data=body, headers={"Content-Type": "application/json"} if body else {})
    SigV4Auth(BotoCredentials("AKIDEXAMPLE", secret), service, region).add_auth(req)
    headers = [("Host", HOST)] + list(req.headers.items())
    now = dt.datetime.strptime(req.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return headers, now


def check(headers, now, *, method="GET", path="/events", query="date=2026-01-01", body=b""):  # type: ignore[no-untyped-def]
    return sigv4.verify(
        method=method,
        raw_path=path,
        raw_query=query,
        headers=headers,
        body=body,
        service="execute-api",
        region="us-east-1",
        secret_for=KEYS,
        now=now,
    )


def test_botocore_signature_verifies() -> None:
    h, now = signed("POST", body=b'{"a": 1}', query="")
    assert check(h, now, method="POST", query="", body=b'{"a": 1}').access_key == "AKIDEXAMPLE"


def test_query_encoded_differently_still_verifies() -> None:
    h, now = signed(query="q=a%20b&b=1")
    check(h, now, query="b=1&q=a%20b")


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"body": b"tampered"}, "signature"),
        ({"path": "/other"}, "signature"),
        ({"now_shift": dt.timedelta(minutes=6)}, "expired"),
        ({"now_shift": -dt.timedelta(minutes=6)}, "not_yet"),
        ({"region": "eu-west-1"}, "scope_region"),
        ({"service": "es"}, "scope_service"),
        ({"secret": "wrong"}, "signature"),
    ],
)
def test_refusals(change: dict, kind: str) -> None:  # type: ignore[type-arg]
    h, now = signed(
        region=change.get("region", "us-east-1"),
        service=change.get("service", "execute-api"),
        secret=change.get("secret", KEYS["AKIDEXAMPLE"][0]),
    )
    now += change.get("now_shift", dt.timedelta())
    with pytest.raises(sigv4.SigV4Failure) as info:
        check(h, now, body=change.get("body", b""), path=change.get("path", "/events"))
    assert info.value.kind == kind


def test_expired_message_has_aws_form() -> None:
    h, now = signed()
    with pytest.raises(sigv4.SigV4Failure, match=r"Signature expired: \d{8}T\d{6}Z is now earlier than .* - 5 min\.\)"):
        check(h, now + dt.timedelta(minutes=10))


def test_unsigned_and_unknown_key() -> None:
    with pytest.raises(sigv4.SigV4Failure) as info:
        check([("Host", HOST)], dt.datetime.now(dt.UTC))
    assert info.value.kind == "missing"
    h, now = signed()
    with pytest.raises(sigv4.SigV4Failure) as info:
        sigv4.verify(
            method="GET",
            raw_path="/events",
            raw_query="date=2026-01-01",
            headers=h,
            body=b"",
            service="execute-api",
            region="us-east-1",
            secret_for={},
            now=now,
        )
    assert info.value.kind == "unknown_key"


def test_path_normalization_matches_botocore() -> None:
    assert sigv4.canonical_path("/a/./b/../c//d") == "/a/c/d"
    assert sigv4.canonical_path("/a%20b") == "/a%2520b"
