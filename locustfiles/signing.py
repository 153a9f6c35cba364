"""The load generator's SigV4 signer: :class:`loadcheck.sigv4.Signer` with per-shape caching.

A load generator signs the same few request shapes over and over: the same method, host,
path and header names; only the date, the query values and the body change. ``CachingSigner``
computes the canonical request from :mod:`loadcheck.sigv4`'s own building blocks
(``canonical_path``, ``canonical_query_raw``, ``canonical_header_value``, ``signing_key``), but
keeps per shape the canonical path, the canonical header block around ``x-amz-date`` and the
signed-header list, formats ``X-Amz-Date`` once per second, and uses the one-shot C HMAC. The
output is the base class's, byte for byte (unit- and property-tested against the base class and
botocore's ``SigV4Auth``); it just does less work per request (``loadcheck bench load``
measures both).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from loadcheck.errors import ConfigError
from loadcheck.sigv4 import (
    ALGORITHM,
    EMPTY_SHA256,
    UNSIGNABLE_HEADERS,
    Credentials,
    Signer,
    canonical_header_value,
    canonical_path,
    canonical_query_raw,
    signing_key,
)


class CachingSigner(Signer):
    """Same signatures as :class:`Signer`; caches what does not change between requests."""

    def __init__(self, service: str, region: str) -> None:
        super().__init__(service, region)
        self._paths: dict[str, str] = {}
        self._shapes: dict[tuple[str, tuple[tuple[str, str], ...], str | None], tuple[str, str, str]] = {}
        self._second = -1
        self._amz_date = ""
        self._keys: dict[tuple[str, str], bytes] = {}

    def _now(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        return self._amz_date

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
        lowered = tuple(sorted((n.lower(), v) for n, v in (headers or {}).items()))
        if any(n in ("x-amz-content-sha256", "x-amz-date", "x-amz-security-token", "host") for n, _ in lowered):
            # Rare shapes that override what the signer adds: the general path handles them.
            return super().sign(
                credentials, method, host, path, query, headers, body, payload_hash=payload_hash, amz_date=amz_date
            )
        amz_date = amz_date or self._now()
        date = amz_date[:8]
        token = credentials.token
        shape_key = (host, lowered, token)  # the token is a signed header value
        shape = self._shapes.get(shape_key)
        if shape is None:
            if len(self._shapes) > 256:  # refreshed tokens make new shapes; keep the cache bounded
                self._shapes.clear()
            shape = self._shapes[shape_key] = self._shape(host, lowered, token)
        before, after, signed = shape
        cpath = self._paths.get(path)
        if cpath is None:
            cpath = self._paths[path] = canonical_path(path)
        if payload_hash is None:
            payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        creq = (
            f"{method.upper()}\n{cpath}\n{canonical_query_raw(query)}\n{before}x-amz-date:{amz_date}\n{after}\n"
            f"{signed}\n{payload_hash}"
        )
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        sts = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(creq.encode()).hexdigest()}"
        key_id = (credentials.secret_key, date)
        key = self._keys.get(key_id)
        if key is None:
            if len(self._keys) > 16:
                self._keys.clear()
            key = self._keys[key_id] = signing_key(credentials.secret_key, date, self.region, self.service)
        sig = hmac.digest(key, sts.encode(), "sha256").hex()
        out = {"X-Amz-Date": amz_date}
        if token:
            out["X-Amz-Security-Token"] = token
        out["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={signed}, Signature={sig}"
        )
        return out

    @staticmethod
    def _shape(host: str, lowered: tuple[tuple[str, str], ...], token: str | None) -> tuple[str, str, str]:
        """(canonical header lines before x-amz-date, lines after it, signed header names)."""
        values = {"host": host, **dict(lowered), "x-amz-date": ""}
        if token is not None:
            values["x-amz-security-token"] = token
        names = sorted(n for n in values if n not in UNSIGNABLE_HEADERS)
        i = names.index("x-amz-date")
        before = "".join(f"{n}:{canonical_header_value(values[n])}\n" for n in names[:i])
        after = "".join(f"{n}:{canonical_header_value(values[n])}\n" for n in names[i + 1 :])
        return before, after, ";".join(names)


class CredentialSource:
    """Signing credentials, fixed or from botocore (re-read when they change)."""

    def __init__(self, *, static: Credentials | None = None, botocore_credentials: Any = None) -> None:
        if (static is None) == (botocore_credentials is None):
            raise ValueError("give exactly one of static or botocore_credentials")
        self._static = static
        self._botocore = botocore_credentials
        self._key: tuple[str, str, str | None] | None = None
        self._current: Credentials | None = static

    @classmethod
    def from_profile(cls, profile: str | None) -> CredentialSource:
        import botocore.session

        session = botocore.session.Session(profile=profile)
        creds = session.get_credentials()
        if creds is None:
            raise ConfigError(
                f"no AWS credentials found (profile {profile!r})",
                value=profile,
                hint="configure credentials (aws configure, AWS_PROFILE, or --aws-profile NAME)",
            )
        return cls(botocore_credentials=creds)

    def get(self) -> Credentials:
        if self._static is not None:
            return self._static
        frozen = self._botocore.get_frozen_credentials()
        key = (frozen.access_key, frozen.secret_key, frozen.token)
        if key != self._key or self._current is None:
            self._key = key
            self._current = Credentials(frozen.access_key, frozen.secret_key, frozen.token)
        return self._current
