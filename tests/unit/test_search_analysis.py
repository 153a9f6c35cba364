"""Analysis as OpenSearch does it: built-in analyzers, custom ones from settings, shingles."""

from __future__ import annotations

import pytest

from reference_stack.local.search.analysis import BUILTIN_ANALYZERS, build_analyzers, shingles
from reference_stack.local.search.errors import IllegalArgument, MapperParsingError


def terms(name: str, text: str) -> list[str]:
    return BUILTIN_ANALYZERS[name].terms(text)


def test_standard_lowercases_and_keeps_inner_punctuation_words() -> None:
    assert terms("standard", "The Quick-Brown fox's e.g. 3.14 WI-FI") == [
        "the",
        "quick",
        "brown",
        "fox's",
        "e.g",
        "3.14",
        "wi",
        "fi",
    ]


def test_simple_splits_on_non_letters() -> None:
    assert terms("simple", "To be, or 2B!") == ["to", "be", "or", "b"]


def test_keyword_is_one_token_unchanged() -> None:
    assert terms("keyword", "New York") == ["New York"]


def test_positions_count_tokens() -> None:
    assert BUILTIN_ANALYZERS["standard"].analyze("a b c") == [("a", 0), ("b", 1), ("c", 2)]


def test_shingles_exact_size_and_with_filler() -> None:
    tokens = [("new", 0), ("york", 1), ("city", 2)]
    assert shingles(tokens, 2) == [("new york", 0), ("york city", 1)]
    assert shingles(tokens, 3) == [("new york city", 0)]
    assert shingles(tokens, 4) == []
    assert shingles(tokens, 3, filler=True) == [("new york city", 0), ("york city ", 1), ("city  ", 2)]


def test_custom_edge_ngram_analyzer_from_settings() -> None:
    analyzers = build_analyzers(
        {
            "filter": {"autocomplete_filter": {"type": "edge_ngram", "min_gram": 1, "max_gram": 4}},
            "analyzer": {
                "autocomplete": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["lowercase", "autocomplete_filter"],
                }
            },
        }
    )
    assert analyzers["autocomplete"].analyze("New Yorker") == [
        ("n", 0),
        ("ne", 0),
        ("new", 0),
        ("y", 1),
        ("yo", 1),
        ("yor", 1),
        ("york", 1),
    ]


def test_edge_ngram_tokenizer_with_token_chars() -> None:
    analyzers = build_analyzers(
        {
            "tokenizer": {"edge": {"type": "edge_ngram", "min_gram": 2, "max_gram": 3, "token_chars": ["letter"]}},
            "analyzer": {"a": {"tokenizer": "edge", "filter": ["lowercase"]}},
        }
    )
    assert analyzers["a"].terms("Ab-Cde") == ["ab", "cd", "cde"]


def test_stop_and_asciifolding_filters() -> None:
    analyzers = build_analyzers(
        {"analyzer": {"a": {"tokenizer": "standard", "filter": ["lowercase", "asciifolding", "stop"]}}}
    )
    assert analyzers["a"].analyze("The Café of Zürich") == [("cafe", 1), ("zurich", 3)]


def test_unknown_filter_is_named() -> None:
    with pytest.raises(IllegalArgument, match=r"porter_stem"):
        build_analyzers({"analyzer": {"a": {"tokenizer": "standard", "filter": ["porter_stem"]}}})


def test_custom_analyzer_needs_a_tokenizer() -> None:
    with pytest.raises(MapperParsingError, match=r"analyzer \[a\] must specify"):
        build_analyzers({"analyzer": {"a": {"type": "custom", "filter": ["lowercase"]}}})
