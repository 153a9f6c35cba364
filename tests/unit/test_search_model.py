"""Differential properties: the search service's matching agrees with a plain-Python model of
OpenSearch's semantics (docs/aws-behaviour.md §9.5) on random small corpora."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reference_stack.local.search.engine import Engine
from reference_stack.local.search.searching import SearchRequest

WORDS = ["new", "newark", "york", "yorker", "ne", "n", "apple", "app", "pie", "pier"]
MAPPING = {"properties": {"term": {"type": "search_as_you_type"}, "category": {"type": "keyword"}}}
SAYT = ["term", "term._2gram", "term._3gram"]

corpora = st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join), min_size=1, max_size=12)
queries = st.lists(st.sampled_from(WORDS + ["ap", "yo", "pi", "x"]), min_size=1, max_size=3).map(" ".join)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ids_matching(docs: list[str], query: dict[str, Any]) -> set[str]:
    engine = Engine(data_dir=None)
    index = engine.create("t", settings={}, mappings=MAPPING)
    for i, text in enumerate(docs):
        index.write(str(i), {"term": text})
    index.refresh()
    res = SearchRequest(index, {"query": query, "size": 100}, {}).execute()
    assert res["hits"]["total"]["value"] == len(res["hits"]["hits"])
    return {h["_id"] for h in res["hits"]["hits"]}


def model_bool_prefix(docs: list[str], text: str, operator: str) -> set[str]:
    *head, last = text.split()
    out = set()
    for i, doc in enumerate(docs):
        tokens = doc.split()
        clauses = [t in tokens for t in head] + [any(tok.startswith(last) for tok in tokens)]
        if all(clauses) if operator == "and" else any(clauses):
            out.add(str(i))
    return out


def model_phrase_prefix(docs: list[str], text: str) -> set[str]:
    *head, last = text.split()
    out = set()
    for i, doc in enumerate(docs):
        tokens = doc.split()
        for start in range(len(tokens) - len(head)):
            if tokens[start : start + len(head)] == head and tokens[start + len(head)].startswith(last):
                out.add(str(i))
    return out


@SETTINGS
@given(docs=corpora, text=queries, operator=st.sampled_from(["or", "and"]))
@example(docs=["new york", "york new", "newark"], text="new yo", operator="and")
def test_multi_match_bool_prefix_matches_like_opensearch(docs: list[str], text: str, operator: str) -> None:
    query = {"multi_match": {"query": text, "type": "bool_prefix", "fields": SAYT, "operator": operator}}
    assert ids_matching(docs, query) == model_bool_prefix(docs, text, operator)


@SETTINGS
@given(docs=corpora, text=queries)
@example(docs=["new york", "york new", "the new yorker"], text="new yo")
def test_match_phrase_prefix_matches_like_opensearch(docs: list[str], text: str) -> None:
    assert ids_matching(docs, {"match_phrase_prefix": {"term": text}}) == model_phrase_prefix(docs, text)


@SETTINGS
@given(docs=corpora, text=queries)
def test_shingle_fields_find_every_in_order_match(docs: list[str], text: str) -> None:
    """Over ``._2gram``/``._3gram`` alone, every document holding the last two typed words in
    order (the last as a prefix) is found: the ``._index_prefix`` lookup covers shingle prefixes."""
    engine = Engine(data_dir=None)
    index = engine.create("t", settings={}, mappings=MAPPING)
    for i, doc in enumerate(docs):
        index.write(str(i), {"term": doc})
    index.refresh()
    words = text.split()
    if len(words) < 2:
        return
    query = {"multi_match": {"query": text, "type": "bool_prefix", "fields": ["term._2gram", "term._3gram"]}}
    hits = SearchRequest(index, {"query": query, "size": 100}, {}).execute()["hits"]["hits"]
    in_order = model_phrase_prefix(docs, " ".join(words[-2:]))
    assert {h["_id"] for h in hits} >= in_order
