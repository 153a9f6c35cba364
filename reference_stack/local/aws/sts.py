"""Role sessions: moto's STS answers ``AssumeRole``; this middleware tells the other services.

moto issues the temporary credentials (access key ``ASIA...``, secret, session token, expiry:
``DurationSeconds``, default 3600 s) and keeps them in this process only. The gateway and the
search service verify signatures themselves, so every session moto issues is recorded in
``sessions.json`` beside ``identities.json`` (:func:`loadcheck.core.state.record_session`)
before the answer leaves: a client can use its keys at once, as on AWS. Those services give a
session its role's policies and refuse it, once expired, with AWS's answer
(docs/aws-behaviour.md §12.2).

Before moto answers, the caller's right to assume the role is decided as AWS decides it
(:func:`loadcheck.core.iam.evaluate_assume_role`, docs/aws-behaviour.md §12.1): the role's trust
policy must allow the caller, and where it names only the account, the caller's identity-based
policies must allow ``sts:AssumeRole`` on the role too. A refusal is AWS's answer: HTTP 403,
``AccessDenied``, "User: <caller> is not authorized to perform: sts:AssumeRole on resource:
<role>" (§12.3).

Departures from AWS (docs/fidelity.md, "aws"):

- The caller is the access key the request's credential scope names; its signature is not
  verified (the aws endpoint verifies no signature). A key identities.json does not hold, and a
  role identities.json does not name, are left to moto, which issues a session for any role ARN
  to any caller; such a session is unknown to the gateway and the search service.
- ``DurationSeconds`` below 900 or above the role's ``max_session_duration`` is accepted (AWS
  answers ValidationError; botocore refuses below 900 itself unless its parameter validation is
  off): the tests use a seconds-long session to see one expire.
- Sessions stay recorded for an hour after they expire (then their keys are "invalid", not
  "expired"); AWS does not say how long it recognises an expired token.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from loadcheck.core import iam
from loadcheck.core.errors import ConfigError
from loadcheck.core.state import IdentityStore, RoleSession, record_session
from reference_stack.local.aws.protocol import Reply, WsgiApp, call_app, read_body

log = logging.getLogger("loadcheck.aws.sts")
KEEP_EXPIRED_S = 3600.0
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_CREDENTIAL = re.compile(r"Credential=([A-Za-z0-9]+)/")


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


def access_denied(caller_arn: str, role_arn: str) -> Reply:
    """STS's refusal of an ``AssumeRole`` the policies do not allow (docs/aws-behaviour.md §12.3)."""
    request_id = str(uuid.uuid4())
    message = f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    body = (
        f'<ErrorResponse xmlns="{STS_NAMESPACE}">\n'
        "  <Error>\n    <Type>Sender</Type>\n    <Code>AccessDenied</Code>\n"
        f"    <Message>{escape(message)}</Message>\n  </Error>\n"
        f"  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
    ).encode()
    headers = [("Content-Type", "text/xml"), ("Content-Length", str(len(body))), ("x-amzn-RequestId", request_id)]
    return Reply("403 Forbidden", headers, body)


class SessionRecorder:
    """WSGI middleware around moto's app: decides who may assume a role, and records every
    session ``AssumeRole`` issues."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        sessions_file: Path | None,
        identities_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.sessions_file = sessions_file
        self._identities = IdentityStore(identities_file) if identities_file is not None else None
        self._trust: dict[tuple[str, str], iam.Policy] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def refusal(self, environ: dict[str, Any], role_arn: str) -> Reply | None:
        """AWS's AccessDenied when the caller may not assume ``role_arn``; None when it may (or
        when identities.json knows neither the caller nor the role: moto decides, as before)."""
        if self._identities is None:
            return None
        found = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if found is None:
            return None
        try:
            ids = self._identities.for_key(found.group(1))
        except ConfigError as exc:
            log.error("%s; AssumeRole left to moto", exc)
            return None
        caller = ids.by_key.get(found.group(1))
        role = next((r for r in ids.roles.values() if r.arn == role_arn), None)
        if caller is None or role is None:
            return None
        key = (role.arn, json.dumps(role.trust_policy, sort_keys=True))
        trust = self._trust.get(key)
        if trust is None:
            trust = self._trust[key] = iam.Policy.parse(
                role.trust_policy, kind=iam.PolicyKind.TRUST, where=f"role {role.name}: trust_policy"
            )
        decision = iam.evaluate_assume_role(
            iam.Request(action="sts:AssumeRole", resource=role.arn, principal=caller.principal),
            trust_policy=trust,
            identity_policies=ids.policies.get(caller.name, ()),
            role_account=role.arn.split(":")[4],
        )
        if decision is iam.Decision.ALLOW:
            return None
        log.info("AssumeRole of %s refused to %s (%s)", role.arn, caller.arn, decision.value)
        return access_denied(caller.arn, role.arn)

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
        if params.get("Action") == ["AssumeRole"]:
            refused = self.refusal(environ, params.get("RoleArn", [""])[0])
            if refused is not None:
                return refused.send(start_response)
        reply = call_app(self.app, environ, body)
        if params.get("Action") == ["AssumeRole"] and reply.code == 200:
            session = parse_assume_role(reply.body, params.get("RoleArn", [""])[0])
            with self._lock:
                record_session(self.sessions_file, session, now=self._clock(), keep_expired_s=KEEP_EXPIRED_S)
            log.info("role session %s for %s until %.0f", session.access_key_id, session.arn, session.expires_at)
        return reply.send(start_response)
