"""The load generator's signer equals botocore's SigV4Auth for the same request (and the verifier agrees)."""

from __future__ import annotations

import datetime as _dt
import hashlib
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import example, given
from hypothesis import strategies as st

from loadcheck.core.sigv4 import Credentials, Signer, verify, wire_path
from locustfiles.workload import encode_query

SERVICE = "execute-api"

SAFE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=12)
segment = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=10)
paths = st.lists(segment, min_size=1, max_size=4).map(lambda segs: "/" + "/".join(segs))
queries = st.lists(st.tuples(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8), SAFE), max_size=4)
bodies = st.binary(max_size=256)
hosts = st.sampled_from(
    ["events.loadcheck.test", "events.loadcheck.test:8443", "abc123.execute-api.us-east-1.amazonaws.com"]
)
regions = st.sampled_from(["us-east-1", "eu-west-1", "ap-southeast-2"])
tokens = st.one_of(st.none(), st.text(alphabet="ABCDEFabcdef0123456789/+=", min_size=8, max_size=40))
secrets = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", min_size=20, max_size=40)
DOC_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - AWS documentation example key
DOC_TOKEN = "FQoGZXIvYXdzEXAMPLE"  # noqa: S105
SHARED = {r: Signer(SERVICE, r) for r in ("us-east-1", "eu-west-1", "ap-southeast-2")}
WHEN = _dt.datetime(2026, 11, 21, 16, 30, 5, tzinfo=_dt.UTC)


def botocore_headers(
    creds: Credentials, region: str, method: str, host: str, path: str, qs: str, body: bytes, content_type: str | None
) -> dict[str, str]:
    url = f"https://{host}{path}" + (f"?{qs}" if qs else "")
    headers = {"Content-Type": content_type} if content_type else {}
    req = AWSRequest(method=method, url=url, data=body, headers=headers)
    boto = BotoCredentials(creds.access_key, creds.secret_key, creds.token)
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        SigV4Auth(boto, SERVICE, region).add_auth(req)
    return dict(req.headers.items())


@given(
    method=st.sampled_from(["GET", "POST"]),
    host=hosts,
    path=paths,
    query=queries,
    body=bodies,
    region=regions,
    secret=secrets,
    token=tokens,
)
@example(
    method="GET",
    host="events.loadcheck.test:8443",
    path="/search",
    query=[("q", "na ïve/ü"), ("size", "5")],
    body=b"",
    region="us-east-1",
    secret=DOC_SECRET,
    token=None,
)
@example(
    method="POST",
    host="events.loadcheck.test",
    path="/events",
    query=[],
    body=b'{"date":"2100-01-01"}',
    region="us-east-1",
    secret=DOC_SECRET,
    token=DOC_TOKEN,
)
def test_signature_equals_botocore(method, host, path, query, body, region, secret, token):
    creds = Credentials("AKIDEXAMPLE", secret, token)
    body = body if method == "POST" else b""
    qs = encode_query(query)
    content_type = "application/json" if body else None
    sign_headers = {"content-type": content_type} if content_type else {}
    ours = Signer(SERVICE, region).sign(
        creds,
        method,
        host,
        path,
        qs,
        sign_headers,
        body,
        payload_hash=hashlib.sha256(body).hexdigest(),
        amz_date="20261121T163005Z",
    )
    theirs = botocore_headers(creds, region, method, host, path, qs, body, content_type)
    assert ours["Authorization"] == theirs["Authorization"]
    shared = SHARED[region]  # caches filled by many shapes, tokens and days
    for _ in range(2):  # first call fills the caches, the second uses them
        assert shared.sign(creds, method, host, path, qs, sign_headers, body, amz_date="20261121T163005Z") == ours
    general = shared._sign_general(creds, method, host, path, qs, sign_headers, body, amz_date="20261121T163005Z")
    assert general == ours
    now = shared.sign(creds, method, host, path, qs, sign_headers, body)  # X-Amz-Date from the clock
    assert now == shared.sign(creds, method, host, path, qs, sign_headers, body, amz_date=now["X-Amz-Date"])
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")

    # And what the load generator sends verifies as the gateway verifies it.
    wire = [("Host", host), *sign_headers.items(), *ours.items(), ("Accept-Encoding", "gzip, deflate, br")]
    verify(
        method=method,
        raw_path=path,
        raw_query=qs,
        headers=wire,
        body=body,
        service=SERVICE,
        region=region,
        secret_for={"AKIDEXAMPLE": (secret, token)},
        now=WHEN,
    )


@given(region=regions, secret=secrets, body=bodies, declared=st.sampled_from(["UNSIGNED-PAYLOAD", "body"]))
def test_headers_the_signer_sets_itself_take_the_general_path(region, secret, body, declared):
    """A caller's own x-amz-content-sha256 is signed and is the payload hash, as in botocore."""
    creds = Credentials("AKIDEXAMPLE", secret)
    value = hashlib.sha256(body).hexdigest() if declared == "body" else declared
    ours = SHARED[region].sign(
        creds,
        "PUT",
        "events.loadcheck.test",
        "/events",
        "",
        {"X-Amz-Content-Sha256": value},
        body,
        amz_date="20261121T163005Z",
    )
    req = AWSRequest(
        method="PUT", url="https://events.loadcheck.test/events", data=body, headers={"X-Amz-Content-Sha256": value}
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        SigV4Auth(BotoCredentials("AKIDEXAMPLE", secret), SERVICE, region).add_auth(req)
    assert ours["Authorization"] == req.headers["Authorization"]


# -- raw (unencoded) queries and paths: canonicalized as AWS does ------------------------------------

# Any text but the characters that structure a query (they must be encoded by whoever writes one).
RAW_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=32, max_codepoint=0x10FFFF, exclude_categories=("Cs",), exclude_characters="&=%#"
    ),
    max_size=10,
)
RAW_SEGMENT = st.text(
    alphabet=st.characters(
        min_codepoint=33, max_codepoint=0x10FFFF, exclude_categories=("Cs",), exclude_characters="/?#%"
    ),
    min_size=1,
    max_size=8,
)


def botocore_auth(
    creds: Credentials, region: str, path: str, *, params: list[tuple[str, str]] | None = None, qs: str = ""
) -> str:
    url = "https://events.loadcheck.test" + path + (f"?{qs}" if qs else "")
    req = AWSRequest(method="GET", url=url, params=params or {})
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, creds.token), SERVICE, region).add_auth(req)
    return str(req.headers["Authorization"])


@given(pairs=st.lists(st.tuples(RAW_TEXT.filter(bool), RAW_TEXT), max_size=4), region=regions, secret=secrets)
@example(pairs=[("\u1234", "bar")], region="us-east-1", secret=DOC_SECRET)
@example(pairs=[("q", "a b/c?d+e:f@g!h*'()"), ("size", "5")], region="us-east-1", secret=DOC_SECRET)
def test_a_raw_query_is_signed_as_botocore_signs_its_parameters(pairs, region, secret):
    """``Signer.sign(query="\u1234=bar")`` signs ``%E1%88%B4=bar``, what AWS computes and botocore signs for the parameter."""
    creds = Credentials("AKIDEXAMPLE", secret)
    raw = "&".join(f"{k}={v}" for k, v in pairs)
    ours = Signer(SERVICE, region).sign(
        creds, "GET", "events.loadcheck.test", "/search", raw, amz_date="20261121T163005Z"
    )
    theirs = botocore_auth(creds, region, "/search", params=pairs)
    assert ours["Authorization"] == theirs
    # The same parameters encoded first (as the load generator does) sign the same.
    encoded = encode_query(pairs)
    assert (
        Signer(SERVICE, region).sign(
            creds, "GET", "events.loadcheck.test", "/search", encoded, amz_date="20261121T163005Z"
        )
        == ours
    )
    # And the verifier accepts the request as a client sends it (encoded) and as it was written (raw).
    for wire_query in {encoded, raw}:
        verify(
            method="GET",
            raw_path="/search",
            raw_query=wire_query,
            headers=[("Host", "events.loadcheck.test"), *ours.items()],
            body=b"",
            service=SERVICE,
            region=region,
            secret_for={"AKIDEXAMPLE": (secret, None)},
            now=WHEN,
        )


@given(segments=st.lists(RAW_SEGMENT, min_size=1, max_size=4), region=regions, secret=secrets)
@example(segments=["\u1234", "a b", "[x]"], region="us-east-1", secret=DOC_SECRET)
@example(segments=["events", "a%2Fb"], region="us-east-1", secret=DOC_SECRET)
def test_a_raw_path_is_signed_as_botocore_signs_the_path_sent(segments, region, secret):
    """A raw path is signed as the client sends it (``wire_path``: non-ASCII and reserved characters
    encoded, valid escapes kept), and botocore signs that wire path the same way."""
    creds = Credentials("AKIDEXAMPLE", secret)
    raw = "/" + "/".join(segments)
    wire = wire_path(raw)
    assert wire_path(wire) == wire  # idempotent: an encoded path is sent as it is
    assert wire.isascii() and " " not in wire
    ours = Signer(SERVICE, region).sign(creds, "GET", "events.loadcheck.test", raw, "", amz_date="20261121T163005Z")
    assert ours["Authorization"] == botocore_auth(creds, region, wire)
    assert (
        Signer(SERVICE, region).sign(creds, "GET", "events.loadcheck.test", wire, "", amz_date="20261121T163005Z")
        == ours
    )
    verify(
        method="GET",
        raw_path=wire,
        raw_query="",
        headers=[("Host", "events.loadcheck.test"), *ours.items()],
        body=b"",
        service=SERVICE,
        region=region,
        secret_for={"AKIDEXAMPLE": (secret, None)},
        now=WHEN,
    )
