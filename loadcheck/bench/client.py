"""The benchmarks' HTTPS client side: a keep-alive connection pinned to 127.0.0.1 that names the
custom domain, and the summary of what the client threads measured. Shared by
``loadcheck bench gateway`` (:mod:`loadcheck.bench.gateway`) and its ``POST /events`` run
through the full stack (:mod:`loadcheck.bench.stack`)."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram

DOMAIN = "events.loadcheck.test"


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with SNI and Host naming the custom domain (what DNS would resolve)."""

    def __init__(self, port: int, context: ssl.SSLContext, timeout: float, *, domain: str = DOMAIN) -> None:
        super().__init__(domain, port, context=context, timeout=timeout)
        self._ctx = context
        self._domain = domain

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self._domain)


def summarize(
    hists: list[HdrHistogram], statuses: list[Counter[int]], errors: list[str], wall: float
) -> dict[str, Any]:
    """Requests/s, HDR percentiles (ms), status counts and first errors of a driven interval."""
    total = HdrHistogram(1, 60_000_000, 3)
    for h in hists:
        total.add(h)
    status_total: Counter[int] = Counter()
    for c in statuses:
        status_total.update(c)
    n = total.get_total_count()
    return {
        "requests": n,
        "duration_s": round(wall, 3),
        "requests_per_s": round(n / wall, 1) if wall else 0.0,
        "latency_ms": {
            q: round(total.get_value_at_percentile(p) / 1000.0, 2)
            for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        }
        if n
        else {},
        "statuses": {str(k): v for k, v in sorted(status_total.items())},
        "errors": len(errors),
        "first_errors": errors[:3],
    }
