"""Config and fault validation: bad input is refused with a message naming the value and the fix."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from loadcheck.core.errors import ConfigError
from reference_stack.local.aws.config import parse_config
from reference_stack.local.aws.faults import Faults, validate
from reference_stack.local.common.contract import read_config


def test_defaults_follow_the_contract() -> None:
    config = parse_config({"service": "aws"})
    assert (config.host, config.burst_start, config.metrics_interval_s, config.governor, config.clock) == (
        "127.0.0.1",
        "full",
        60.0,
        True,
        "system",
    )


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        ("host", "0.0.0.0", "loopback only"),  # noqa: S104 (the value being refused)
        ("burst_start", "half", '"full"'),
        ("metrics_interval_s", 0, "between 0.05 and 3600"),
        ("clock", "fast", "manual"),
        ("governor", "yes", "true or false"),
        ("port", 70000, "between 0 and 65535"),
        ("log_level", "LOUD", "WARNING"),
    ],
)
def test_bad_values_name_the_key_value_and_fix(key: str, value: object, fix: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({key: value}, "aws.json")
    assert f"{key}={value!r}" in str(err.value) and fix in str(err.value)


def test_unknown_keys_are_kept_for_a_warning() -> None:
    assert parse_config({"future_key": 1}).unknown_keys == ("future_key",)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_config(tmp_path / "nope.json", service="aws")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not JSON"):
        read_config(tmp_path / "bad.json", service="aws")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("drop-writes", 1.5, r"drop-writes=1.5: 1.5 is outside 0..1 \(fraction"),
        ("drop-writes", "lots", "'lots' is not a fraction"),
        ("phantom-writes", 2.5, "2.5 is not a whole number"),
        ("phantom-writes", -1, "-1 is outside 0..1000000"),
        ("ddb-latency", 100_000, r"100000 is outside 0..60000 \(milliseconds\)"),
        ("ddb-latency", True, "true is not a duration in milliseconds"),
        ("ddb-latency", "abc", "e.g. ddb-latency=200ms"),
        ("drop-everything", 1, "unknown fault 'drop-everything'"),
        ("lambda-error", 0.5, "unknown fault 'lambda-error' on the aws service"),
    ],
)
def test_fault_values_are_validated(name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(name, value)


def test_bad_fault_in_a_batch_changes_nothing() -> None:
    faults = Faults(initial={"ddb-latency": 5})
    with pytest.raises(ConfigError):
        faults.update({"drop-writes": 0.5, "phantom-writes": "x"})
    assert faults.active() == {"ddb-latency": 5.0}


def test_phantom_writes_count_down_and_clear() -> None:
    faults = Faults(initial={"phantom-writes": 2})
    assert [faults.take_phantom(), faults.take_phantom(), faults.take_phantom()] == [1, 2, None]
    assert faults.active() == {}


def test_drop_rate_uses_the_injected_random() -> None:
    faults = Faults(initial={"drop-writes": 0.5}, rng=random.Random(1))
    drops = sum(faults.should_drop() for _ in range(1000))
    assert 400 < drops < 600
    assert not Faults().should_drop()
