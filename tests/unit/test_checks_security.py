"""security: an API that answers as AWS does passes; each hole the check exists to find fails,
naming the probe. The wire seam (``checks.probe_http.send``/``handshake``) is replaced by a
model gateway that really verifies SigV4 (``loadcheck.core.sigv4.verify``) against the role
sessions moto's STS issued (the check assumes the requester and denied roles as the target's
caller) and writes access-log records to moto's CloudWatch Logs; the check's own logic runs
unchanged."""

from __future__ import annotations

import datetime as _dt
import json
import ssl
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.sts.models import sts_backends

from checks import probe_http, security
from checks.framework import CheckContext
from loadcheck.bench.synthetic_checks import REGION, make_records, synthetic_target, write_run
from loadcheck.core.description import load_description
from loadcheck.core.errors import ConfigError
from loadcheck.core.rundir import read_run
from loadcheck.core.sigv4 import SigV4Failure, verify

GROUP = "/aws/apigateway/loadcheck-http-api"
ACCOUNT = "123456789012"  # moto's default
ROLE_ARNS = {role: f"arn:aws:iam::{ACCOUNT}:role/loadcheck-{role}" for role in ("requester", "denied")}


def _sessions() -> dict[str, tuple[str, str, str]]:
    """access key -> (secret, token, role ARN) of every session moto's STS issued."""
    return {
        r.access_key_id: (r.secret_access_key, r.session_token, r.role_arn)
        for r in sts_backends[ACCOUNT]["aws"].assumed_roles
    }


@dataclass
class ModelGateway:
    """What AWS does with each probe, with switches that break one rule at a time."""

    logs: Any
    allow_denied: bool = False
    accept_unsigned: bool = False
    tls11: bool = False
    echo_any_origin: bool = False
    no_size_limit: bool = False
    blank_authorizer_error: bool = False
    seq: int = 0
    sent: list[str] = field(default_factory=list)

    def send(
        self,
        *,
        server_name: str,
        address: str,
        port: int,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes = b"",
        context: ssl.SSLContext,
        timeout: float = 30.0,
    ) -> probe_http.Answer:
        self.seq += 1
        rid = f"req{self.seq:04d}="
        self.sent.append(path)
        status, authz, out_headers = self._decide(server_name, method, path, headers, body)
        if server_name.endswith("amazonaws.com"):
            return probe_http.Answer(404, {"apigw-requestid": rid}, b'{"message":"Not Found"}', "TLSv1.3")
        now = _dt.datetime.now(_dt.UTC)
        record = {
            "requestId": rid,
            "status": str(status),
            "userAgent": headers.get("User-Agent", "-"),
            "authorizerError": "-" if self.blank_authorizer_error else (authz or "-"),
            "requestTimeEpoch": str(int(now.timestamp() * 1000)),
        }
        self.logs.put_log_events(
            logGroupName=GROUP,
            logStreamName="s",
            logEvents=[{"timestamp": int(now.timestamp() * 1000), "message": json.dumps(record)}],
        )
        return probe_http.Answer(status, {"apigw-requestid": rid, **out_headers}, b"{}", "TLSv1.3")

    def _decide(
        self, host: str, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str | None, dict[str, str]]:
        cors = load_description().cors
        if len(body) > load_description().payload_limit_bytes and not self.no_size_limit:
            return 413, None, {}
        if method == "OPTIONS":
            origin = headers.get("Origin", "")
            ok = origin in cors.allow_origins or self.echo_any_origin
            return 204, None, ({"access-control-allow-origin": origin} if ok else {})
        raw_path, _, query = path.partition("?")
        try:
            v = verify(
                method=method,
                raw_path=raw_path,
                raw_query=query,
                headers=list(headers.items()),
                body=body,
                service="execute-api",
                region=REGION,
                secret_for={k: (secret, token) for k, (secret, token, _) in _sessions().items()},
                now=_dt.datetime.now(_dt.UTC),
            )
        except SigV4Failure as exc:
            if exc.kind == "missing" and self.accept_unsigned:
                return 200, None, {}
            return 403, exc.message, {}
        if _sessions()[v.access_key][2] == ROLE_ARNS["denied"] and not self.allow_denied:
            return 403, "User is not authorized to perform execute-api:Invoke", {}
        return 200, None, {}

    def handshake(
        self, *, server_name: str, address: str, port: int, context: ssl.SSLContext, timeout: float = 10.0
    ) -> str | None:
        if context.maximum_version == ssl.TLSVersion.TLSv1_1 and not self.tls11:
            raise ssl.SSLError(1, "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version")
        return "TLSv1.1" if context.maximum_version == ssl.TLSVersion.TLSv1_1 else "TLSv1.3"


@pytest.fixture
def gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    with mock_aws():
        logs = boto3.client("logs", region_name=REGION)
        logs.create_log_group(logGroupName=GROUP)
        logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
        gw = ModelGateway(logs)
        monkeypatch.setattr(probe_http, "send", gw.send)
        monkeypatch.setattr(probe_http, "handshake", gw.handshake)
        creds = tmp_path / "credentials"
        creds.write_text("[p-caller]\naws_access_key_id = AKIACALLER\naws_secret_access_key = secret-c\n")
        yield gw, logs, creds


def run_security(tmp_path: Path, gw: Any, logs: Any, creds: Path) -> Any:
    from dataclasses import replace

    target = replace(
        synthetic_target(),
        credentials_file=str(creds),
        caller_profile="p-caller",
        role_arns=dict(ROLE_ARNS),
    )
    write_run(tmp_path / "run", make_records(writes=1, reads=0), target=target)
    ctx = CheckContext(
        run_dir=tmp_path / "run",
        run=read_run(tmp_path / "run"),
        target=target,
        description=load_description(),
        clients=lambda s: logs,
        budget_s=3.0,
    )
    return security.run(ctx)


def test_aws_like_answers_pass(tmp_path: Path, gateway: Any) -> None:
    res = run_security(tmp_path, *gateway)
    assert res.status == "pass", res.evidence
    assert res.figures["ok"] == res.figures["probes"] == 12


@pytest.mark.parametrize(
    ("switch", "probe"),
    [
        ("allow_denied", "denied"),
        ("accept_unsigned", "unsigned"),
        ("tls11", "tls_1_1"),
        ("echo_any_origin", "cors_disallowed"),
        ("no_size_limit", "oversized"),
    ],
)
def test_each_hole_fails_naming_the_probe(tmp_path: Path, gateway: Any, switch: str, probe: str) -> None:
    gw, logs, creds = gateway
    setattr(gw, switch, True)
    res = run_security(tmp_path, gw, logs, creds)
    assert res.status == "fail"
    assert [e["probe"] for e in res.evidence if e.get("verdict") == "fail"] == [probe]


def test_403_logged_without_reason_fails(tmp_path: Path, gateway: Any) -> None:
    gw, logs, creds = gateway
    gw.blank_authorizer_error = True
    res = run_security(tmp_path, gw, logs, creds)
    assert res.status == "fail" and res.figures["failed"] == 0 and res.figures["access_log_problems"] == 6
    assert {e["probe"] for e in res.evidence if e.get("kind") == "access_log"} == {
        "unsigned",
        "tampered",
        "expired",
        "wrong_region",
        "wrong_service",
        "denied",
    }


def test_the_probe_request_follows_the_description() -> None:
    """The control read: the table function's GET route, the hash key as a path variable or a query."""
    assert security.probe_request(load_description()) == ("/events", "date=1999-01-01")
    notes = load_description(Path(__file__).resolve().parents[2] / "examples/notes/terraform/stack.auto.tfvars.json")
    assert security.probe_request(notes) == ("/notes/1999-01-01", "")
    no_get = replace(notes, routes={"POST /notes": "notes"})
    with pytest.raises(ConfigError, match="serves no GET route"):
        security.probe_request(no_get)
