"""Property tests of the notes handler, every route drawn from openapi.yaml by loadcheck's plugin.

No strategy here is written by hand: a route added to openapi.yaml (and the description) is
drawn by the same two tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_stack.testing import LambdaContext, check_v2_response, load_api, route_requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))
import notes  # noqa: E402  (the handler, as the Lambda runtime imports it)

API = load_api(Path(__file__).resolve().parents[1] / "openapi.yaml")
EXAMPLES = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def table(module_table):
    notes.set_client(module_table.client)
    yield module_table
    notes.set_client(None)


@EXAMPLES
@given(req=route_requests(API, valid=True), again=st.booleans())
def test_valid_requests_succeed(table, req, again):
    table.reset()
    response = check_v2_response(notes.handler(req.event, LambdaContext()))
    if req.route == "POST /notes":
        assert response.status == 201, (response, req.body)
        assert response.json == req.body
        assert table.items() == [req.body]
        if again:  # the same key again: refused, the first note kept
            assert check_v2_response(notes.handler(req.event, LambdaContext())).status == 409
            assert table.items() == [req.body]
    else:
        assert response.status == 200, (response, req.path_parameters, req.query)
        assert response.json == {"notes": []}


@EXAMPLES
@given(req=route_requests(API, valid=False))
def test_invalid_requests_are_refused_naming_the_field(table, req):
    table.reset()
    response = check_v2_response(notes.handler(req.event, LambdaContext()))
    assert response.status == 400, (response, req.reason, req.body, req.query)
    if req.field is not None:
        assert repr(req.field) in response.json["message"], (response.json, req.reason)
    assert table.items() == []
