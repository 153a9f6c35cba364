"""The local certificate authority: a trustme CA and the server certificates it issues.

Departure from AWS (docs/fidelity.md, "supervisor and state"): the custom domain's certificate
comes from this local CA instead of ACM. Clients trust it through the CA bundle written beside
the certificate (``.loadcheck/ca.pem`` for the local stack).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_ORGANIZATION = "loadcheck local CA"


@dataclass(frozen=True)
class TlsFiles:
    """PEM paths: the CA bundle clients trust, the server's chain and its private key (0600)."""

    ca_file: str
    cert_file: str
    key_file: str


def issue_certificate(*, names: Iterable[str], ca_file: Path, cert_file: Path, key_file: Path) -> TlsFiles:
    """A new CA and a server certificate for ``names`` (DNS names or IP addresses), as PEM files."""
    names = list(names)
    ca = trustme.CA(organization_name=CA_ORGANIZATION)
    cert = ca.issue_cert(*names)
    for path in (ca_file, cert_file, key_file):
        path.parent.mkdir(parents=True, exist_ok=True)
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file.write_bytes(b"".join(pem.bytes() for pem in cert.cert_chain_pems))
    key_file.touch(mode=0o600)
    key_file.chmod(0o600)
    cert.private_key_pem.write_to_path(str(key_file))
    return TlsFiles(str(ca_file), str(cert_file), str(key_file))


def issue_in(directory: Path, names: Iterable[str]) -> TlsFiles:
    """:func:`issue_certificate` into ``directory``: ``ca.pem``, ``gateway-cert.pem``, ``gateway-key.pem``."""
    return issue_certificate(
        names=names,
        ca_file=directory / "ca.pem",
        cert_file=directory / "gateway-cert.pem",
        key_file=directory / "gateway-key.pem",
    )
