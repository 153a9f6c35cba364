"""Properties of the capacity rules (docs/aws-behaviour.md §7.2): rounding, minimums, monotonicity."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from loadcheck.core import capacity as cap

sizes = st.integers(min_value=0, max_value=400 * 1024)  # DynamoDB's item limit is 400 KB

scalars = st.one_of(
    st.text(max_size=20).map(lambda t: {"S": t}),
    st.integers(min_value=-(10**20), max_value=10**20).map(lambda n: {"N": str(n)}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: {"L": xs}),
        st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=4).map(lambda d: {"M": d}),
    ),
    max_leaves=12,
)
items = st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=6)


@given(sizes)
@example(0)
@example(1024)
@example(1025)
def test_write_units_are_whole_and_at_least_one(size: int) -> None:
    units = cap.write_units(size)
    assert units >= 1 and units == int(units)
    assert units * 1024 >= size > (units - 1) * 1024 or size == 0


@given(sizes, st.booleans())
@example(0, False)
@example(4096, True)
@example(4097, False)
def test_read_units_are_multiples_of_half_and_never_below_minimum(size: int, consistent: bool) -> None:
    units = cap.read_units(size, consistent=consistent)
    step = 1.0 if consistent else 0.5
    assert units >= step
    assert (units / step) == int(units / step)
    assert cap.read_units(size, consistent=False) * 2 == cap.read_units(size, consistent=True)


@given(sizes, sizes)
def test_units_never_decrease_with_size(a: int, b: int) -> None:
    small, large = sorted((a, b))
    assert cap.write_units(small) <= cap.write_units(large)
    assert cap.read_units(small, consistent=True) <= cap.read_units(large, consistent=True)


@given(st.lists(st.integers(min_value=0, max_value=64 * 1024), max_size=50), st.booleans())
def test_a_page_is_rounded_once_so_never_costs_more_than_items_one_by_one(page: list[int], consistent: bool) -> None:
    once = cap.page_read_units(page, consistent=consistent)
    assert once >= (0.5 if not consistent else 1)
    if page:
        assert once <= sum(cap.read_units(s, consistent=consistent) for s in page)


@given(items, st.text(min_size=1, max_size=8), values)
def test_adding_an_attribute_never_shrinks_an_item(item: dict, name: str, value: dict) -> None:
    bigger = {**item, name: value} if name not in item else item
    assert cap.item_size(bigger) >= cap.item_size(item)


@given(items)
def test_item_size_is_names_plus_values(item: dict) -> None:
    assert cap.item_size(item) == sum(len(k.encode()) + cap.value_size(v) for k, v in item.items())
    assert cap.item_size(item) > 0


@given(st.text(max_size=100), st.text(min_size=1, max_size=10))
def test_longer_strings_cost_more_bytes(text: str, more: str) -> None:
    assert cap.item_size({"a": {"S": text + more}}) > cap.item_size({"a": {"S": text}})


@given(
    st.integers(min_value=1, max_value=50),
    st.sampled_from(["full", "empty"]),
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(min_value=1, max_value=10)),
        max_size=60,
    ),
)
def test_admitted_writes_never_exceed_burst_plus_refill(wcu: int, burst_start: str, steps: list) -> None:
    """Conservation: what a table admits is bounded by its starting burst plus the rate times the time (§7.3)."""
    from reference_stack.local.aws.accounting import BURST_SECONDS, Accounting, TableSettings
    from reference_stack.local.aws.buckets import ManualClock

    clock = ManualClock(start=0.0)
    acc = Accounting(clock=clock, burst_start=burst_start)  # type: ignore[arg-type]
    acc.sync_table(TableSettings(name="T", arn="arn", on_demand=False, read_capacity=1, write_capacity=wcu))
    start = wcu * BURST_SECONDS if burst_start == "full" else 0.0
    admitted = elapsed = 0.0
    for advance, cost in steps:
        clock.advance(advance)
        elapsed += advance
        level = acc.snapshot()["T"]["write_level"]
        decision = acc.admit_writes("T", [(None, float(cost))])[0]
        if abs(level - cost) > 0.01:  # the snapshot is rounded to 3 decimals: judge only clear cases
            assert decision.admitted == (level >= cost)
        admitted += cost if decision.admitted else 0
        assert admitted <= start + wcu * elapsed + 1e-6
        assert acc.snapshot()["T"]["write_level"] <= wcu * BURST_SECONDS
