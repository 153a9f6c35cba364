"""Schema fuzzing through the signed gateway, shared by the test and ``loadcheck bench``-style long runs.

schemathesis generates requests from ``reference_stack/openapi.yaml`` (valid and invalid bodies,
query parameters); each is signed with SigV4 (``loadcheck.core.sigv4.Signer``, service
``execute-api``, the requester identity) and sent to the gateway over TLS on 127.0.0.1 with the
custom domain as Host. Every answer must be no 5xx, a documented status, a documented content
type, and conform to its documented schema.
"""

from __future__ import annotations

import itertools
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.target import Target

OPENAPI = Path(__file__).resolve().parents[2] / "reference_stack" / "openapi.yaml"
EXAMPLES_ENV = "LOADCHECK_FUZZ_EXAMPLES"  # per operation; make test keeps the default small
DEFAULT_EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_path(OPENAPI)
WELL_FORMED_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}")
_FRESH_MS = itertools.count(random.SystemRandom().randrange(86_400_000))
# Methods the API does not route (TRACE, PUT, ...) are the raw-HTTP fuzzer's (issue 15 item 2),
# not this contract's: test_schema_fuzz.py holds the gateway's answer to them apart.
schema.config.phases.coverage.unexpected_methods = set()


def examples() -> int:
    return int(os.environ.get(EXAMPLES_ENV) or DEFAULT_EXAMPLES)


class SigV4Auth(requests.auth.AuthBase):
    """Signs each prepared request for execute-api, with ``host`` (the custom domain) as Host."""

    def __init__(self, credentials: Credentials, region: str, host: str) -> None:
        self.credentials = credentials
        self.signer = Signer("execute-api", region)
        self.host = host

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(r.url or "")
        body = r.body if isinstance(r.body, bytes) else (r.body or "").encode()
        r.headers["Host"] = self.host
        signed = {k: v for k, v in r.headers.items() if k.lower() == "content-type"}
        r.headers.update(
            self.signer.sign(
                self.credentials, r.method or "GET", self.host, parts.path or "/", parts.query, signed, body
            )
        )
        return r


@dataclass(frozen=True)
class Gateway:
    """Where the signed requests go: the gateway's port on 127.0.0.1, its domain, CA and signer."""

    port: int
    domain: str
    region: str
    ca_bundle: str
    credentials: Credentials

    @classmethod
    def of(cls, target: Target) -> Gateway:
        return cls(
            target.connect_port, target.domain, target.region, str(target.ca_bundle), target.credentials("requester")
        )


def call_and_validate(case: Any, gw: Gateway, checks: list[Any] | None = None) -> requests.Response:
    with requests.Session() as session:
        session.auth = SigV4Auth(gw.credentials, gw.region, f"{gw.domain}:{gw.port}")
        return case.call_and_validate(  # type: ignore[no-any-return]
            base_url=f"https://127.0.0.1:{gw.port}",
            session=session,
            checks=checks or CHECKS,
            timeout=35,
            verify=gw.ca_bundle,
        )


class StatefulAPI(schema.as_state_machine()):  # type: ignore[misc]
    """openapi.yaml's links as a state machine (POST /events, then GET /events?date= of it)."""

    gateway: Gateway | None = None

    def before_call(self, case: Any) -> None:
        """A fresh ``time`` for every POST /events that has a well-formed one: the table keeps what
        earlier examples wrote, so a replayed POST would meet its own item (409) and Hypothesis
        would see the machine's rules change under the same choices (a flaky strategy)."""
        body = case.body
        time_of_day = body.get("time") if case.method == "POST" and isinstance(body, dict) else None
        if isinstance(time_of_day, str) and WELL_FORMED_TIME.fullmatch(time_of_day):
            ms = next(_FRESH_MS) % 86_400_000
            body["time"] = f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    def call(self, case: Any, **kwargs: Any) -> Any:
        assert self.gateway is not None
        return call_and_validate(case, self.gateway)

    def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
        pass  # call() validated it with CHECKS
