"""Test your own Lambda handlers the way API Gateway and DynamoDB will treat them.

Hypothesis strategies for HTTP API payload-2.0 events and EventLog items, and pytest fixtures
for a mocked EventLog table and a Lambda context. Use it from your test suite::

    # conftest.py
    pytest_plugins = ["reference_stack.testing"]

    # test_my_handler.py
    from hypothesis import given
    from reference_stack.testing import check_v2_response, event_items, http_api_v2_events

    @given(event=http_api_v2_events(method="POST", path="/events", body=event_items()))
    def test_never_500(event, lambda_context):
        ...

    def test_roundtrip(eventlog_table, lambda_context):
        # inside moto's mock_aws(): TABLE_NAME, AWS_REGION set; AWS_ENDPOINT_URL removed
        response = my_handler(event, lambda_context)
        assert eventlog_table.items() == [...]

Hypothesis refuses function-scoped fixtures in ``@given`` tests (they would not be reset
between examples); share one table per module and empty it per example instead::

    @pytest.fixture(scope="module")
    def table():
        with mocked_eventlog_table() as t:
            yield t

    @given(item=event_items())
    def test_post_then_get(table, item):
        table.reset()
        ...

For your own API, every route's requests come from its openapi.yaml (``pip install
'loadcheck[testing]'``)::

    from reference_stack.testing import load_api, route_requests

    API = load_api("openapi.yaml")

    @given(req=route_requests(API, valid=False))  # exactly one thing wrong, named in req.field
    def test_refused(module_table, req):
        ...

The plugin is also a pytest entry point (``pytest11``), loaded wherever loadcheck is installed;
the ini options ``loadcheck_description`` and ``loadcheck_openapi`` point its fixtures at your
stack (docs/testing-handlers.md).

The names live in four modules, all importable from here:

- :mod:`reference_stack.testing.events`: payload-2.0 events (``http_api_v2_event``,
  ``http_api_v2_events``, ``body_is_text``; where they depart from AWS is written there) and
  ``check_v2_response``;
- :mod:`reference_stack.testing.items`: EventLog items (``event_items``) and invalid request
  bodies (``invalid_event_bodies``, ``InvalidBody``);
- :mod:`reference_stack.testing.schema`: requests for every route of an openapi.yaml
  (``load_api``, ``route_requests``, ``Api``, ``Operation``, ``Parameter``, ``RouteRequest``);
- :mod:`reference_stack.testing.fixtures`: the mocked table (``mocked_eventlog_table``,
  ``create_eventlog_table``, ``EventLogTable``), ``LambdaContext`` and the pytest fixtures
  ``eventlog_table``, ``module_table``, ``lambda_context``, ``stack_description`` and
  ``api_schema``.
"""

from __future__ import annotations

from reference_stack.testing.events import (
    MAX_BODY_BYTES,
    METHODS,
    TEXT_MEDIA_TYPES,
    ParsedResponse,
    body_is_text,
    check_v2_response,
    http_api_v2_event,
    http_api_v2_events,
)
from reference_stack.testing.fixtures import (
    EventLogTable,
    LambdaContext,
    api_schema,
    create_eventlog_table,
    eventlog_table,
    lambda_context,
    mocked_eventlog_table,
    module_table,
    stack_description,
)
from reference_stack.testing.fixtures import (
    pytest_addoption as pytest_addoption,  # the plugin hook: the ini options
)
from reference_stack.testing.items import (
    EVENT_FIELDS,
    MAX_STRING_LENGTH,
    InvalidBody,
    event_items,
    invalid_event_bodies,
)
from reference_stack.testing.schema import Api, Operation, Parameter, RouteRequest, load_api, route_requests

__all__ = [
    "EVENT_FIELDS",
    "Api",
    "Operation",
    "Parameter",
    "RouteRequest",
    "api_schema",
    "load_api",
    "module_table",
    "route_requests",
    "stack_description",
    "MAX_BODY_BYTES",
    "MAX_STRING_LENGTH",
    "METHODS",
    "TEXT_MEDIA_TYPES",
    "EventLogTable",
    "InvalidBody",
    "LambdaContext",
    "ParsedResponse",
    "body_is_text",
    "check_v2_response",
    "create_eventlog_table",
    "event_items",
    "eventlog_table",
    "http_api_v2_event",
    "http_api_v2_events",
    "invalid_event_bodies",
    "lambda_context",
    "mocked_eventlog_table",
]
