"""Faults of the lambda service: validation, all-or-nothing updates, deterministic rolls."""

from __future__ import annotations

import random

import pytest

from loadcheck.core.errors import ConfigError
from reference_stack.local.lambda_.faults import Faults


def test_set_roll_and_clear() -> None:
    faults = Faults(rng=random.Random(7))
    assert faults.update({"lambda-error": 0.5}) == {"lambda-error": 0.5}
    hits = sum(faults.roll("lambda-error") for _ in range(1000))
    assert 400 < hits < 600
    assert not faults.roll("lambda-timeout")
    assert faults.update({"lambda-error": None}) == {}
    assert not any(faults.roll("lambda-error") for _ in range(100))


def test_text_values_read_as_the_registry_reads_them() -> None:
    faults = Faults()
    assert faults.update({"lambda-error": "25%", "lambda-timeout": "0.5"}) == {
        "lambda-error": 0.25,
        "lambda-timeout": 0.5,
    }
    assert faults.update({"lambda-error": "off"}) == {"lambda-timeout": 0.5}


def test_rate_one_always_hits_and_zero_clears() -> None:
    faults = Faults(initial={"lambda-timeout": 1})
    assert all(faults.roll("lambda-timeout") for _ in range(50))
    assert faults.update({"lambda-timeout": 0}) == {}


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"lambda-errors": 1}, "lambda-errors"),
        ({"lambda-error": 1.5}, "1.5"),
        ({"lambda-error": True}, "lambda-error=true"),
        ({"lambda-error": "half"}, "'half'"),
        ({"lambda-error": -0.1}, "lambda-error=0.25"),  # the fix names a correct example
        ([("lambda-error", 1)], "list"),
    ],
)
def test_bad_updates_name_the_value_and_change_nothing(changes: object, named: str) -> None:
    faults = Faults(initial={"lambda-timeout": 0.25})
    with pytest.raises(ConfigError) as err:
        faults.update({"lambda-timeout": None, **changes} if isinstance(changes, dict) else changes)
    assert named in str(err.value) and err.value.hint
    assert faults.active() == {"lambda-timeout": 0.25}
