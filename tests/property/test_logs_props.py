"""Filter patterns and Logs Insights against plain-Python models of what they mean."""

from __future__ import annotations

import json
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from reference_stack.local.aws.logs.insights_parse import parse_query
from reference_stack.local.aws.logs.insights_run import Event, run
from reference_stack.local.aws.logs.patterns import parse

numbers = st.integers(min_value=-1000, max_value=1000)
words = st.text(alphabet="abcXYZ019_", min_size=1, max_size=6)
docs = st.fixed_dictionaries(
    {},
    optional={
        "n": numbers,
        "s": words,
        "ns": numbers.map(str),  # a number in a string, as access logs carry statuses
        "nested": st.fixed_dictionaries({"v": numbers}),
        "list": st.lists(numbers, max_size=3),
        "null": st.none(),
    },
)
OPS = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
SELECTORS = {"$.n": ("n",), "$.ns": ("ns",), "$.nested.v": ("nested", "v"), "$.list[1]": ("list", 1)}


def value_at(doc: dict, path: tuple) -> object:
    cur: object = doc
    for step in path:
        if isinstance(step, int):
            if not isinstance(cur, list) or step >= len(cur):
                return None
        elif not isinstance(cur, dict) or step not in cur:
            return None
        cur = cur[step]  # type: ignore[index]
    return cur


@given(doc=docs, selector=st.sampled_from(sorted(SELECTORS)), op=st.sampled_from(sorted(OPS)), n=numbers)
def test_numeric_comparisons_agree_with_python(doc, selector, op, n):
    actual = value_at(doc, SELECTORS[selector])
    expected = actual is not None and OPS[op](int(actual), n)
    assert parse(f"{{ {selector} {op} {n} }}")(json.dumps(doc)) is expected


@given(doc=docs, a=numbers, b=numbers, c=words)
def test_and_or_parentheses_agree_with_python(doc, a, b, c):
    n, s = doc.get("n"), doc.get("s")
    left = n is not None and n > a
    right = n is not None and n < b
    third = s == c
    message = json.dumps(doc)
    assert parse(f"{{ $.n > {a} && $.n < {b} || $.s = {c} }}")(message) is ((left and right) or third)
    assert parse(f"{{ $.n > {a} && ($.n < {b} || $.s = {c}) }}")(message) is (left and (right or third))
    assert parse("{ $.null IS NULL }")(message) is ("null" in doc)
    assert parse("{ $.s NOT EXISTS }")(message) is ("s" not in doc)


@given(tokens=st.lists(words, min_size=1, max_size=6), k=st.integers(min_value=1, max_value=4), needle=words)
def test_space_delimited_and_terms(tokens, k, needle):
    message = " ".join(tokens)
    fields = ", ".join(f"f{i}" for i in range(k))
    assert parse(f"[{fields}]")(message) is (len(tokens) == k)
    assert parse(f"[{fields}, ...]")(message) is (len(tokens) >= k)
    numeric = tokens[-1].isdigit() and needle.isdigit()  # a number literal compares as a number: 00 = 0
    assert parse(f"[..., last = {needle}]")(message) is (
        int(tokens[-1]) == int(needle) if numeric else tokens[-1] == needle
    )
    assert parse(needle)(message) is (needle in message)
    assert parse(f"-{needle}")(message) is (needle not in message)
    assert parse(f'?{needle} ?"{tokens[0]}"')(message) is True


@given(statuses=st.lists(st.sampled_from(["200", "201", "404", "429", "500", "503"]), max_size=30), floor=numbers)
def test_insights_counts_agree_with_python(statuses, floor):
    events = [
        Event("/g", "s", 1_700_000_000_000 + i, 0, json.dumps({"status": s}), f"p{i}") for i, s in enumerate(statuses)
    ]
    out = run(parse_query("stats count() by status"), events, account_id="1")
    got = {row[0]["value"]: int(row[1]["value"]) for row in out.rows}
    assert got == dict(Counter(statuses))
    kept = run(parse_query(f"filter status >= {floor} | stats count() as n"), events, account_id="1")
    assert kept.rows == [[{"field": "n", "value": str(sum(1 for s in statuses if int(s) >= floor))}]]
