"""Signing credentials for the load generator: fixed keys or the AWS credential chain.

The signer itself is :class:`loadcheck.sigv4.Signer` (it caches per request shape, day and
second; property-tested against botocore's ``SigV4Auth``).
"""

from __future__ import annotations

from typing import Any

from loadcheck.errors import ConfigError
from loadcheck.sigv4 import Credentials


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
