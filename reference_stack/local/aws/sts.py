"""Role sessions: moto's STS answers ``AssumeRole``; this middleware tells the other services.

moto issues the temporary credentials (access key ``ASIA...``, secret, session token, expiry:
``DurationSeconds``, default 3600 s) and keeps them in this process only. The gateway and the
search service verify signatures themselves, so every session moto issues is recorded in
``sessions.json`` beside ``identities.json`` (:func:`loadcheck.core.state.record_session`)
before the answer leaves: a client can use its keys at once, as on AWS. Those services give a
session its role's policies and refuse it, once expired, with AWS's answer
(docs/aws-behaviour.md §12.2).

Departures from AWS (docs/fidelity.md, "aws"):

- moto issues a session for any role ARN, without evaluating the role's trust policy or the
  caller's ``sts:AssumeRole`` permission (the trust policies are stored in IAM as the Terraform
  writes them); a session of a role that identities.json does not name is unknown to the
  gateway and the search service.
- ``DurationSeconds`` below 900 or above the role's ``max_session_duration`` is accepted (AWS
  answers ValidationError; botocore refuses below 900 itself unless its parameter validation is
  off): the tests use a seconds-long session to see one expire.
- Sessions stay recorded for an hour after they expire (then their keys are "invalid", not
  "expired"); AWS does not say how long it recognises an expired token.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from loadcheck.core.state import RoleSession, record_session
from reference_stack.local.aws.protocol import WsgiApp, call_app, read_body

log = logging.getLogger("loadcheck.aws.sts")
KEEP_EXPIRED_S = 3600.0


def _text(root: ET.Element, name: str) -> str:
    """The text of the first element called ``name`` at any depth, whatever its namespace."""
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == name and el.text:
            return el.text
    raise ValueError(f"AssumeRole response has no {name}")


def parse_assume_role(body: bytes, role_arn: str) -> RoleSession:
    """The session in moto's ``AssumeRoleResponse`` (query protocol, XML)."""
    root = ET.fromstring(body)  # noqa: S314 - moto's own answer, in this process
    expiration = _text(root, "Expiration").replace("Z", "+00:00")
    return RoleSession(
        access_key_id=_text(root, "AccessKeyId"),
        secret_access_key=_text(root, "SecretAccessKey"),
        session_token=_text(root, "SessionToken"),
        expires_at=_dt.datetime.fromisoformat(expiration).timestamp(),
        arn=_text(root, "Arn"),
        role_arn=role_arn,
        user_id=_text(root, "AssumedRoleId"),
    )


class SessionRecorder:
    """WSGI middleware around moto's app: records every session ``AssumeRole`` issues."""

    def __init__(self, app: WsgiApp, *, sessions_file: Path | None, clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self.sessions_file = sessions_file
        self._clock = clock
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        # Only STS calls (credential scope .../sts/aws4_request) are looked into: DynamoDB's hot
        # path passes straight through.
        if (
            self.sessions_file is None
            or environ.get("REQUEST_METHOD") != "POST"
            or "/sts/aws4_request" not in environ.get("HTTP_AUTHORIZATION", "")
        ):
            return self.app(environ, start_response)
        body = read_body(environ)
        params = parse_qs(body.decode("utf-8", "replace")) if b"Action=AssumeRole" in body else {}
        reply = call_app(self.app, environ, body)
        if params.get("Action") == ["AssumeRole"] and reply.code == 200:
            session = parse_assume_role(reply.body, params.get("RoleArn", [""])[0])
            with self._lock:
                record_session(self.sessions_file, session, now=self._clock(), keep_expired_s=KEEP_EXPIRED_S)
            log.info("role session %s for %s until %.0f", session.access_key_id, session.arn, session.expires_at)
        return reply.send(start_response)
