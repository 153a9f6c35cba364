"""The index model and the query DSL translation, without a process (engine + query + searching)."""

from __future__ import annotations

from typing import Any

import pytest

from reference_stack.local.search.engine import Engine, SearchIndex
from reference_stack.local.search.errors import IllegalArgument, MapperParsingError, ParsingError, SearchApiError
from reference_stack.local.search.query import minimum_should_match
from reference_stack.local.search.searching import SearchRequest, count

MAPPING = {
    "properties": {
        "term": {"type": "search_as_you_type"},
        "popularity": {"type": "integer"},
        "category": {"type": "keyword"},
        "title": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
        "suggest": {"type": "completion"},
    }
}
TERMS = [
    ("new york", 90, "city"),
    ("new york city hotels", 40, "travel"),
    ("newark airport", 30, "travel"),
    ("the new yorker", 20, "media"),
    ("york minster", 10, "church"),
    ("apple pie", 50, "food"),
    ("apple", 80, "food"),
    ("pineapple", 5, "food"),
    ("application form", 15, "office"),
    ("big apple", 60, "city"),
]
SAYT_FIELDS = ["term", "term._2gram", "term._3gram"]


@pytest.fixture
def index() -> SearchIndex:
    engine = Engine(data_dir=None)
    idx = engine.create("terms", settings={"number_of_shards": 1, "number_of_replicas": 0}, mappings=MAPPING)
    for i, (term, pop, cat) in enumerate(TERMS):
        idx.write(
            str(i),
            {
                "term": term,
                "popularity": pop,
                "category": cat,
                "title": term.title(),
                "suggest": {"input": [term], "weight": pop},
            },
        )
    idx.refresh()
    return idx


def search(index: SearchIndex, body: dict[str, Any], params: dict[str, str] | None = None) -> dict[str, Any]:
    return SearchRequest(index, body, params or {}).execute()


def found(index: SearchIndex, query: dict[str, Any], **extra: Any) -> list[str]:
    return [h["_source"]["term"] for h in search(index, {"query": query, "size": 20, **extra})["hits"]["hits"]]


def autocomplete(index: SearchIndex, text: str) -> list[str]:
    return found(index, {"multi_match": {"query": text, "type": "bool_prefix", "fields": SAYT_FIELDS}})


# -- search_as_you_type autocomplete ---------------------------------------------------------


def test_bool_prefix_typed_prefix_by_prefix() -> None:
    engine = Engine(data_dir=None)
    idx = engine.create("t", settings={}, mappings=MAPPING)
    for i, (term, _, _) in enumerate(TERMS):
        idx.write(str(i), {"term": term})
    idx.refresh()
    assert set(autocomplete(idx, "n")) == {"new york", "new york city hotels", "newark airport", "the new yorker"}
    assert autocomplete(idx, "new")[:2] == ["new york", "new york city hotels"]  # whole-term prefix first
    assert set(autocomplete(idx, "newa")) == {"newark airport"}
    # "new yo": every hit has "new" as a term or "yo" as a prefix; in-order matches lead.
    hits = autocomplete(idx, "new yo")
    assert hits[0] == "new york" and set(hits[:3]) == {"new york", "new york city hotels", "the new yorker"}
    assert autocomplete(idx, "new york ci")[0] == "new york city hotels"


def test_whole_value_prefix_ranks_before_later_word_prefix(index: SearchIndex) -> None:
    hits = autocomplete(index, "app")
    assert set(hits) == {"apple pie", "apple", "application form", "big apple"}
    assert hits[-1] == "big apple"  # "apple" starts a later word only; pineapple has no word starting "app"


def test_bool_prefix_operator_and_requires_every_term(index: SearchIndex) -> None:
    q = {"multi_match": {"query": "new yo", "type": "bool_prefix", "fields": SAYT_FIELDS, "operator": "and"}}
    assert set(found(index, q)) == {"new york", "new york city hotels", "the new yorker"}


def test_match_phrase_prefix_keeps_order(index: SearchIndex) -> None:
    assert set(found(index, {"match_phrase_prefix": {"term": "new yo"}})) == {
        "new york",
        "new york city hotels",
        "the new yorker",
    }
    assert found(index, {"match_phrase_prefix": {"term": "york ne"}}) == []


def test_match_bool_prefix_any_order(index: SearchIndex) -> None:
    hits = found(index, {"match_bool_prefix": {"term": {"query": "york ne", "operator": "and"}}})
    assert set(hits) == {"new york", "new york city hotels"}  # "yorker" is not the term "york"


def test_shingle_subfield_matches_adjacent_words_only(index: SearchIndex) -> None:
    # "the new yorker" has the shingle "new yorker", not "new york".
    assert set(found(index, {"match": {"term._2gram": "new york"}})) == {"new york", "new york city hotels"}
    assert found(index, {"match": {"term._3gram": "york city hotels"}}) == ["new york city hotels"]


def test_prefix_on_index_prefix_subfield_and_long_prefix(index: SearchIndex) -> None:
    assert found(index, {"prefix": {"term": "pinea"}}) == ["pineapple"]
    long_prefix = "newark airport termin"  # longer than the 20-char edge n-grams: falls back to term prefixes
    assert found(index, {"prefix": {"term": long_prefix}}) == []


# -- other queries -----------------------------------------------------------------------------


def test_match_scores_and_operator(index: SearchIndex) -> None:
    res = search(index, {"query": {"match": {"title": "apple"}}})
    hits = res["hits"]["hits"]
    assert [h["_source"]["term"] for h in hits][0] == "apple"  # shortest field wins BM25
    assert res["hits"]["max_score"] == hits[0]["_score"] > hits[-1]["_score"] > 0
    assert found(index, {"match": {"title": {"query": "apple pie", "operator": "and"}}}) == ["apple pie"]
    assert len(found(index, {"match": {"title": {"query": "apple pie big", "minimum_should_match": 2}}})) == 2


def test_match_on_unmapped_field_matches_nothing(index: SearchIndex) -> None:
    assert found(index, {"match": {"nope": "apple"}}) == []


def test_term_terms_and_keyword_subfield(index: SearchIndex) -> None:
    assert set(found(index, {"term": {"category": "food"}})) == {"apple pie", "apple", "pineapple"}
    assert found(index, {"term": {"category": "Food"}}) == []  # keyword: exact
    assert found(index, {"term": {"category": {"value": "FOOD", "case_insensitive": True}}}) != []
    assert set(found(index, {"terms": {"category": ["church", "media"]}})) == {"york minster", "the new yorker"}
    assert found(index, {"term": {"title.raw": "Big Apple"}}) == ["big apple"]
    assert found(index, {"term": {"popularity": 80}}) == ["apple"]
    assert found(index, {"term": {"_id": "4"}}) == ["york minster"]


def test_exists_ids_phrase_none_and_boost(index: SearchIndex) -> None:
    index.write("x", {"term": "no popularity"})
    index.refresh()
    assert "no popularity" not in found(index, {"exists": {"field": "popularity"}})
    assert "no popularity" in found(index, {"exists": {"field": "term"}})
    assert found(index, {"bool": {"must_not": {"exists": {"field": "category"}}}}) == ["no popularity"]
    assert set(found(index, {"ids": {"values": ["0", "4", "nope"]}})) == {"new york", "york minster"}
    assert found(index, {"match_phrase": {"title": "york city"}}) == ["new york city hotels"]
    assert found(index, {"match_phrase": {"title": "city york"}}) == []
    assert found(index, {"match_none": {}}) == []
    boosted = search(
        index,
        {
            "query": {
                "bool": {
                    "should": [{"term": {"category": {"value": "church", "boost": 5}}}, {"term": {"category": "media"}}]
                }
            }
        },
    )
    assert [h["_source"]["term"] for h in boosted["hits"]["hits"]] == ["york minster", "the new yorker"]
    most = found(index, {"multi_match": {"query": "apple", "type": "most_fields", "fields": ["title", "term"]}})
    assert most[0] == "apple"


def test_prefix_on_keyword(index: SearchIndex) -> None:
    assert set(found(index, {"prefix": {"category": "tra"}})) == {"new york city hotels", "newark airport"}


def test_range_and_bool(index: SearchIndex) -> None:
    q = {
        "bool": {
            "must": [{"match": {"title": "apple"}}],
            "filter": [{"range": {"popularity": {"gte": 50}}}],
            "must_not": [{"term": {"category": "city"}}],
        }
    }
    assert found(index, q) == ["apple", "apple pie"]
    only_filter = search(index, {"query": {"bool": {"filter": {"term": {"category": "food"}}}}})
    assert {h["_score"] for h in only_filter["hits"]["hits"]} == {0.0}
    only_not = found(index, {"bool": {"must_not": {"term": {"category": "food"}}}})
    assert len(only_not) == len(TERMS) - 3
    should = {
        "bool": {
            "should": [
                {"term": {"category": "food"}},
                {"term": {"category": "city"}},
                {"range": {"popularity": {"gt": 55}}},
            ],
            "minimum_should_match": 2,
        }
    }
    assert set(found(index, should)) == {"apple", "big apple", "new york"}


def test_match_all_size_from_and_source_filter(index: SearchIndex) -> None:
    res = search(index, {"query": {"match_all": {}}, "size": 3, "from": 8, "_source": ["term"]})
    assert res["hits"]["total"] == {"value": 10, "relation": "eq"}
    assert len(res["hits"]["hits"]) == 2
    assert all(set(h["_source"]) == {"term"} for h in res["hits"]["hits"])
    res = search(index, {"_source": False, "size": 1})
    assert "_source" not in res["hits"]["hits"][0]
    res = search(index, {"_source": {"includes": ["t*"], "excludes": ["title"]}, "size": 1})
    assert set(res["hits"]["hits"][0]["_source"]) == {"term"}


def test_track_total_hits(index: SearchIndex) -> None:
    assert search(index, {"track_total_hits": 3})["hits"]["total"] == {"value": 3, "relation": "gte"}
    assert "total" not in search(index, {"track_total_hits": False})["hits"]
    assert search(index, {"track_total_hits": True})["hits"]["total"] == {"value": 10, "relation": "eq"}
    assert search(index, {}, {"rest_total_hits_as_int": "true"})["hits"]["total"] == 10


def test_sort_by_field(index: SearchIndex) -> None:
    res = search(index, {"query": {"term": {"category": "food"}}, "sort": [{"popularity": {"order": "desc"}}]})
    assert [(h["_source"]["term"], h["sort"], h["_score"]) for h in res["hits"]["hits"]] == [
        ("apple", [80], None),
        ("apple pie", [50], None),
        ("pineapple", [5], None),
    ]
    assert res["hits"]["max_score"] is None


def test_response_shape(index: SearchIndex) -> None:
    res = search(index, {"query": {"match": {"title": "apple"}}})
    assert set(res) == {"took", "timed_out", "_shards", "hits"}
    assert res["_shards"] == {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    assert set(res["hits"]["hits"][0]) == {"_index", "_id", "_score", "_source"}
    assert res["hits"]["hits"][0]["_index"] == "terms"


def test_completion_suggest(index: SearchIndex) -> None:
    res = search(index, {"suggest": {"s": {"prefix": "app", "completion": {"field": "suggest", "size": 2}}}})
    assert res["hits"] == {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}
    entry = res["suggest"]["s"][0]
    assert (entry["text"], entry["offset"], entry["length"]) == ("app", 0, 3)
    assert [(o["text"], o["_score"], o["_id"]) for o in entry["options"]] == [
        ("apple", 80.0, "6"),
        ("apple pie", 50.0, "5"),
    ]
    assert entry["options"][0]["_source"]["category"] == "food"
    res = search(index, {"suggest": {"s": {"prefix": "New Y", "completion": {"field": "suggest"}}}})
    assert [o["text"] for o in res["suggest"]["s"][0]["options"]] == ["new york", "new york city hotels"]


def test_count(index: SearchIndex) -> None:
    assert count(index, {"query": {"term": {"category": "food"}}})["count"] == 3
    assert count(index, {})["count"] == 10


# -- visibility ------------------------------------------------------------------------------


def test_writes_visible_after_refresh_only_and_get_is_realtime() -> None:
    now = [0.0]
    engine = Engine(data_dir=None, clock=lambda: now[0])
    idx = engine.create("t", settings={}, mappings=MAPPING)
    status, result = idx.write("a", {"term": "alpha"})
    assert (status, result["result"], result["_version"]) == (201, "created", 1)
    assert idx.get("a") is not None
    assert search(idx, {})["hits"]["total"]["value"] == 0
    now[0] = 0.5
    engine.refresh_due()
    assert search(idx, {})["hits"]["total"]["value"] == 0
    now[0] = 1.0  # index.refresh_interval default 1s
    engine.refresh_due()
    assert search(idx, {})["hits"]["total"]["value"] == 1
    status, result = idx.write("a", {"term": "beta"})
    assert (status, result["result"], result["_version"]) == (200, "updated", 2)
    idx.refresh()
    assert found(idx, {"match": {"term": "beta"}}) == ["beta"]
    assert found(idx, {"match": {"term": "alpha"}}) == []
    assert idx.delete("a")[0] == 200 and idx.delete("a")[0] == 404
    idx.refresh()
    assert search(idx, {})["hits"]["total"]["value"] == 0


def test_refresh_interval_minus_one_disables_scheduled_refresh() -> None:
    now = [0.0]
    engine = Engine(data_dir=None, clock=lambda: now[0])
    idx = engine.create("t", settings={"index": {"refresh_interval": "-1"}}, mappings=MAPPING)
    idx.write("a", {"term": "alpha"})
    now[0] = 100.0
    engine.refresh_due()
    assert search(idx, {})["hits"]["total"]["value"] == 0


def test_data_dir_persists_across_engines(tmp_path) -> None:  # noqa: ANN001
    engine = Engine(data_dir=tmp_path)
    idx = engine.create("t", settings={}, mappings=MAPPING)
    idx.write("a", {"term": "alpha", "suggest": "alpha"})
    engine.close()
    again = Engine(data_dir=tmp_path)
    idx2 = again.get("t")
    assert idx2.get("a") is not None
    assert found(idx2, {"match": {"term": "alpha"}}) == ["alpha"]
    assert (
        search(idx2, {"suggest": {"s": {"prefix": "al", "completion": {"field": "suggest"}}}})["suggest"]["s"][0][
            "options"
        ][0]["_id"]
        == "a"
    )
    again.close()


def test_dynamic_mapping_maps_new_fields_and_reindexes(tmp_path) -> None:  # noqa: ANN001
    engine = Engine(data_dir=tmp_path)
    idx = engine.create("t", settings={}, mappings=MAPPING)
    idx.write("a", {"term": "alpha"})  # not refreshed yet
    idx.write("b", {"term": "beta", "tags": ["Red Car"], "rank": 3, "score": 0.5, "ok": True, "meta": {"by": "x"}})
    props = idx.mapping.as_json()["properties"]
    assert props["tags"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert (props["rank"], props["score"], props["ok"]) == ({"type": "long"}, {"type": "float"}, {"type": "boolean"})
    assert props["meta"] == {
        "properties": {"by": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}}
    }
    idx.refresh()
    assert found(idx, {"match": {"tags": "car"}}) == ["beta"]
    assert found(idx, {"term": {"tags.keyword": "Red Car"}}) == ["beta"]
    assert found(idx, {"range": {"rank": {"gt": 2}}}) == ["beta"]
    assert found(idx, {"match": {"meta.by": "x"}}) == ["beta"]
    assert found(idx, {"match": {"term": "alpha"}}) == ["alpha"]  # re-indexed with the new schema
    with pytest.raises(MapperParsingError, match=r"\[rank\] of type \[long\]"):
        idx.write("c", {"rank": "high"})
    engine.close()
    again = Engine(data_dir=tmp_path)  # the new generation and mapping persist
    assert found(again.get("t"), {"match": {"tags": "red"}}) == ["beta"]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["meta.json", "tantivy-1"]
    again.close()


def test_dynamic_false_keeps_new_fields_unsearchable() -> None:
    engine = Engine(data_dir=None)
    idx = engine.create("t", settings={}, mappings={"dynamic": False, "properties": {"a": {"type": "keyword"}}})
    idx.write(
        "1",
        {"a": "x", "b": "hidden"},
    )
    idx.refresh()
    assert "b" not in idx.mapping.as_json()["properties"]
    assert found(idx, {"match": {"b": "hidden"}}) == []
    assert search(idx, {})["hits"]["hits"][0]["_source"] == {"a": "x", "b": "hidden"}


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, match",
    [
        ({"wildcard": {"term": "a*"}}, r"unknown query \[wildcard\].*supports"),
        ({"match": {"term": {"query": "a", "fuzziness": "AUTO"}}}, r"\[fuzziness\] is not supported"),
        ({"multi_match": {"query": "a", "type": "cross_fields"}}, r"type \[cross_fields\] is not supported"),
        ({"match": {"term": "a"}, "term": {"x": 1}}, r"exactly one query type"),
        ({"bool": {"must": [], "nope": 1}}, r"does not support \['nope'\]"),
    ],
)
def test_unsupported_queries_are_parsing_errors(index: SearchIndex, query: dict[str, Any], match: str) -> None:
    with pytest.raises(ParsingError, match=match):
        search(index, {"query": query})


def test_unsupported_body_keys_and_bad_sizes(index: SearchIndex) -> None:
    with pytest.raises(ParsingError, match=r"\['aggs'\] is not supported"):
        search(index, {"aggs": {}})
    with pytest.raises(IllegalArgument, match=r"Result window is too large"):
        search(index, {"from": 9999, "size": 2})
    with pytest.raises(IllegalArgument, match=r"\[size\] parameter cannot be negative"):
        search(index, {"size": -1})


def test_prefix_on_numeric_field_is_refused(index: SearchIndex) -> None:
    with pytest.raises(SearchApiError, match=r"Can only use prefix queries on keyword and text fields"):
        search(index, {"query": {"prefix": {"popularity": "1"}}})


def test_bad_documents_and_mappings_are_named() -> None:
    engine = Engine(data_dir=None)
    idx = engine.create("t", settings={}, mappings=MAPPING)
    with pytest.raises(MapperParsingError, match=r"failed to parse field \[popularity\] of type \[integer\].*'lots'"):
        idx.write("x", {"popularity": "lots"})
    with pytest.raises(MapperParsingError, match=r"No handler for type \[geo_point\] declared on field \[where\]"):
        engine.create("u", settings={}, mappings={"properties": {"where": {"type": "geo_point"}}})
    with pytest.raises(MapperParsingError, match=r"analyzer \[nope\] has not been configured"):
        engine.create("v", settings={}, mappings={"properties": {"t": {"type": "text", "analyzer": "nope"}}})
    with pytest.raises(SearchApiError, match=r"Invalid index name \[Bad\], must be lowercase"):
        engine.create("Bad", settings={}, mappings={})
    strict = engine.create("w", settings={}, mappings={"dynamic": "strict", "properties": {"a": {"type": "keyword"}}})
    with pytest.raises(SearchApiError, match=r"dynamic introduction of \[b\]"):
        strict.write("1", {"a": "x", "b": "y"})


@pytest.mark.parametrize(
    "spec, optional, expected",
    [
        (2, 3, 2),
        ("-1", 3, 2),
        ("75%", 4, 3),
        ("-25%", 4, 3),
        ("50%", 3, 1),
        (5, 3, 3),
    ],
)
def test_minimum_should_match(spec: Any, optional: int, expected: int) -> None:
    assert minimum_should_match(spec, optional) == expected


def test_concurrent_writes_with_mapping_updates_and_searches() -> None:
    """Searches stay consistent while writers add fields (each one swaps the tantivy index)."""
    import threading

    engine = Engine(data_dir=None)
    idx = engine.create("t", settings={}, mappings=MAPPING)
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                idx.write(f"{n}-{i}", {"term": f"word{i}", f"field_{n}_{i % 5}": "x"})
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            failures.append(exc)

    def reader() -> None:
        try:
            for _ in range(50):
                search(idx, {"query": {"multi_match": {"query": "wor", "type": "bool_prefix", "fields": SAYT_FIELDS}}})
                count(idx, {"query": {"match_all": {}}})
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)] + [
        threading.Thread(target=reader) for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failures == []
    idx.refresh()
    assert count(idx, {})["count"] == 75
    assert len([p for p in idx.mapping.as_json()["properties"] if p.startswith("field_")]) == 15
