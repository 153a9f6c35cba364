from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from loadcheck.core.description import (
    AWS_ONLY_KEYS,
    DEFAULT_DESCRIPTION,
    OVERRIDE_NAME,
    aws_placeholders,
    handlers_dir_error,
    load_description,
    parse_description,
    placeholder_error,
)
from loadcheck.core.errors import DescriptionError

RAW = json.loads(DEFAULT_DESCRIPTION.read_text())


def test_reference_description_loads() -> None:
    d = load_description()
    assert d.table.name == "EventLog"
    assert (d.table.hash_key, d.table.range_key) == ("date", "time")
    assert (d.table.billing_mode, d.table.read_capacity, d.table.write_capacity) == ("PROVISIONED", 1, 1)
    assert set(d.routes) == {"GET /events", "POST /events", "GET /search", "POST /search"}
    assert d.functions["events"].name == "loadcheck-events"
    assert d.functions["events"].log_group == "/aws/lambda/loadcheck-events"
    assert d.route_arn("123456789012", "abc123", "GET /events") == (
        "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/GET/events"
    )


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda r: r["table"].update(billing_mode="ONDEMAND"), "table.billing_mode", "PROVISIONED or PAY_PER_REQUEST"),
        (lambda r: r["table"].update(write_capacity=0), "table.write_capacity", "greater than zero"),
        (lambda r: r["throttle"].update(rate_limit=0), "throttle.rate_limit", "greater than zero"),
        (lambda r: r["functions"]["events"].update(runtime="python3.9"), "functions.events.runtime", "python3.12"),
        (lambda r: r["functions"]["events"]["environment"].update(X=3), "functions.events.environment.X", "strings"),
        (lambda r: r["routes"].update({"FETCH /x": "events"}), "routes.FETCH /x", "route key"),
        (lambda r: r["access_log"]["format"].pop("requestId"), "access_log.format", "$context.requestId"),
        (lambda r: r.pop("region"), "region", "missing"),
        (lambda r: r.update(domain_name="api.example.com"), "hosted_zone_name", "not inside the zone"),
        (lambda r: r["routes"].update({"GET /x/{a}b": "events"}), "routes.GET /x/{a}b", "whole path variable"),
        (lambda r: r["routes"].update({"GET /{p+}/x": "events"}), "routes.GET /{p+}/x", "last segment"),
        (lambda r: r["table"].update(function="orders"), "table.function", "not in functions"),
        (lambda r: r["search"].update(function="nope"), "search.function", "not in functions"),
        (lambda r: r["table"].update(range_key_type="STRING"), "table.range_key_type", "S, N or B"),
        (lambda r: r["table"].update(range_key="date"), "table.range_key", "hash key"),
    ],
)
def test_invalid_descriptions_name_field_and_fix(mutate, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    raw = copy.deepcopy(RAW)
    mutate(raw)
    with pytest.raises(DescriptionError) as info:
        parse_description(raw, "stack.auto.tfvars.json")
    assert info.value.field == field
    assert words in str(info.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(DescriptionError, match="does not exist"):
        load_description(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"region": ')
    with pytest.raises(DescriptionError, match="is not JSON.*line 1"):
        load_description(bad)


# ---------------------------------------------------------------------------------------------
# The user's override (user.auto.tfvars.json beside the description)


def _checkout(tmp_path: Path, override: object | None) -> Path:
    """A description directory as a user has it: the tracked file, and the override if given."""
    path = tmp_path / "stack.auto.tfvars.json"
    path.write_text(json.dumps(RAW), encoding="utf-8")
    if override is not None:
        (tmp_path / OVERRIDE_NAME).write_text(json.dumps(override), encoding="utf-8")
    return path


USER_VALUES = {
    "region": "eu-west-1",
    "domain_name": "events.example.com",
    "hosted_zone_name": "example.com",
    "table": {**RAW["table"], "write_capacity": 5},
}


def test_the_override_replaces_whole_keys_for_aws(tmp_path: Path) -> None:
    desc = load_description(_checkout(tmp_path, USER_VALUES), aws=True)
    assert (desc.region, desc.domain_name, desc.hosted_zone_name) == ("eu-west-1", "events.example.com", "example.com")
    assert desc.table.write_capacity == 5
    assert desc.override_path == str(tmp_path / OVERRIDE_NAME)
    assert aws_placeholders(desc) == [] and placeholder_error(desc) is None


def test_the_local_stack_ignores_aws_only_values_of_the_override(tmp_path: Path) -> None:
    desc = load_description(_checkout(tmp_path, USER_VALUES))
    assert (desc.region, desc.domain_name, desc.hosted_zone_name) == (
        RAW["region"],
        RAW["domain_name"],
        RAW["hosted_zone_name"],
    )
    assert set(AWS_ONLY_KEYS) >= {"region", "domain_name", "hosted_zone_name"}
    assert desc.table.write_capacity == 5  # a capacity the user deploys is the capacity the local stack models


def test_the_tracked_placeholders_are_named_with_the_override_to_fill_in(tmp_path: Path) -> None:
    desc = load_description(_checkout(tmp_path, None), aws=True)
    assert aws_placeholders(desc) == ["domain_name", "hosted_zone_name"]
    error = placeholder_error(desc)
    assert error is not None and error.field == "domain_name"
    assert ".test" in error.message and str(tmp_path / OVERRIDE_NAME) in (error.hint or "")
    # Half filled in: the zone is still a placeholder, and the domain is not inside it.
    half = {"domain_name": "events.example.com"}
    with pytest.raises(DescriptionError, match="not inside the zone"):
        load_description(_checkout(tmp_path, half), aws=True)


@pytest.mark.parametrize(
    ("override", "words"),
    [({"domain": "x.example.com"}, "'domain' is not a key"), (["domain_name"], "must be a JSON object")],
)
def test_a_bad_override_names_itself_and_the_fix(tmp_path: Path, override: object, words: str) -> None:
    with pytest.raises(DescriptionError, match=words) as info:
        load_description(_checkout(tmp_path, override))
    assert OVERRIDE_NAME in str(info.value)


def test_reserved_concurrency_is_optional_and_unreserved_by_default() -> None:
    assert all(fn.reserved_concurrency is None for fn in load_description().functions.values())
    raw = copy.deepcopy(RAW)
    raw["functions"]["events"]["reserved_concurrency"] = 5
    del raw["functions"]["search"]["reserved_concurrency"]
    desc = parse_description(raw)
    assert (desc.functions["events"].reserved_concurrency, desc.functions["search"].reserved_concurrency) == (5, None)
    for bad in (0, 2.5, True, "5"):
        raw["functions"]["events"]["reserved_concurrency"] = bad
        with pytest.raises(DescriptionError) as info:
            parse_description(raw)
        assert info.value.field == "functions.events.reserved_concurrency"


def test_access_log_group_must_be_a_vended_logs_group() -> None:
    raw = copy.deepcopy(RAW)
    raw["access_log"]["log_group"] = "/aws/apigateway/loadcheck-http-api"
    with pytest.raises(DescriptionError, match="/aws/vendedlogs/") as info:
        parse_description(raw)
    assert info.value.field == "access_log.log_group"


def test_search_scopes_are_the_index_search_and_the_index() -> None:
    desc = load_description()
    domain = desc.search_domain_arn("111122223333")
    assert desc.search_function_resources("111122223333") == (f"{domain}/terms/_search",)
    assert desc.search_admin_resources("111122223333") == (f"{domain}/terms", f"{domain}/terms/*")
    assert desc.search.application_logs is False


def test_a_copied_description_names_its_own_routes_functions_and_handlers(tmp_path: Path) -> None:
    """The API is the description's: a new route with a path variable, other function keys, and
    the handlers directory relative to the description file."""
    raw = copy.deepcopy(RAW)
    raw["functions"]["orders"] = raw["functions"].pop("events")
    raw["routes"] = {"GET /orders/{day}": "orders", "POST /orders": "orders", "GET /search": "search"}
    raw["table"].update(function="orders", hash_key="day", range_key="at", range_key_type="N")
    raw["handlers_dir"] = "src"
    path = tmp_path / "stack.auto.tfvars.json"
    path.write_text(json.dumps(raw))
    d = load_description(path)
    assert d.table_routes == ("GET /orders/{day}", "POST /orders")
    assert d.handlers_dir == tmp_path / "src"
    assert d.route_arn("123456789012", "abc123", "GET /orders/{day}").endswith("/$default/GET/orders/*")
    error = handlers_dir_error(d)
    assert error is not None and error.field == "handlers_dir" and "which does not exist" in str(error)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "events.py").write_text("def handler(event, context): ...\n")
    (tmp_path / "src" / "search.py").write_text("def handler(event, context): ...\n")
    assert handlers_dir_error(d) is None
    assert handlers_dir_error(load_description()) is None  # the reference stack's own handlers
