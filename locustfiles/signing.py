"""What the load generator signs with: credentials (fixed keys or the AWS credential chain) and where.

The signer itself is :class:`loadcheck.core.sigv4.Signer` (it caches per request shape, day and
second; property-tested against botocore's ``SigV4Auth``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import Credentials
from locustfiles.resolve import Resolve


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
        # deferred: botocore loads urllib3/ssl, which must come after Locust's gevent monkey-patching
        # (pyproject's isort note), and this module does not import locust itself.
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


@dataclass(frozen=True, kw_only=True)
class SigningContext:
    """Where and how a SigV4 user sends: built once per process, shared by its users."""

    url: str  # https://<domain>[:port]
    region: str
    credentials: CredentialSource
    ca_bundle: str | None = None
    resolves: dict[tuple[str, int], Resolve] = field(default_factory=dict)
    verify_tls: bool = True
    timeout_s: float = 35.0

    @property
    def host_header(self) -> str:
        """The Host the request is signed for: as botocore and curl send it (IPv6 in brackets)."""
        parts = urlsplit(self.url)
        default = 443 if parts.scheme == "https" else 80
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        return host if parts.port in (None, default) else f"{host}:{parts.port}"

    @property
    def client_host_header(self) -> str:
        """The Host header geventhttpclient writes when the request carries none.

        geventhttpclient (``HTTPClient._build_request``) sends ``host`` (IPv6 in brackets), with
        ``:port`` unless the port is 80 or 443. Where that equals :attr:`host_header` the user
        leaves Host to it: one header less through Locust's and geventhttpclient's per-header
        work on every request.
        """
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return host if port in (80, 443) else f"{host}:{port}"
