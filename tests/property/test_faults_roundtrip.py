"""parse(format(value)) gives every fault's value back, and validation is idempotent."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from loadcheck.core import faults


def _values(spec: faults.FaultSpec) -> st.SearchStrategy[Any]:
    if spec.kind == faults.FIELD:
        return st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
    if spec.kind == faults.SWITCH:
        return st.just(1)
    low, high = float(spec.low or 0), float(spec.high or 0)
    if spec.kind in (faults.COUNT, faults.STATUS):
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False)


@st.composite
def fault_values(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(faults.FAULTS)))
    return name, draw(_values(faults.FAULTS[name]))


@given(fault_values())
@example(("ddb-latency", 200.0))
@example(("ddb-latency", 0.1))
@example(("log-delay", 5e-324))
@example(("drop-writes", 1e-7))
@example(("throttle-status", 599))
@example(("blank-access-log-field", "routeKey"))
def test_parse_of_format_round_trips(case: tuple[str, Any]) -> None:
    name, value = case
    canonical = faults.validate(name, value)
    assert faults.parse_fault(faults.describe_value(name, canonical)) == (name, canonical)
    assert faults.validate(name, canonical) == canonical
    if canonical is not None:
        assert canonical == value
