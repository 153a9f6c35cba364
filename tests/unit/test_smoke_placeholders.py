"""`loadcheck smoke` on AWS names the override when the description still holds placeholders."""

from __future__ import annotations

import dataclasses

import pytest

from loadcheck.bench.synthetic_checks import synthetic_target
from loadcheck.commands.smoke import Smoke
from loadcheck.core import description


def test_an_unfilled_override_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tracked description as a user without an override has it: .test placeholders.
    monkeypatch.setattr(description, "OVERRIDE_NAME", "absent.auto.tfvars.json")
    target = dataclasses.replace(synthetic_target(), kind="aws", connect_address=None)
    step = Smoke(target).placeholder()
    assert step is not None and step.name == "config" and not step.ok
    assert "domain_name" in step.detail and "placeholder" in step.detail
    assert step.fix is not None and "absent.auto.tfvars.json" in step.fix


def test_the_emulation_reached_through_resolve_is_not_a_placeholder_problem() -> None:
    target = dataclasses.replace(synthetic_target(), kind="aws", connect_address="127.0.0.1")
    assert Smoke(target).placeholder() is None
    assert Smoke(dataclasses.replace(synthetic_target(), kind="local")).placeholder() is None
