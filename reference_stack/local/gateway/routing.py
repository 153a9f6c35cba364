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

Route matching (§6): the most specific route wins. A route without a greedy variable beats one
with a greedy ``{proxy+}``; among those, literal segments beat ``{name}`` variables segment by
segment from the left; among greedy routes the longer literal prefix wins; an exact method beats
``ANY``. ``{name}`` matches exactly one non-empty segment, ``{name+}`` one or more at the end.
Path parameters are the matched segments, percent-decoded. Departures: the path is compared as
the client sent it (percent-encoding included) with no trailing-slash folding; a ``$default``
route is not modelled (the description's route keys are ``METHOD /path`` only); the order of two
equally specific routes (which AWS documents no rule for) is the description's order.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from enum import Enum
from urllib.parse import unquote

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


_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")


@dataclass(frozen=True)
class _Route:
    key: str
    method: str
    segments: tuple[str, ...]  # literal segments, or "{name}" / "{name+}"
    greedy: bool
    order: int

    def specificity(self) -> tuple[int, tuple[int, ...], int, int, int]:
        """Sorts the most specific route first (smaller is more specific)."""
        literal = tuple(0 if _VARIABLE.fullmatch(s) is None else 1 for s in self.segments)
        return (int(self.greedy), literal, -len(self.segments), int(self.method == "ANY"), self.order)

    def bind(self, method: str, parts: list[str]) -> dict[str, str] | None:
        if self.method not in (method, "ANY"):
            return None
        fixed = self.segments[:-1] if self.greedy else self.segments
        if len(parts) < len(fixed) + (1 if self.greedy else 0) or (not self.greedy and len(parts) != len(fixed)):
            return None
        params: dict[str, str] = {}
        for seg, part in zip(fixed, parts, strict=False):
            m = _VARIABLE.fullmatch(seg)
            if m is None:
                if seg != part:
                    return None
            elif not part:
                return None
            else:
                params[m.group(1)] = unquote(part)
        if self.greedy:
            m = _VARIABLE.fullmatch(self.segments[-1])
            assert m is not None
            rest = "/".join(parts[len(fixed) :])
            if not rest:
                return None
            params[m.group(1)] = unquote(rest)
        return params


class Router:
    """Route-key matching; ``match`` returns the most specific route key or None."""

    def __init__(self, routes: dict[str, str]) -> None:
        self._routes = dict(routes)
        parsed = []
        for n, key in enumerate(routes):
            method, path = key.split(" ", 1)
            segments = tuple(path.split("/")[1:])
            last = _VARIABLE.fullmatch(segments[-1]) if segments else None
            parsed.append(_Route(key, method.upper(), segments, bool(last and last.group(2)), n))
        self._ordered = sorted(parsed, key=_Route.specificity)

    def match(self, method: str, raw_path: str) -> str | None:
        found = self.resolve(method, raw_path)
        return found[0] if found else None

    def resolve(self, method: str, raw_path: str) -> tuple[str, dict[str, str]] | None:
        """(route key, path parameters) of the most specific route for the request, or None."""
        parts = raw_path.split("/")[1:] if raw_path.startswith("/") else [raw_path]
        method = method.upper()
        for route in self._ordered:
            params = route.bind(method, parts)
            if params is not None:
                return route.key, params
        return None

    def function_for(self, route_key: str) -> str:
        return self._routes[route_key]

    @property
    def keys(self) -> list[str]:
        return list(self._routes)
