"""Role sessions on the running local stack, over HTTP: the aws endpoint's STS issues them
(through botocore's own assume-role profiles in the generated credentials file, as the aws CLI
uses them), the gateway and the search service accept them with their role's policies, and an
expired one is refused as AWS refuses it (docs/aws-behaviour.md §12.2)."""

from __future__ import annotations

import json
import ssl
import time
from typing import Any

import boto3
import botocore.exceptions
import pytest
import requests
from requests_aws4auth import AWS4Auth

from loadcheck.bench.client import PinnedHTTPSConnection
from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.core.target import Target

pytestmark = pytest.mark.integration


def _get(target: Target, creds: Credentials) -> tuple[int, dict[str, str], Any]:
    host = f"{target.domain}:{target.connect_port}"
    query = "date=1999-01-02"
    signed = Signer("execute-api", target.region).sign(creds, "GET", host, "/events", query)
    conn = PinnedHTTPSConnection(
        target.connect_port, ssl.create_default_context(cafile=target.ca_bundle), 35, domain=target.domain
    )
    try:
        conn.request("GET", f"/events?{query}", headers=signed)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_the_credentials_file_assumes_the_roles_through_the_stacks_sts(
    local_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", local_stack["credentials_file"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", local_stack["aws_endpoint_url"])
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    session = boto3.Session(profile_name=local_stack["profiles"]["requester"], region_name=local_stack["region"])
    who = session.client("sts").get_caller_identity()
    assert ":assumed-role/loadcheck-requester/" in who["Arn"]
    frozen = session.get_credentials().get_frozen_credentials()
    status, _, _ = _get(
        Target.from_stack_json(local_stack), Credentials(frozen.access_key, frozen.secret_key, frozen.token)
    )
    assert status == 200


def test_the_gateway_and_search_refuse_an_expired_session(local_target: Target) -> None:
    # botocore checks DurationSeconds >= 900 itself: off, to ask moto for a 2-second session.
    sts = local_target.client("sts", parameter_validation=False)
    fresh = sts.assume_role(RoleArn=local_target.role_arns["requester"], RoleSessionName="short", DurationSeconds=2)
    admin = sts.assume_role(RoleArn=local_target.role_arns["search-admin"], RoleSessionName="short", DurationSeconds=2)
    c, a = fresh["Credentials"], admin["Credentials"]
    creds = Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    assert _get(local_target, creds)[0] == 200  # usable the moment STS answers
    auth = AWS4Auth(a["AccessKeyId"], a["SecretAccessKey"], local_target.region, "es", session_token=a["SessionToken"])
    url = f"{local_target.search_endpoint}/{local_target.search_index}/_count"
    assert requests.get(url, auth=auth, timeout=10).status_code == 200

    deadline = time.monotonic() + 30
    while True:  # poll until the session has expired (moto accepts a 2-second session; AWS: 900 s at least)
        status, headers, body = _get(local_target, creds)
        if status != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert status == 403, body
    assert headers["x-amzn-errortype"] == "ExpiredTokenException"
    assert body == {"message": "The security token included in the request is expired"}
    answer = requests.get(url, auth=auth, timeout=10)
    assert answer.status_code == 403
    assert answer.json() == {"message": "The security token included in the request is expired"}


def test_the_denied_role_is_refused(local_target: Target) -> None:
    status, headers, _ = _get(local_target, local_target.credentials("denied"))
    assert status == 403 and headers["x-amzn-errortype"] == "AccessDeniedException"


def test_sts_refuses_a_role_to_a_caller_its_policies_do_not_allow(local_target: Target) -> None:
    # The requester role trusts the account: the caller's own policies must allow
    # sts:AssumeRole too (docs/aws-behaviour.md §12.1). The denied role's session has no policy.
    sts = local_target.client("sts")
    denied = sts.assume_role(RoleArn=local_target.role_arns["denied"], RoleSessionName="no-rights")["Credentials"]
    as_denied = boto3.client(
        "sts",
        region_name=local_target.region,
        endpoint_url=local_target.aws_endpoint_url,
        aws_access_key_id=denied["AccessKeyId"],
        aws_secret_access_key=denied["SecretAccessKey"],
        aws_session_token=denied["SessionToken"],
    )
    caller = as_denied.get_caller_identity()["Arn"]
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        as_denied.assume_role(RoleArn=local_target.role_arns["requester"], RoleSessionName="escalate")
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDenied"
    assert error["Error"]["Message"] == (
        f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: "
        f"{local_target.role_arns['requester']}"
    )
    # The caller with the right (the stack's admin) still gets its session.
    assert sts.assume_role(RoleArn=local_target.role_arns["requester"], RoleSessionName="ok")["Credentials"]
