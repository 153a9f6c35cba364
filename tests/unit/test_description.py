from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from loadcheck.core.description import DEFAULT_DESCRIPTION, load_description, parse_description
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
    with pytest.raises(DescriptionError, match="file not found"):
        load_description(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"region": ')
    with pytest.raises(DescriptionError, match="not valid JSON.*line 1"):
        load_description(bad)
