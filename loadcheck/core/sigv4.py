"""AWS Signature Version 4: a fast signer for load generators and a verifier for the local stack.

The signer produces exactly what ``botocore.auth.SigV4Auth`` produces for the same request
(a property test holds it to that, on non-ASCII and reserved characters too). A query or path
may be given raw: it is canonicalized as AWS does (docs/aws-behaviour.md §11.5): the query's
names and values RFC 3986-encoded (``\u1234=bar`` signs as ``%E1%88%B4=bar``, valid escapes kept),
the path as :func:`wire_path` sends it. It caches the signing key per (secret, date, region,
service) and lets the caller pass a precomputed payload hash, so a load generator signs a
request with four HMACs fewer and no ``AWSRequest`` round trip.

The verifier canonicalizes what arrived on the wire the way AWS does for non-S3 services
(https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html): the path is
normalized (dot segments removed, empty segments collapsed) and URI-encoded again, query
parameters are decoded, re-encoded per RFC 3986 and sorted, header values are trimmed with
inner runs of spaces collapsed, and repeated headers are comma-joined. Because clients encode
query strings differently (botocore keeps them as sent, curl and requests-aws4auth re-encode),
the verifier accepts a signature computed over either the raw or the normalized query string.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from time import gmtime as _gmtime
from time import strftime as _strftime
from time import time as _time
from typing import Any
from urllib.parse import quote, unquote, unquote_plus, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
# Headers botocore never signs (botocore.auth.SIGNED_HEADERS_BLACKLIST).
UNSIGNABLE_HEADERS = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*SignedHeaders=(?P<sh>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-f]{64})\s*$"
)
_SPACES = re.compile(r"\s+")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@lru_cache(maxsize=256)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key for one day and scope; cached because it changes once a day."""
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    k = hmac.new(k, region.encode(), hashlib.sha256).digest()
    k = hmac.new(k, service.encode(), hashlib.sha256).digest()
    return hmac.new(k, b"aws4_request", hashlib.sha256).digest()


def remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal as botocore applies it (empty segments are dropped too)."""
    if not path:
        return "/"
    out: list[str] = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if out:
                out.pop()
        else:
            out.append(seg)
    result = "/" + "/".join(out)
    if path.endswith("/") and not result.endswith("/"):
        result += "/"
    return result


_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
# What a path may carry on the wire unencoded (RFC 3986 pchar and "/"); "%" only as a valid escape.
_PATH_SAFE = "/-._~!$&'()*+,;=:@"
_UNRESERVED = "-_.~"


def wire_path(path: str) -> str:
    """``path`` as an HTTP client sends it: valid ``%XX`` escapes kept, anything else RFC 3986 does
    not allow in a path percent-encoded (UTF-8). The identity on a path that is already encoded."""
    out, last = [], 0
    for m in _ESCAPE.finditer(path):
        out.append(quote(path[last : m.start()], safe=_PATH_SAFE))
        out.append(m.group().upper())
        last = m.end()
    out.append(quote(path[last:], safe=_PATH_SAFE))
    return "".join(out)


@lru_cache(maxsize=4096)
def canonical_path(raw_path: str) -> str:
    """The path as it goes on the wire (:func:`wire_path`), normalized and encoded once more (non-S3 rule)."""
    return quote(remove_dot_segments(wire_path(raw_path)), safe="/~")


@lru_cache(maxsize=4096)
def canonical_query(raw_query: str) -> str:
    """The canonical query string AWS computes for ``raw_query``, encoded or not: each name and value
    decoded (valid ``%XX`` escapes only) and RFC 3986-encoded (UTF-8, unreserved characters kept),
    pairs sorted. What botocore signs for the same parameters (docs/aws-behaviour.md §11.5); on a
    query encoded that way already (``locustfiles.workload.encode_query``) it is the sorted query."""
    if not raw_query:
        return ""
    pairs = []
    for pair in raw_query.split("&"):
        key, _, value = pair.partition("=")
        pairs.append((quote(unquote_to_bytes(key), safe=_UNRESERVED), quote(unquote_to_bytes(value), safe=_UNRESERVED)))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


@lru_cache(maxsize=4096)
def canonical_query_raw(raw_query: str) -> str:
    """botocore's form: pairs taken as sent, sorted."""
    if not raw_query:
        return ""
    pairs = []
    for pair in raw_query.split("&"):
        key, _, value = pair.partition("=")
        pairs.append((key, value))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_query_normalized(raw_query: str, *, plus_is_space: bool = False) -> str:
    """The SigV4 specification's form: decoded, RFC 3986-encoded, sorted.

    With ``plus_is_space`` a ``+`` decodes to a space first (form decoding), which is how
    requests-aws4auth canonicalizes ``q=a+b`` (requests encodes spaces in ``params`` as ``+``).
    """
    if not raw_query:
        return ""
    decode = unquote_plus if plus_is_space else unquote
    pairs = []
    for pair in raw_query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        pairs.append((quote(decode(key), safe="-_.~"), quote(decode(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_header_value(value: str) -> str:
    return _SPACES.sub(" ", value.strip())


def canonical_headers(headers: Iterable[tuple[str, str]], signed: Iterable[str]) -> str:
    wanted = set(signed)
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in wanted:
            grouped.setdefault(lname, []).append(canonical_header_value(value))
    return "".join(f"{n}:{','.join(grouped.get(n, []))}\n" for n in sorted(wanted))


def string_to_sign(amz_date: str, scope: str, canonical_request: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, sha256_hex(canonical_request.encode())])


def amz_now(now: _dt.datetime | None = None) -> str:
    now = now or _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """SHA-256 states after the HMAC inner and outer pads of ``key`` (RFC 2104): copy, update, digest."""
    k = key.ljust(64, b"\0")  # a derived SigV4 key is 32 bytes, under SHA-256's block size
    return hashlib.sha256(bytes(b ^ 0x36 for b in k)), hashlib.sha256(bytes(b ^ 0x5C for b in k))


_OVERRIDES = ("host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token")


class Signer:
    """Signs requests for one service and region.

        ``sign`` returns the headers to add (``X-Amz-Date``, ``X-Amz-Security-Token`` when the
        credentials carry a token, and ``Authorization``). Every header passed in ``headers`` is
        signed unless botocore would not sign it, so the result equals ``SigV4Auth.add_auth``
        (property-tested against botocore).

        A load generator signs the same few request shapes over and over: same method, host, path
        and header names; only the date, the query and the body change. So the signer keeps, per
        shape, the canonical request around ``x-amz-date`` and the signed-header list; per day the
        signing key's HMAC state (RFC 2104 inner and outer pads, hashed once; half the cost of a
    fresh ``hmac.digest`` per request); per second the ``X-Amz-Date`` value. Shapes
        that set a header the signer adds itself (``host``, ``x-amz-date``, ...) take the general
        path. The caches are bounded; refreshed credentials (a new token) make new shapes.
    """

    def __init__(self, service: str, region: str) -> None:
        self.service = service
        self.region = region
        self._shapes: dict[
            tuple[str, str, str, tuple[tuple[str, str], ...], str | None], tuple[str, str, str, str]
        ] = {}
        self._second = -1
        self._amz_date = ""
        self._scope = ""
        self._keys: dict[tuple[str, str], tuple[Any, Any]] = {}  # (secret, day) -> HMAC pads
        self._sts_head = ""
        self._pads_for: tuple[str, str] | None = None  # the last (secret, day) and its pads
        self._pads: tuple[Any, Any] = ((), ())

    def sign(
        self,
        credentials: Credentials,
        method: str,
        host: str,
        path: str,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        *,
        payload_hash: str | None = None,
        amz_date: str | None = None,
    ) -> dict[str, str]:
        shape = self.prepare(method, host, path, headers, credentials.token)
        if shape is None:
            return self._sign_general(
                credentials, method, host, path, query, headers, body, payload_hash=payload_hash, amz_date=amz_date
            )
        if payload_hash is None:
            payload_hash = sha256_hex(body) if body else EMPTY_SHA256
        return self.sign_prepared(shape, credentials, query, payload_hash, amz_date=amz_date)

    def prepare(
        self, method: str, host: str, path: str, headers: Mapping[str, str] | None = None, token: str | None = None
    ) -> tuple[str, str, str, str] | None:
        """The request shape for :meth:`sign_prepared`, or None when ``headers`` set one the signer adds.

        ``token`` is the session token of the credentials it will sign with (a signed header).
        """
        header_items = tuple(headers.items()) if headers else ()
        shape_key = (method, host, path, header_items, token)
        shape = self._shapes.get(shape_key)
        if shape is None:
            lowered = {n.lower(): v for n, v in header_items}
            if any(n in lowered for n in _OVERRIDES):
                return None
            if len(self._shapes) > 1024:  # per-path shapes (ids in paths) and new tokens: stay bounded
                self._shapes.clear()
            shape = self._shapes[shape_key] = self._shape(method, host, path, lowered, token)
        return shape

    def sign_prepared(
        self,
        shape: tuple[str, str, str, str],
        credentials: Credentials,
        query: str,
        payload_hash: str,
        *,
        amz_date: str | None = None,
    ) -> dict[str, str]:
        """:meth:`sign` for a shape from :meth:`prepare` (same credentials token) and a body hash.

        A load generator keeps the shape of each request it repeats and skips the lookup.
        """
        token = credentials.token
        if amz_date is None:
            now = int(_time())
            if now != self._second:
                self._second = now
                self._amz_date = _strftime("%Y%m%dT%H%M%SZ", _gmtime(now))
                self._scope = f"{self._amz_date[:8]}/{self.region}/{self.service}/aws4_request"
                self._sts_head = f"{ALGORITHM}\n{self._amz_date}\n{self._scope}\n"
            amz_date, scope, sts_head = self._amz_date, self._scope, self._sts_head
        else:
            scope = f"{amz_date[:8]}/{self.region}/{self.service}/aws4_request"
            sts_head = f"{ALGORITHM}\n{amz_date}\n{scope}\n"
        head, mid, tail, signed = shape
        creq = f"{head}{canonical_query(query)}\n{mid}{amz_date}{tail}{payload_hash}"
        sts = sts_head + hashlib.sha256(creq.encode()).hexdigest()
        key_id = (credentials.secret_key, amz_date[:8])
        if key_id == self._pads_for:
            pads = self._pads
        else:
            found = self._keys.get(key_id)
            if found is None:
                if len(self._keys) > 16:
                    self._keys.clear()
                found = self._keys[key_id] = _hmac_pads(
                    signing_key(credentials.secret_key, amz_date[:8], self.region, self.service)
                )
            self._pads_for, self._pads = key_id, found
            pads = found
        inner = pads[0].copy()
        inner.update(sts.encode())
        outer = pads[1].copy()
        outer.update(inner.digest())
        sig = outer.hexdigest()
        out = {"X-Amz-Date": amz_date}
        if token:
            out["X-Amz-Security-Token"] = token
        out["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"
        )
        return out

    @staticmethod
    def _shape(
        method: str, host: str, path: str, lowered: dict[str, str], token: str | None
    ) -> tuple[str, str, str, str]:
        """The canonical request in pieces: up to the query, up to x-amz-date's value, the rest.

        The last item is the signed-header list for the Authorization header.
        """
        values = {"host": host, **lowered, "x-amz-date": ""}
        if token is not None:
            values["x-amz-security-token"] = token
        names = sorted(n for n in values if n not in UNSIGNABLE_HEADERS)
        i = names.index("x-amz-date")
        lines_before = "".join(f"{n}:{canonical_header_value(values[n])}\n" for n in names[:i])
        lines_after = "".join(f"{n}:{canonical_header_value(values[n])}\n" for n in names[i + 1 :])
        signed = ";".join(names)
        return (
            f"{method.upper()}\n{canonical_path(path)}\n",
            f"{lines_before}x-amz-date:",
            f"\n{lines_after}\n{signed}\n",
            signed,
        )

    def _sign_general(
        self,
        credentials: Credentials,
        method: str,
        host: str,
        path: str,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        *,
        payload_hash: str | None = None,
        amz_date: str | None = None,
    ) -> dict[str, str]:
        """Any headers, nothing cached: what :meth:`sign` does for shapes that set its own headers."""
        amz_date = amz_date or amz_now()
        date = amz_date[:8]
        out: dict[str, str] = {"X-Amz-Date": amz_date}
        if credentials.token:
            out["X-Amz-Security-Token"] = credentials.token
        all_headers: dict[str, str] = {"host": host}
        for name, value in (headers or {}).items():
            all_headers[name.lower()] = value
        for name, value in out.items():
            all_headers[name.lower()] = value
        signed = sorted(n for n in all_headers if n not in UNSIGNABLE_HEADERS)
        if "x-amz-content-sha256" in all_headers:
            payload_hash = all_headers["x-amz-content-sha256"]
        elif payload_hash is None:
            payload_hash = sha256_hex(body) if body else EMPTY_SHA256
        creq = "\n".join(
            [
                method.upper(),
                canonical_path(path),
                canonical_query(query),
                "".join(f"{n}:{canonical_header_value(all_headers[n])}\n" for n in signed),
                ";".join(signed),
                payload_hash,
            ]
        )
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        key = signing_key(credentials.secret_key, date, self.region, self.service)
        sig = hmac.new(key, string_to_sign(amz_date, scope, creq).encode(), hashlib.sha256).hexdigest()
        out["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={';'.join(signed)}, Signature={sig}"
        )
        return out


# --------------------------------------------------------------------------------------------
# Verification


class SigV4Failure(Exception):
    """A request failed SigV4 verification; ``kind`` picks the AWS error shape."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        # missing | malformed | unknown_key | signature | expired | not_yet | scope_region | scope_service
        # | scope_date | token | token_expired
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class ParsedAuth:
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_authorization(value: str | None) -> ParsedAuth:
    if not value:
        raise SigV4Failure("missing", "Missing Authentication Token")
    m = _AUTH_RE.match(value.strip())
    if not m:
        raise SigV4Failure(
            "malformed", "The request for the IAM Authorizer doesn't match the format that API Gateway expects."
        )
    parts = m.group("cred").split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SigV4Failure("malformed", f"Credential should be scoped correctly: {m.group('cred')!r}")
    return ParsedAuth(parts[0], parts[1], parts[2], parts[3], tuple(m.group("sh").split(";")), m.group("sig"))


def credential_key(headers: Iterable[tuple[str, str]]) -> str | None:
    """The access key id an ``Authorization`` header names, or None (no or another scheme)."""
    for name, value in headers:
        if name.lower() == "authorization":
            _, sep, rest = value.partition("Credential=")
            return rest.split("/", 1)[0] if sep else None
    return None


# docs/aws-behaviour.md §12.2: what every AWS service answers for an expired session.
EXPIRED_TOKEN_MESSAGE = "The security token included in the request is expired"  # noqa: S105 - a message


@lru_cache(maxsize=64)  # a verifier sees the same X-Amz-Date on every request signed in one second
def _parse_amz_date(value: str) -> _dt.datetime:
    return _dt.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.UTC)


@dataclass(frozen=True)
class Verified:
    access_key: str
    amz_date: str


def verify(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    service: str,
    region: str,
    secret_for: Mapping[str, tuple[str, str | None]],
    now: _dt.datetime,
    window: _dt.timedelta = _dt.timedelta(minutes=5),
    expires_at: Mapping[str, float] | None = None,
) -> Verified:
    """Verify a SigV4 ``Authorization`` header; raise :class:`SigV4Failure` with AWS's wording.

    ``secret_for`` maps an access key id to ``(secret, session_token or None)``; ``expires_at``
    maps the access keys of temporary credentials to their expiry (epoch seconds): from then on
    they are refused as ``token_expired`` (docs/aws-behaviour.md §12.2).
    """
    lower = [(n.lower(), v) for n, v in headers]
    hmap: dict[str, str] = {}
    for n, v in lower:
        hmap[n] = f"{hmap[n]},{v}" if n in hmap else v
    auth = parse_authorization(hmap.get("authorization"))
    if "host" not in auth.signed_headers:
        raise SigV4Failure("malformed", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    amz_date = hmap.get("x-amz-date")
    if not amz_date:
        raise SigV4Failure(
            "malformed", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    try:
        when = _parse_amz_date(amz_date)
    except ValueError:
        raise SigV4Failure("malformed", f"X-Amz-Date {amz_date!r} is not of the form YYYYMMDD'T'HHMMSS'Z'") from None
    if auth.date != amz_date[:8]:
        raise SigV4Failure(
            "scope_date",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    if auth.region != region:
        raise SigV4Failure("scope_region", f"Credential should be scoped to a valid region, not '{auth.region}'. ")
    if auth.service != service:
        raise SigV4Failure("scope_service", f"Credential should be scoped to correct service: '{service}'. ")
    if auth.access_key not in secret_for:
        raise SigV4Failure("unknown_key", "The security token included in the request is invalid.")
    secret, token = secret_for[auth.access_key]
    fmt = "%Y%m%dT%H%M%SZ"
    if when < now - window:
        raise SigV4Failure(
            "expired",
            f"Signature expired: {amz_date} is now earlier than {(now - window).strftime(fmt)} ({now.strftime(fmt)} - {int(window.total_seconds() // 60)} min.)",
        )
    if when > now + window:
        raise SigV4Failure(
            "not_yet",
            f"Signature not yet current: {amz_date} is still later than {(now + window).strftime(fmt)} ({now.strftime(fmt)} + {int(window.total_seconds() // 60)} min.)",
        )
    if token is not None and hmap.get("x-amz-security-token") != token:
        raise SigV4Failure("token", "The security token included in the request is invalid.")
    expiry = expires_at.get(auth.access_key) if expires_at else None
    if expiry is not None and now.timestamp() >= expiry:
        raise SigV4Failure("token_expired", EXPIRED_TOKEN_MESSAGE)
    body_hash = sha256_hex(body)
    declared = hmap.get("x-amz-content-sha256")
    payload_hash = declared if declared and "x-amz-content-sha256" in auth.signed_headers else body_hash
    if declared and declared not in (body_hash, UNSIGNED_PAYLOAD):
        raise SigV4Failure("signature", "The provided 'x-amz-content-sha256' header does not match what was computed.")
    scope = f"{auth.date}/{auth.region}/{auth.service}/aws4_request"
    key = signing_key(secret, auth.date, auth.region, auth.service)
    cheaders = canonical_headers(lower, auth.signed_headers)
    cpath = canonical_path(raw_path)
    queries = {canonical_query_raw(raw_query), canonical_query_normalized(raw_query), canonical_query(raw_query)}
    if "+" in raw_query:
        queries.add(canonical_query_normalized(raw_query, plus_is_space=True))
    for cq in queries:
        creq = "\n".join([method.upper(), cpath, cq, cheaders, ";".join(auth.signed_headers), payload_hash])
        expected = hmac.new(key, string_to_sign(amz_date, scope, creq).encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, auth.signature):
            return Verified(auth.access_key, amz_date)
    raise SigV4Failure(
        "signature",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
