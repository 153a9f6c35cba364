"""reference_stack.testing as users import it: every public name from one place, and the pytest
plugin that gives the two fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import reference_stack.testing as testing

ROOT = Path(__file__).resolve().parents[2]

PUBLIC = {
    "Api",
    "Operation",
    "Parameter",
    "RouteRequest",
    "api_schema",
    "load_api",
    "module_table",
    "route_requests",
    "stack_description",
    "EVENT_FIELDS",
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
}


def test_every_public_name_is_importable_from_reference_stack_testing():
    assert set(testing.__all__) == PUBLIC
    assert all(hasattr(testing, name) for name in PUBLIC)


USER_TEST = """
from reference_stack.testing import LambdaContext, EventLogTable


def test_fixtures_come_from_the_plugin(eventlog_table, lambda_context):
    assert isinstance(eventlog_table, EventLogTable) and eventlog_table.items() == []
    assert isinstance(lambda_context, LambdaContext)
"""


def test_the_pytest_plugin_gives_both_fixtures(tmp_path):
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["reference_stack.testing"]\n')
    (tmp_path / "test_user.py").write_text(USER_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


INI_TEST = """
from reference_stack.testing import Api


def test_the_ini_options_name_the_stack(eventlog_table, stack_description, api_schema):
    assert stack_description.table.name == "Notes" and eventlog_table.name == "Notes"
    assert isinstance(api_schema, Api) and set(api_schema.routes) == {"POST /notes", "GET /notes/{day}"}
"""


def test_the_entry_point_plugin_reads_the_ini_options(tmp_path):
    """No conftest.py: the plugin comes from the pytest11 entry point, the stack from pytest.ini."""
    example = ROOT / "examples" / "notes"
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\nloadcheck_description = {example / 'terraform' / 'stack.auto.tfvars.json'}\n"
        f"loadcheck_openapi = {example / 'openapi.yaml'}\n"
    )
    (tmp_path / "test_user.py").write_text(INI_TEST)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout
