"""curl-style ``--resolve DOMAIN:PORT:ADDR`` inside the load generator, and TLS against a CA bundle.

The API is addressed by its custom domain (Host header, signed host, TLS SNI and certificate
name are all the domain, as on AWS: docs/aws-behaviour.md §6), while the TCP connection goes to
``ADDR:PORT``: the local gateway on 127.0.0.1, or a chosen AWS edge address. Nothing touches
``/etc/hosts`` or the process-wide resolver: only connections to the mapped ``DOMAIN:PORT``
are redirected, by a geventhttpclient client pool that points each new client's connection
pool at the mapped address.

geventhttpclient keeps the connect address in ``ConnectionPool._connection_host/_port`` (its
proxy support uses the same seam); :func:`_redirect` checks they exist so an upgrade that
renames them fails loudly instead of silently connecting to DNS.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gevent.ssl
from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.url import URL

from loadcheck.core.errors import ConfigError


@dataclass(frozen=True)
class Resolve:
    domain: str
    port: int
    address: str
    connect_port: int | None = None  # curl has no such field; we allow ADDR:PORT for a different port

    @property
    def key(self) -> tuple[str, int]:
        return (self.domain.lower(), self.port)


def parse_resolve(value: str) -> Resolve:
    """``DOMAIN:PORT:ADDR`` (curl) or ``DOMAIN:PORT:ADDR:CONNECT_PORT``; IPv6 ADDR in brackets."""
    text = value.strip()
    domain, sep1, rest = text.partition(":")
    port, sep2, addr = rest.partition(":")
    connect_port: int | None = None
    if addr.startswith("["):
        inner, _, tail = addr[1:].partition("]")
        addr = inner
        if tail.startswith(":"):
            connect_port = _port(tail[1:], value)
    elif addr.count(":") == 1:
        addr, cp = addr.split(":")
        connect_port = _port(cp, value)
    if not (sep1 and sep2 and domain and addr):
        raise ConfigError(
            f"--resolve: {value!r} is not DOMAIN:PORT:ADDR",
            value=value,
            hint="e.g. --resolve events.loadcheck.test:8443:127.0.0.1 (as curl --resolve)",
        )
    return Resolve(domain, _port(port, value), addr, connect_port)


def _port(text: str, value: str) -> int:
    try:
        p = int(text)
    except ValueError:
        p = -1
    if not 0 < p < 65536:
        raise ConfigError(
            f"--resolve: port {text!r} in {value!r} is not a port",
            value=value,
            hint="e.g. --resolve events.loadcheck.test:8443:127.0.0.1",
        )
    return p


def ssl_context_factory(ca_bundle: str | None) -> Callable[..., ssl.SSLContext]:
    """A factory geventhttpclient calls per connection pool; it verifies against ``ca_bundle``.

    geventhttpclient passes certifi's bundle as ``cafile``; with our own CA bundle that would be
    the wrong trust store, so it is ignored when a bundle is given.
    """

    def factory(cafile: str | None = None, **_: Any) -> ssl.SSLContext:
        ctx = gevent.ssl.create_default_context(cafile=ca_bundle or cafile)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    return factory


def _redirect(client: HTTPClient, to: Resolve) -> None:
    pool = client._connection_pool
    if not (hasattr(pool, "_connection_host") and hasattr(pool, "_connection_port")):
        raise RuntimeError(
            "geventhttpclient changed: ConnectionPool has no _connection_host/_connection_port; "
            "--resolve cannot be applied (pin geventhttpclient or update locustfiles/resolve.py)"
        )
    pool._connection_host = to.address
    pool._connection_port = to.connect_port or to.port


class ResolvingClientPool(HTTPClientPool):
    """HTTPClientPool whose clients for mapped DOMAIN:PORT connect to the mapped address."""

    def __init__(self, mapping: Mapping[tuple[str, int], Resolve], **kw: Any) -> None:
        super().__init__(**kw)
        self.mapping = dict(mapping)

    def get_client(self, url: str | URL) -> HTTPClient:
        if not isinstance(url, URL):
            url = URL(url)
        key = (url.host, url.port)
        client = self.clients.get(key)
        if client is None:
            client = HTTPClient.from_url(url, **self.client_args)
            port = url.port or (443 if url.scheme == "https" else 80)
            to = self.mapping.get((str(url.host).lower(), port))
            if to is not None:
                _redirect(client, to)
            self.clients[key] = client
        return client
