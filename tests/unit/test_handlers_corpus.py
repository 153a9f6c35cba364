"""The search corpus and index mapping the search handler relies on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reference_stack.handlers import search

DATA = Path(__file__).resolve().parents[2] / "reference_stack" / "data"
CATEGORIES = {"python-keyword", "python-builtin", "python-module", "http-status", "unicode-character"}


def _docs() -> list[dict]:
    return [json.loads(line) for line in (DATA / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]


def test_corpus_documents_are_well_formed_and_unique() -> None:
    docs = _docs()
    assert 2000 <= len(docs) <= 5000
    assert len({d["id"] for d in docs}) == len(docs)
    assert len({d["term"] for d in docs}) == len(docs)
    for d in docs:
        assert set(d) == {"id", "term", "popularity", "category"}, d
        assert isinstance(d["term"], str) and d["term"].strip() == d["term"] and d["term"], d
        assert isinstance(d["popularity"], int) and 1 <= d["popularity"] <= 1000, d
        assert d["category"] in CATEGORIES, d
    meta = json.loads((DATA / "corpus.meta.json").read_text(encoding="utf-8"))
    assert meta["documents"] == len(docs)


def test_corpus_is_reproducible_from_the_generator() -> None:
    meta = json.loads((DATA / "corpus.meta.json").read_text(encoding="utf-8"))
    if meta["python"] != f"{sys.version_info.major}.{sys.version_info.minor}":
        pytest.skip(f"the corpus was generated with Python {meta['python']}; module names and Unicode data differ")
    done = subprocess.run(
        [sys.executable, str(DATA / "make_corpus.py"), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_mapping_has_the_fields_the_handler_queries() -> None:
    mapping = json.loads((DATA / "mapping.json").read_text(encoding="utf-8"))
    props = mapping["mappings"]["properties"]
    assert props["term"]["type"] == "search_as_you_type"
    assert props["popularity"]["type"] == "integer"
    assert props["category"]["type"] == "keyword"
    # search_as_you_type makes _2gram .. _<max_shingle_size>gram subfields (docs/aws-behaviour.md §9.5)
    shingles = props["term"].get("max_shingle_size", 3)
    made = {"term"} | {f"term._{n}gram" for n in range(2, shingles + 1)}
    assert set(search.AUTOCOMPLETE_FIELDS) <= made
    assert set(search.SOURCE_FIELDS) <= set(props)


def test_corpus_answers_typical_prefixes() -> None:
    terms = [d["term"] for d in _docs()]
    for prefix in ("greek small letter al", "latin capital", "box drawings light", "not fou", "json"):
        assert any(t.startswith(prefix) for t in terms), prefix
