"""The server TLS context of the custom domain (docs/aws-behaviour.md §6).

HTTP APIs on a custom domain use the ``TLS_1_2`` security policy: TLS 1.0 and 1.1 are refused
(the handshake fails with a ``protocol_version`` alert), TLS 1.2 is offered with the policy's
cipher list, and TLS 1.3 is accepted too (the live page: TLS_1_2 "accepts TLS 1.2 and TLS 1.3
traffic").

SNI: a client that names a server must name the custom domain or the default execute-api host;
any other name fails the handshake with an ``unrecognized_name`` alert. A client that sends no
SNI is let through so the supervisor can reach the admin paths at ``https://127.0.0.1:PORT``
(Python does not send an IP address as SNI); the Host check in ``routing.py`` then decides.
Departure: AWS's regional front end requires SNI for custom domains and answers an unknown name
from its own certificate; locally the name is refused in the handshake (UNCONFIRMED either way).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

# TLS_1_2 security policy, TLS 1.2 ciphers (AGW:apigateway-custom-domain-tls-version, §6).
TLS_1_2_CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES128-SHA256",
        "ECDHE-RSA-AES128-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES256-SHA384",
        "ECDHE-RSA-AES256-SHA384",
        "AES128-GCM-SHA256",
        "AES128-SHA256",
        "AES256-GCM-SHA384",
        "AES256-SHA256",
    ]
)


def server_context(*, cert_file: str, key_file: str, server_names: Iterable[str]) -> ssl.SSLContext:
    """A server-side context: TLS >= 1.2, the TLS_1_2 policy ciphers, SNI limited to ``server_names``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS_1_2_CIPHERS)
    ctx.load_cert_chain(cert_file, key_file)
    allowed = frozenset(n.lower() for n in server_names if n)

    def check_sni(sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        if server_name is None or server_name.lower() in allowed:
            return None
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME

    ctx.sni_callback = check_sni
    return ctx
