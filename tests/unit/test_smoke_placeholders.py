"""`loadcheck smoke` on AWS names the override when the description still holds placeholders."""

from __future__ import annotations

import dataclasses

import pytest

from loadcheck.bench.synthetic_checks import synthetic_target
from loadcheck.commands.smoke import Smoke
from loadcheck.core import description


def test_an_unfilled_override_is_named_before_anything_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tracked description as a user without an override has it: .test placeholders.
    monkeypatch.setattr(description, "OVERRIDE_NAME", "absent.auto.tfvars.json")
    target = dataclasses.replace(synthetic_target(), kind="aws", connect_address=None)
    steps = Smoke(target).run()
    assert [s.name for s in steps] == ["config"] and not steps[0].ok
    assert "domain_name" in steps[0].detail and "placeholder" in steps[0].detail
    assert steps[0].fix is not None and "absent.auto.tfvars.json" in steps[0].fix


def test_the_emulation_reached_through_resolve_is_not_a_placeholder_problem() -> None:
    target = dataclasses.replace(synthetic_target(), kind="aws", connect_address="127.0.0.1")
    assert Smoke(target).placeholder() is None
    assert Smoke(dataclasses.replace(synthetic_target(), kind="local")).placeholder() is None
