"""Hypothesis strategies for EventLog items and for request bodies the events handler must refuse."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from reference_stack.testing.events import MAX_BODY_BYTES

# The EventLog item contract; reference_stack/openapi.yaml and handlers/events.py say the same
# (tests/unit/test_openapi.py holds the three together).
EVENT_FIELDS = ("date", "time", "userId", "eventType")
MAX_STRING_LENGTH = 256

# ------------------------------------------------------------------------------------------
# EventLog items and bodies

_ITEM_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=MAX_STRING_LENGTH)


def _times() -> SearchStrategy[str]:
    return st.builds(
        "{:02d}:{:02d}:{:02d}.{:03d}".format,
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.integers(0, 999),
    )


def event_items(*, dates: SearchStrategy[_dt.date] | None = None) -> SearchStrategy[dict[str, str]]:
    """Valid EventLog items: ``date`` YYYY-MM-DD, ``time`` HH:MM:SS.mmm, ``userId``, ``eventType``."""
    date_st = dates if dates is not None else st.dates(_dt.date(1970, 1, 1), _dt.date(2099, 12, 31))
    return st.fixed_dictionaries(
        {
            "date": date_st.map(_dt.date.isoformat),
            "time": _times(),
            "userId": _ITEM_TEXT,
            "eventType": _ITEM_TEXT,
        }
    )


@dataclass(frozen=True)
class InvalidBody:
    """A POST /events body the handler must refuse: ``status`` 400 (or 413), naming ``field``."""

    body: bytes
    field: str | None  # the field the message must name, or None when the body as a whole is bad
    reason: str
    status: int = 400


def _dump(obj: Any) -> bytes:
    return json.dumps(obj).encode("utf-8")


def _bad_dates() -> SearchStrategy[str]:
    impossible = st.sampled_from(["2023-02-29", "2024-02-30", "2023-13-01", "2023-00-10", "2023-04-31", "0000-01-01"])
    shaped_wrong = st.sampled_from(
        ["2023-1-01", "20230101", "2023/01/01", "01-02-2023", " 2023-01-01", "2023-01-01T00:00"]
    )
    return impossible | shaped_wrong | st.text(max_size=12).filter(lambda s: not _looks_like_date(s))


def _looks_like_date(s: str) -> bool:
    try:
        return len(s) == 10 and s[4] == "-" and s[7] == "-" and s.isascii() and _dt.date.fromisoformat(s) is not None
    except ValueError:
        return False


def _bad_times() -> SearchStrategy[str]:
    fixed = st.sampled_from(
        [
            "24:00:00.000",
            "12:60:00.000",
            "12:00:60.000",
            "12:00:00",
            "12:00:00.1234",
            "12:00:00,123",
            "1:00:00.000",
            "12:00:00.12",
        ]
    )
    return fixed | st.text(max_size=12).filter(
        lambda s: not (len(s) == 12 and s[2] == ":" and s[5] == ":" and s[8] == ".")
    )


def _non_strings() -> SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


@st.composite
def invalid_event_bodies(draw: st.DrawFn) -> InvalidBody:
    """POST /events bodies that break exactly one rule, with the field the error must name."""
    item = draw(event_items())
    kind = draw(
        st.sampled_from(
            [
                "missing",
                "unknown",
                "type",
                "date",
                "time",
                "empty",
                "long",
                "not-object",
                "not-json",
                "duplicate",
                "too-large",
            ]
        )
    )
    name = draw(st.sampled_from(EVENT_FIELDS))
    if kind == "missing":
        del item[name]
        return InvalidBody(_dump(item), name, f"{name} is missing")
    if kind == "unknown":
        extra = draw(st.text(min_size=1, max_size=10).filter(lambda s: s not in EVENT_FIELDS))
        return InvalidBody(_dump({**item, extra: "x"}), extra, f"unknown field {extra!r}")
    if kind == "type":
        return InvalidBody(_dump({**item, name: draw(_non_strings())}), name, f"{name} is not a string")
    if kind == "date":
        return InvalidBody(_dump({**item, "date": draw(_bad_dates())}), "date", "date is not YYYY-MM-DD")
    if kind == "time":
        return InvalidBody(_dump({**item, "time": draw(_bad_times())}), "time", "time is not HH:MM:SS.mmm")
    text_field = draw(st.sampled_from(["userId", "eventType"]))
    if kind == "empty":
        return InvalidBody(_dump({**item, text_field: ""}), text_field, f"{text_field} is empty")
    if kind == "long":
        long_value = draw(st.text(alphabet="abc", min_size=MAX_STRING_LENGTH + 1, max_size=MAX_STRING_LENGTH + 50))
        return InvalidBody(_dump({**item, text_field: long_value}), text_field, f"{text_field} is too long")
    if kind == "not-object":
        value: Any = draw(st.one_of(st.lists(st.integers(), max_size=3), st.text(max_size=5), st.integers(), st.none()))
        return InvalidBody(_dump(value), None, "body is not a JSON object")
    if kind == "not-json":
        raw = draw(
            st.sampled_from([b"{", b"not json", b"{'date': '2024-01-01'}", b"\xff\xfe", b"", b'{"date": NaN}', b"[1,]"])
        )
        return InvalidBody(raw, None, "body is not JSON")
    if kind == "duplicate":
        text = _dump(item).decode()
        return InvalidBody(
            text[:-1].encode() + f', "{name}": {json.dumps(item[name])}}}'.encode(), name, f"{name} appears twice"
        )
    padding = " " * (MAX_BODY_BYTES + 1 - len(_dump(item)))
    return InvalidBody(_dump(item) + padding.encode(), None, "body over 16 KB", 413)
