"""Schema fuzzing through the signed gateway (issue 15 item 3): schemathesis against openapi.yaml.

Every operation (events and search routes) gets ``$LOADCHECK_FUZZ_EXAMPLES`` generated requests
(default 25; ``loadcheck bench``-style long runs set more), signed and sent to the local stack's
gateway: no 5xx on any client input, every status and content type documented, every body
conforming to its schema. The stateful test follows openapi.yaml's links (POST /events, then GET
/events?date= of what was written). A seeded handler that 500s on one valid body shape, behind a
real gateway process, proves the net catches it.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings

from loadcheck.core.sigv4 import Credentials
from loadcheck.core.target import Target
from reference_stack.local.common.tls import issue_in
from reference_stack.local.gateway import harness
from tests.integration.schema_fuzz import CHECKS, Gateway, StatefulAPI, call_and_validate, examples, schema

pytestmark = pytest.mark.integration

SETTINGS = settings(
    max_examples=examples(),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
    derandomize=True,
)


@schema.parametrize()
@SETTINGS
def test_every_operation_answers_generated_requests_as_documented(case: Any, local_target: Target) -> None:
    call_and_validate(case, Gateway.of(local_target))


def test_linked_operations_hold_together(local_target: Target) -> None:
    StatefulAPI.gateway = Gateway.of(local_target)
    StatefulAPI.run(settings=settings(SETTINGS, max_examples=max(5, examples() // 5), stateful_step_count=4))


def test_an_unrouted_method_gets_an_aws_shaped_answer(local_target: Target) -> None:
    gw = Gateway.of(local_target)
    resp = requests.request(
        "TRACE",
        f"https://127.0.0.1:{gw.port}/events",
        headers={"Host": f"{gw.domain}:{gw.port}"},
        verify=gw.ca_bundle,
        timeout=10,
    )
    # No route names TRACE: the API's 404 (docs/aws-behaviour.md §6), as for an unknown path.
    assert resp.status_code == 404 and resp.json() == {"message": "Not Found"}
    assert resp.headers.get("content-type", "").startswith("application/json")


# -- the seeded bug ------------------------------------------------------------------------------
def _buggy_create_event(event: dict[str, Any]) -> harness.InvokeAnswer:
    """POST /events that stores nothing: 400 on a body that is not four strings, 201 echoing it,
    and the seeded bug: a crash on a one-character userId (valid: Label has minLength 1)."""
    try:
        body = json.loads(event.get("body") or "null")
    except ValueError:
        body = None
    keys = {"date", "time", "userId", "eventType"}
    if not isinstance(body, dict) or set(body) != keys or not all(isinstance(v, str) for v in body.values()):
        return _answer(400, {"message": "body must be {date, time, userId, eventType}"})
    if len(body["userId"]) == 1:
        raise IndexError("seeded bug: a one-character userId")  # the function fails: the gateway answers 500
    return _answer(201, body)


def _answer(status: int, body: Any) -> harness.InvokeAnswer:
    return harness.InvokeAnswer(
        {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
    )


@pytest.fixture(scope="module")
def buggy_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("seeded")
    domain, region, api = "events.loadcheck.test", "us-east-1", "a1b2c3d4e5"
    tls = issue_in(tmp / "tls", [domain, "127.0.0.1"])
    ids = harness.make_identities(tmp / "identities.json", region=region, api_id=api, routes=["POST /events"])
    with harness.InvokeServer({"buggy": _buggy_create_event}) as invoke:
        config = harness.gateway_config(
            directory=tmp,
            tls=tls,
            identities_file=tmp / "identities.json",
            lambda_endpoint=invoke.endpoint,
            routes={"POST /events": "buggy"},
            aws_endpoint_url=None,
            api_id=api,
            domain=domain,
            region=region,
            throttle=None,
        )
        proc = harness.start_gateway(config, tmp / "gateway.json")
        try:
            r = ids["requester"]
            yield Gateway(proc.port, domain, region, tls.ca_file, Credentials(r.access_key_id, r.secret_access_key))
        finally:
            proc.stop()


def test_schemathesis_finds_a_handler_that_500s_on_one_valid_body(buggy_gateway: Gateway) -> None:
    operation = schema["/events"]["POST"]

    @given(case=operation.as_strategy())
    @SETTINGS
    def fuzz(case: Any) -> None:
        call_and_validate(case, buggy_gateway, checks=CHECKS[:1])  # not_a_server_error

    with pytest.raises(BaseException) as found:  # noqa: PT011 - schemathesis raises a group of its failures
        fuzz()
    report = "".join(traceback.format_exception(found.value))
    assert "Server error" in report and "[500]" in report, report[-2000:]
    assert '"userId": "0"' in report, report[-2000:]  # shrunk to the seeded shape: a one-character userId
