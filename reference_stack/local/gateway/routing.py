"""Which API a request is for (by Host), and which route it matches (docs/aws-behaviour.md §6).

Host classification:

    custom domain (``domain``, any port)     the API through its API mapping ``(none)``
    default endpoint host                     the API, unless ``disable_execute_api_endpoint``:
                                              then 404 {"message":"Not Found"} (§6, KC quote)
    127.0.0.1 / localhost / ::1               the service's admin paths (/_loadcheck/...)
    anything else                             403 {"message":"Forbidden"}, ForbiddenException

Departures: AWS never sees an unknown Host at the API (DNS would not route it there, and the
shared regional front end answers such requests itself); the local answer, 403 ForbiddenException,
is what API Gateway's front end returns for a host it serves no API for (a choice, UNCONFIRMED).
The ``/_loadcheck/`` prefix exists only on the loopback host (docs/internals.md).

Route matching is exact on ``METHOD /path`` (§6: "exact route+method" first; the reference
stack has no greedy ``{proxy+}`` or ``$default`` routes, so those are not modelled). The path
is compared as the client sent it (percent-encoding included) with no trailing-slash folding.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import Enum

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class HostKind(Enum):
    CUSTOM_DOMAIN = "custom_domain"
    DEFAULT_ENDPOINT = "default_endpoint"
    ADMIN = "admin"
    UNKNOWN = "unknown"


def host_name(host_header: str | None) -> str:
    """The Host header without its port, lower-cased."""
    if not host_header:
        return ""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:443
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def classify_host(host_header: str | None, *, domain: str, default_endpoint_host: str) -> HostKind:
    name = host_name(host_header)
    if name == domain:
        return HostKind.CUSTOM_DOMAIN
    if name == default_endpoint_host:
        return HostKind.DEFAULT_ENDPOINT
    if name in LOOPBACK_HOSTS:
        return HostKind.ADMIN
    return HostKind.UNKNOWN


@dataclass
class Request:
    """One request as the gateway received it (the wire layer fills it; the model reads it)."""

    method: str
    raw_path: str  # as sent, still percent-encoded, without the query
    raw_query: str  # as sent, without "?"
    headers: list[tuple[str, str]]  # in arrival order, names as sent
    body: bytes
    source_ip: str
    server_port: int
    request_id: str
    received_at: _dt.datetime  # UTC, when the request line arrived
    received_mono: float  # time.monotonic() at the same moment, for latencies
    protocol: str = "HTTP/1.1"
    oversize: bool = False  # Content-Length over payload_limit_bytes: the body was not kept
    extra: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The header's values comma-joined (RFC 9110), or None."""
        lname = name.lower()
        values = [v for n, v in self.headers if n.lower() == lname]
        return ",".join(values) if values else None

    @property
    def host(self) -> str:
        return host_name(self.header("host"))


class Router:
    """Exact route-key matching; ``match`` returns the route key or None."""

    def __init__(self, routes: dict[str, str]) -> None:
        self._routes = dict(routes)

    def match(self, method: str, raw_path: str) -> str | None:
        key = f"{method.upper()} {raw_path}"
        if key in self._routes:
            return key
        any_key = f"ANY {raw_path}"
        return any_key if any_key in self._routes else None

    def function_for(self, route_key: str) -> str:
        return self._routes[route_key]

    @property
    def keys(self) -> list[str]:
        return list(self._routes)
