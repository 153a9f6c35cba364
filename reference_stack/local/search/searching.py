"""``_search``, ``_count`` and the completion suggester over one index.

Response shape per docs/aws-behaviour.md §9.4: ``took``, ``timed_out``, ``_shards``,
``hits.total.{value,relation}`` (relation ``gte`` past ``track_total_hits``, default 10,000),
``max_score``, ``hits.hits[]`` with ``_index``, ``_id``, ``_score``, ``_source``; a suggest-only
request has no hits and ``max_score`` null, suggestions under ``suggest.<name>[0].options[]``.

Departures from OpenSearch (docs/fidelity.md, section search):

- ``sort`` by fields is done over the matching documents' ``_source`` values in Python
  (first value of an array; missing values last), not doc values; ``_score`` is null in sorted
  hits unless ``track_scores``. Supported: a field name, ``{"f": "asc"}``, ``{"f": {"order"}}``,
  ``_score``, ``_doc``.
- Completion suggestions are looked up in a sorted list in Python (tantivy has no weighted
  FST suggester in its Python API): prefix match on the analyzed input, ordered by weight then
  input text, one option per document (as OpenSearch), ``skip_duplicates`` by text. ``fuzzy``,
  ``regex`` and ``contexts`` are refused.
- aggregations, highlight, search_after, scroll, collapse, rescore, script_fields and the
  ``q=`` URI query are refused with a parsing_exception naming them.
"""

from __future__ import annotations

import bisect
import fnmatch
import struct
import time
from typing import Any

import tantivy

from .engine import SearchIndex
from .errors import IllegalArgument, ParsingError
from .mapping import ID_FIELD, hit_count, stored_id, stored_source
from .query import QueryTranslator

DEFAULT_TRACK_TOTAL_HITS = 10_000
BODY_KEYS = {
    "query",
    "size",
    "from",
    "_source",
    "track_total_hits",
    "suggest",
    "sort",
    "timeout",
    "post_filter",
    "version",
    "seq_no_primary_term",
    "track_scores",
    "min_score",
    "explain",
}
REFUSED_BODY_KEYS = {
    "aggs",
    "aggregations",
    "highlight",
    "search_after",
    "collapse",
    "rescore",
    "script_fields",
    "docvalue_fields",
    "stored_fields",
    "terminate_after",
    "profile",
    "indices_boost",
    "pit",
    "slice",
    "ext",
    "fields",
    "runtime_mappings",
    "knn",
}


def f32(value: float) -> float:
    """A score as OpenSearch prints it: Lucene scores are 32-bit floats, rendered with the
    fewest digits that read back as the same float32 (1.01, not 1.0099999904632568)."""
    packed = struct.pack("<f", value)
    for digits in range(6, 10):
        short = float(f"{value:.{digits}g}")
        if struct.pack("<f", short) == packed:
            return short
    return float(value)


def _int_param(name: str, value: Any, minimum: int = 0) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise IllegalArgument(f"[{name}] must be an integer, got [{value}]") from None
    if number < minimum:
        raise IllegalArgument(f"[{name}] parameter cannot be negative, found [{number}]")
    return number


class SourceFilter:
    """``_source``: true/false, a pattern or list of patterns, or ``{includes, excludes}``."""

    def __init__(self, spec: Any = True) -> None:
        self.enabled = True
        self.includes: list[str] = []
        self.excludes: list[str] = []
        if isinstance(spec, bool):
            self.enabled = spec
        elif isinstance(spec, str):
            self.includes = [spec]
        elif isinstance(spec, list):
            self.includes = [str(x) for x in spec]
        elif isinstance(spec, dict):
            inc = spec.get("includes", spec.get("include", []))
            exc = spec.get("excludes", spec.get("exclude", []))
            self.includes = [inc] if isinstance(inc, str) else [str(x) for x in inc or []]
            self.excludes = [exc] if isinstance(exc, str) else [str(x) for x in exc or []]
        else:
            raise ParsingError(f"[_source] must be a boolean, a string, an array or an object, got {spec!r}")

    def apply(self, source: dict[str, Any]) -> dict[str, Any]:
        if not self.includes and not self.excludes:
            return source
        return self._filter(source, "")

    def _keep(self, path: str) -> bool | None:
        """True keep, False drop, None = decide per child (a parent of an included path)."""
        if any(fnmatch.fnmatchcase(path, p) for p in self.excludes):
            return False
        if not self.includes:
            return True
        if any(fnmatch.fnmatchcase(path, p) or path.startswith(p + ".") for p in self.includes):
            return True
        if any(
            p.startswith(path + ".") or ("*" in p and fnmatch.fnmatchcase(path + ".", p.split("*")[0] + "*"))
            for p in self.includes
        ):
            return None
        return False

    def _filter(self, node: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in node.items():
            path = prefix + k
            keep = self._keep(path)
            if keep is True and not (self.excludes and isinstance(v, dict)):
                out[k] = v
            elif keep is not False and isinstance(v, dict):
                sub = self._filter(v, path + ".")
                if sub:
                    out[k] = sub
        return out


def _sort_spec(sort: Any) -> list[tuple[str, bool]]:
    """→ [(field, descending)]."""
    items = sort if isinstance(sort, list) else [sort]
    out: list[tuple[str, bool]] = []
    for item in items:
        if isinstance(item, str):
            field, order = item, ("desc" if item == "_score" else "asc")
        elif isinstance(item, dict) and len(item) == 1:
            ((field, spec),) = item.items()
            if not isinstance(spec, str | dict):  # e.g. {"field": null}: found by the schema fuzzer
                raise ParsingError(f"[sort] entry malformed: {item!r}")
            order = spec if isinstance(spec, str) else spec.get("order", "desc" if field == "_score" else "asc")
            if isinstance(spec, dict) and set(spec) - {"order", "missing", "unmapped_type"}:
                raise ParsingError(f"[sort] options {sorted(set(spec) - {'order'})} are not supported locally")
        else:
            raise ParsingError(f"[sort] entry malformed: {item!r}")
        if order not in ("asc", "desc"):
            raise ParsingError(f"[sort] order must be asc or desc, got [{order}]")
        out.append((field, order == "desc"))
    return out


def _first(source: dict[str, Any], path: str) -> Any:
    node: Any = source
    for part in path.split("."):
        if isinstance(node, list):
            node = node[0] if node else None
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    if isinstance(node, list):
        node = min(node) if node else None
    return node


class SearchRequest:
    """One ``_search`` request against one index."""

    def __init__(self, index: SearchIndex, body: dict[str, Any], params: dict[str, str]) -> None:
        if not isinstance(body, dict):
            raise ParsingError(f"request body must be a JSON object, got {body!r}")
        refused = REFUSED_BODY_KEYS & set(body)
        if refused:
            raise ParsingError(f"{sorted(refused)} is not supported by the local search service")
        unknown = set(body) - BODY_KEYS
        if unknown:
            raise ParsingError(f"Unknown key for a VALUE_STRING in [{sorted(unknown)[0]}].")
        if str(body.get("explain", "false")).lower() == "true":
            raise ParsingError("[explain] is not supported by the local search service")
        self.index = index
        self.body = body
        size = params.get("size", body.get("size", 10))
        frm = params.get("from", body.get("from", 0))
        self.size = _int_param("size", size)
        self.from_ = _int_param("from", frm)
        if self.from_ + self.size > index.max_result_window:
            raise IllegalArgument(
                f"Result window is too large, from + size must be less than or equal to: [{index.max_result_window}] "
                f"but was [{self.from_ + self.size}]. See the scroll api for a more efficient way to request large "
                "data sets. This limit can be set by changing the [index.max_result_window] index level setting."
            )
        source_spec: Any = body.get("_source", True)
        if "_source" in params:
            raw = params["_source"]
            source_spec = raw.lower() == "true" if raw.lower() in ("true", "false") else raw.split(",")
        if "_source_includes" in params or "_source_excludes" in params:
            source_spec = {
                "includes": [p for p in params.get("_source_includes", "").split(",") if p],
                "excludes": [p for p in params.get("_source_excludes", "").split(",") if p],
            }
        self.source = SourceFilter(source_spec)
        tth: Any = params.get("track_total_hits", body.get("track_total_hits", DEFAULT_TRACK_TOTAL_HITS))
        if isinstance(tth, str):
            tth = True if tth == "true" else False if tth == "false" else _int_param("track_total_hits", tth)
        elif not isinstance(tth, bool | int):
            raise IllegalArgument(f"[track_total_hits] must be true, false or an integer, got [{tth}]")
        self.track_total_hits: bool | int = tth
        self.total_as_int = params.get("rest_total_hits_as_int", "false") == "true"
        self.sort = _sort_spec(body["sort"]) if "sort" in body else []
        self.track_scores = bool(body.get("track_scores", False))
        self.min_score = body.get("min_score")
        self.version = str(body.get("version", params.get("version", "false"))).lower() == "true"
        self.seq_no = str(body.get("seq_no_primary_term", "false")).lower() == "true"
        self.suggest = body.get("suggest")
        self.view = index.view()
        self.translator = QueryTranslator(mapping=self.view.mapping)

    def _query(self) -> tantivy.Query:
        q = self.translator.translate(self.body["query"]) if "query" in self.body else tantivy.Query.all_query()
        if "post_filter" in self.body:
            pf = tantivy.Query.const_score_query(self.translator.translate(self.body["post_filter"]), 0.0)
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, q), (tantivy.Occur.Must, pf)])
        return q

    def execute(self) -> dict[str, Any]:
        started = time.perf_counter()
        query = self._query()  # translate even for suggest-only requests, so errors surface
        searcher = self.view.searcher
        hits: list[dict[str, Any]] = []
        total = 0
        max_score: float | None = None
        suggest_only = self.suggest is not None and "query" not in self.body
        if not suggest_only:
            total, max_score, hits = self._hits(searcher, query)
        response: dict[str, Any] = {
            "took": 0,
            "timed_out": False,
            "_shards": {
                "total": int(self.index.settings.get("index.number_of_shards", 1)),
                "successful": int(self.index.settings.get("index.number_of_shards", 1)),
                "skipped": 0,
                "failed": 0,
            },
            "hits": {},
        }
        if self.track_total_hits is not False:
            limit = None if self.track_total_hits is True else int(self.track_total_hits)
            if self.total_as_int:
                response["hits"]["total"] = total
            elif limit is not None and total > limit:
                response["hits"]["total"] = {"value": limit, "relation": "gte"}
            else:
                response["hits"]["total"] = {"value": total, "relation": "eq"}
        response["hits"]["max_score"] = max_score
        response["hits"]["hits"] = hits
        if self.suggest is not None:
            response["suggest"] = self._suggest()
        response["took"] = int((time.perf_counter() - started) * 1000)
        return response

    def _hit(self, doc: tantivy.Document, score: float | None) -> dict[str, Any]:
        doc_id = stored_id(doc)
        hit: dict[str, Any] = {"_index": self.index.name, "_id": doc_id}
        if self.version or self.seq_no:
            state = self.index.get(doc_id)
            if self.version:
                hit["_version"] = state.version if state else 1
            if self.seq_no:
                hit["_seq_no"] = state.seq_no if state else 0
                hit["_primary_term"] = 1
        hit["_score"] = score
        if self.source.enabled:
            hit["_source"] = self.source.apply(stored_source(doc))
        return hit

    def _hits(self, searcher: tantivy.Searcher, query: tantivy.Query) -> tuple[int, float | None, list[dict[str, Any]]]:
        sort_fields = [s for s in self.sort if s[0] != "_score"] if self.sort else []
        if self.sort and (sort_fields or self.sort[0][0] != "_score" or not self.sort[0][1]):
            return self._sorted_hits(searcher, query)
        wanted = self.from_ + self.size
        result = searcher.search(query, limit=max(wanted, 1), count=True)
        scored = [(s, a) for s, a in result.hits if self.min_score is None or s >= float(self.min_score)]
        total = hit_count(result) if self.min_score is None else self._count_min_score(searcher, query)
        max_score = f32(scored[0][0]) if scored and self.size > 0 else None
        page = scored[self.from_ : wanted]
        return total, max_score, [self._hit(searcher.doc(a), f32(s)) for s, a in page]

    def _count_min_score(self, searcher: tantivy.Searcher, query: tantivy.Query) -> int:
        everything = searcher.search(query, limit=max(searcher.num_docs, 1)).hits
        return sum(1 for s, _ in everything if s >= float(self.min_score or 0))

    def _sorted_hits(
        self, searcher: tantivy.Searcher, query: tantivy.Query
    ) -> tuple[int, float | None, list[dict[str, Any]]]:
        everything = searcher.search(query, limit=max(searcher.num_docs, 1), count=True)
        rows = []
        for order, (score, addr) in enumerate(everything.hits):
            if self.min_score is not None and score < float(self.min_score):
                continue
            doc = searcher.doc(addr)
            rows.append((score, order, doc, stored_source(doc)))
        best = max((r[0] for r in rows), default=None)
        max_score = f32(best) if self.track_scores and best is not None else None

        def key(row: tuple[float, int, tantivy.Document, dict[str, Any]]) -> tuple[Any, ...]:
            parts: list[Any] = []
            for field, desc in self.sort:
                if field == "_score":
                    value: Any = row[0]
                elif field == "_doc":
                    value = row[1]
                else:
                    value = _first(row[3], field)
                missing = value is None
                if isinstance(value, bool) or not isinstance(value, int | float):
                    value = str(value) if value is not None else ""
                    parts.append((missing, _Reverse(value) if desc else value))
                else:
                    parts.append((missing, -value if desc else value))
            return tuple(parts)

        rows.sort(key=key)
        page = rows[self.from_ : self.from_ + self.size]
        hits = []
        for score, order, doc, source in page:
            hit = self._hit(doc, f32(score) if self.track_scores else None)
            hit["sort"] = [
                score if f == "_score" else order if f == "_doc" else _first(source, f) for f, _ in self.sort
            ]
            hits.append(hit)
        return len(rows), max_score, hits

    def _suggest(self) -> dict[str, Any]:
        if not isinstance(self.suggest, dict):
            raise ParsingError(f"[suggest] must be an object, got {self.suggest!r}")
        global_text = self.suggest.get("text")
        out: dict[str, Any] = {}
        for name, spec in self.suggest.items():
            if name == "text":
                continue
            if not isinstance(spec, dict):
                raise ParsingError(f"suggester [{name}] must be an object")
            kinds = set(spec) & {"completion", "term", "phrase"}
            if kinds != {"completion"}:
                raise ParsingError(
                    f"suggester [{name}]: only the [completion] suggester is supported by the local "
                    f"search service, got {sorted(set(spec) - {'text', 'prefix'}) or 'none'}"
                )
            if "regex" in spec:
                raise ParsingError(f"suggester [{name}]: [regex] is not supported by the local search service")
            text = spec.get("prefix", spec.get("text", global_text))
            if text is None:
                raise IllegalArgument(f"suggester [{name}]: [prefix] or [text] is required")
            out[name] = [self._completion(str(text), spec["completion"], name)]
        return out

    def _completion(self, text: str, spec: dict[str, Any], name: str) -> dict[str, Any]:
        refused = set(spec) & {"fuzzy", "contexts", "context", "regex"}
        if refused:
            raise ParsingError(f"suggester [{name}]: {sorted(refused)} is not supported by the local search service")
        field = spec.get("field")
        mapping = self.view.mapping
        if field not in mapping.completions:
            raise IllegalArgument(
                f"no mapping found for field [{field}]"
                if mapping.field(str(field)) is None
                else f"Field [{field}] is not a completion suggest field"
            )
        size = _int_param("size", spec.get("size", 5), minimum=1)
        skip_duplicates = str(spec.get("skip_duplicates", "false")).lower() == "true"
        analyzer = mapping.completions[field]
        prefix = " ".join(analyzer.terms(text))
        if text[-1:].isspace() and prefix:
            prefix += " "  # preserve_separators: "to " does not match "toronto"
        entries = self.view.completions.get(field, [])
        start = bisect.bisect_left(entries, (prefix,))
        best: dict[str, tuple[int, str]] = {}
        for analyzed, input_text, weight, doc_id in entries[start:]:
            if not analyzed.startswith(prefix):
                break
            current = best.get(doc_id)
            if current is None or (-weight, input_text) < (-current[0], current[1]):
                best[doc_id] = (weight, input_text)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1], kv[0]))
        options = []
        seen: set[str] = set()
        searcher = self.view.searcher
        for doc_id, (weight, input_text) in ranked:
            if skip_duplicates:
                if input_text in seen:
                    continue
                seen.add(input_text)
            option: dict[str, Any] = {
                "text": input_text,
                "_index": self.index.name,
                "_id": doc_id,
                "_score": float(weight),
            }
            if self.source.enabled:
                hits = searcher.search(tantivy.Query.term_query(mapping.schema, ID_FIELD, doc_id), 1).hits
                if hits:
                    option["_source"] = self.source.apply(stored_source(searcher.doc(hits[0][1])))
            options.append(option)
            if len(options) >= size:
                break
        return {"text": text, "offset": 0, "length": len(text), "options": options}


class _Reverse:
    """Descending order for strings inside a sort key tuple."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value


def count(index: SearchIndex, body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) - {"query"}:
        raise ParsingError(
            f"request does not support {sorted(set(body) - {'query'}) if isinstance(body, dict) else body!r}"
        )
    view = index.view()
    translator = QueryTranslator(mapping=view.mapping)
    query = translator.translate(body["query"]) if "query" in body else tantivy.Query.all_query()
    n = hit_count(view.searcher.search(query, limit=1, count=True))
    shards = int(index.settings.get("index.number_of_shards", 1))
    return {"count": n, "_shards": {"total": shards, "successful": shards, "skipped": 0, "failed": 0}}
