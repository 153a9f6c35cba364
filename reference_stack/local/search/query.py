"""OpenSearch query DSL → tantivy queries.

Supported (docs/aws-behaviour.md §9.5; OpenSearch query DSL reference): match_all, match_none,
match, match_phrase, match_phrase_prefix, match_bool_prefix, multi_match (best_fields,
most_fields, bool_prefix, phrase, phrase_prefix), prefix, term, terms, ids, range, exists,
bool (must/should/filter/must_not, minimum_should_match, boost). Anything else is answered
with OpenSearch's ``parsing_exception`` naming the query and what is supported.

Scoring: term lookups are tantivy's BM25 (k1 1.2, b 0.75, like Lucene's BM25Similarity, but
not the same numbers: Lucene encodes field lengths lossily and tantivy differently). Prefix,
terms, range and exists are constant-score 1.0 times boost, as in OpenSearch; filter clauses
score 0. bool sums its scoring clauses; best_fields takes the best field plus tie_breaker times
the others (dis_max); most_fields and bool_prefix sum the fields.

Prefix queries on a ``search_as_you_type`` field (or its shingle subfields) look the prefix up
as a term in ``<field>._index_prefix`` when it is 1..20 characters long, as OpenSearch does.

Departures from OpenSearch (docs/fidelity.md, section search):

- A prefix on a search_as_you_type field that starts the field's value (``"new y"`` on
  ``"new york"``) scores 0.01 more than one found later in it (``"the new york"``): OpenSearch
  scores both 1.0 and breaks the tie by index order; this ranks whole-value prefixes first.
- ``fuzziness``, ``slop`` on match_phrase_prefix, ``cross_fields``, ``rewrite`` and
  ``zero_terms_query: all`` are not supported (parsing_exception naming the parameter).
- A query on a field the mapping does not name matches nothing (as in OpenSearch), but a
  query on a ``completion`` field is refused with an illegal_argument_exception.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable
from typing import Any

import tantivy

from .errors import IllegalArgument, ParsingError, SearchApiError
from .mapping import FLOAT_TYPES, ID_FIELD, INTEGER_RANGES, PREFIX_MAX, PREFIX_MIN, FieldSpec, Mapping

Occur = tantivy.Occur
ANCHOR_BONUS = 0.01
SUPPORTED = (
    "match_all",
    "match_none",
    "match",
    "match_phrase",
    "match_phrase_prefix",
    "match_bool_prefix",
    "multi_match",
    "prefix",
    "term",
    "terms",
    "ids",
    "range",
    "exists",
    "bool",
)
_RUST_REGEX_META = set("\\.+*?()|[]{}^$#&-~")


def rust_regex_escape(text: str) -> str:
    return "".join("\\" + c if c in _RUST_REGEX_META else c for c in text)


def minimum_should_match(spec: Any, optional: int) -> int:
    """OpenSearch's minimum_should_match: ``3``, ``-2``, ``75%``, ``-25%`` over ``optional`` clauses."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            pct = float(text[:-1])
            n = math.floor(optional * abs(pct) / 100)
            result = optional - n if pct < 0 else n
        else:
            value = int(text)
            result = optional + value if value < 0 else value
    except ValueError:
        raise ParsingError(
            f"minimum_should_match [{spec}] is not supported by the local search service: use an "
            "integer (3, -2) or a percentage (75%, -25%)"
        ) from None
    return max(0, min(result, optional))


def _boosted(q: tantivy.Query, boost: Any) -> tantivy.Query:
    try:
        b = float(boost)
    except (TypeError, ValueError):
        raise ParsingError(f"[boost] must be a number, got [{boost}]") from None
    return q if b == 1.0 else tantivy.Query.boost_query(q, b)


def _combine(clauses: list[tantivy.Query], operator: str, msm: Any) -> tantivy.Query:
    if not clauses:
        return tantivy.Query.empty_query()
    if operator == "and":
        return tantivy.Query.boolean_query([(Occur.Must, c) for c in clauses])
    if operator != "or":
        raise ParsingError(f"[operator] must be one of [or, and], got [{operator}]")
    needed = minimum_should_match(msm, len(clauses)) if msm is not None else 1
    if len(clauses) == 1 and needed <= 1:
        return clauses[0]
    return tantivy.Query.boolean_query([(Occur.Should, c) for c in clauses], minimum_number_should_match=max(needed, 1))


class QueryTranslator:
    """Translates one index's queries; ``mapping`` is the index's :class:`Mapping`."""

    def __init__(self, *, mapping: Mapping) -> None:
        self.mapping = mapping
        self.schema = mapping.schema
        self._handlers: dict[str, Callable[[Any], tantivy.Query]] = {
            "match_all": self._match_all,
            "match_none": lambda _: tantivy.Query.empty_query(),
            "match": self._match,
            "match_phrase": self._match_phrase,
            "match_phrase_prefix": self._match_phrase_prefix,
            "match_bool_prefix": self._match_bool_prefix,
            "multi_match": self._multi_match,
            "prefix": self._prefix,
            "term": self._term,
            "terms": self._terms,
            "ids": self._ids,
            "range": self._range,
            "exists": self._exists,
            "bool": self._bool,
        }

    # -- entry ---------------------------------------------------------------------------------

    def translate(self, query: Any) -> tantivy.Query:
        if not isinstance(query, dict) or len(query) != 1:
            raise ParsingError(f"a query must be an object with exactly one query type, got {query!r}")
        ((kind, body),) = query.items()
        handler = self._handlers.get(kind)
        if handler is None:
            raise ParsingError(f"unknown query [{kind}]: the local search service supports {', '.join(SUPPORTED)}")
        return handler(body)

    # -- helpers -------------------------------------------------------------------------------

    def _field(self, path: str, query: str) -> FieldSpec | None:
        if path in self.mapping.completions:
            raise IllegalArgument(
                f"Field [{path}] of type [completion] does not support [{query}] queries; use a completion suggester"
            )
        return self.mapping.field(path)

    def _single_field(self, kind: str, body: Any, value_key: str) -> tuple[str, dict[str, Any]]:
        """``{"f": "v"}`` or ``{"f": {"query": "v", ...}}`` → (field, options with value_key)."""
        if not isinstance(body, dict):
            raise ParsingError(f"[{kind}] query malformed, expected an object, got {body!r}")
        fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
        if len(fields) != 1:
            raise ParsingError(f"[{kind}] query doesn't support multiple fields, found {sorted(fields)}")
        ((path, spec),) = fields.items()
        opts = dict(spec) if isinstance(spec, dict) else {value_key: spec}
        if "boost" in body:
            opts.setdefault("boost", body["boost"])
        if value_key not in opts:
            raise ParsingError(f"[{kind}] query for field [{path}] has no [{value_key}]")
        return path, opts

    def _check_opts(self, kind: str, opts: dict[str, Any], allowed: set[str]) -> None:
        unsupported = {"fuzziness", "slop", "rewrite", "cutoff_frequency"} & set(opts)
        for key in sorted(unsupported):
            if key == "fuzziness" and str(opts[key]) in ("0", "None"):
                continue
            if key == "slop" and kind == "match_phrase":
                continue
            if key == "slop" and str(opts[key]) == "0":
                continue
            raise ParsingError(f"[{kind}] option [{key}] is not supported by the local search service")
        unknown = set(opts) - allowed - unsupported
        if unknown:
            raise ParsingError(f"[{kind}] query does not support {sorted(unknown)}")
        if str(opts.get("zero_terms_query", "none")).lower() != "none":
            raise ParsingError(
                f"[{kind}] zero_terms_query [{opts['zero_terms_query']}] is not supported locally; use none"
            )

    def _analyzer_opt(self, opts: dict[str, Any]) -> Any:
        name = opts.get("analyzer")
        if name is None:
            return None
        if name not in self.mapping.analyzers:
            raise SearchApiError(400, "query_shard_exception", f"[match] analyzer [{name}] not found")
        return self.mapping.analyzers[name]

    def _value(self, spec: FieldSpec, value: Any) -> Any:
        """A term value typed for the field (numbers for numeric fields, strings otherwise)."""
        try:
            if spec.kind in INTEGER_RANGES:
                if isinstance(value, bool):
                    raise ValueError
                f = float(value)
                if f != int(f):
                    raise ValueError
                return int(f)
            if spec.kind in FLOAT_TYPES:
                return float(value)
        except (TypeError, ValueError):
            raise SearchApiError(
                400,
                "query_shard_exception",
                f'failed to create query: For input string: "{value}" (field [{spec.path}] is of type [{spec.kind}])',
            ) from None
        if spec.kind == "boolean":
            if value in (True, "true"):
                return True
            if value in (False, "false", ""):
                return False
            raise SearchApiError(
                400,
                "query_shard_exception",
                f"failed to create query: Can't parse boolean value "
                f"[{value}], expected [true] or [false] (field [{spec.path}])",
            )
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            raise ParsingError(f"[term] query on [{spec.path}] expects a single value, got {value!r}")
        return str(value)

    def _term_query(self, spec: FieldSpec, term: Any) -> tantivy.Query:
        return tantivy.Query.term_query(self.schema, spec.tantivy_name, self._value(spec, term))

    def prefix_query(self, spec: FieldSpec, value: str, *, case_insensitive: bool = False) -> tantivy.Query:
        """Constant score 1.0; via ``_index_prefix`` for search_as_you_type (see module docstring)."""
        if not spec.is_text:
            raise SearchApiError(
                400,
                "query_shard_exception",
                f"Can only use prefix queries on keyword and text "
                f"fields - not on [{spec.path}] which is of type [{spec.kind}]",
            )
        if spec.root and spec.kind != "sayt_anchor" and not case_insensitive and PREFIX_MIN <= len(value) <= PREFIX_MAX:
            prefix_field = self.mapping.fields[f"{spec.root}._index_prefix"]
            anchor = self.mapping.fields[f"{spec.root}._anchor"]
            base = tantivy.Query.const_score_query(
                tantivy.Query.term_query(self.schema, prefix_field.tantivy_name, value), 1.0
            )
            bonus = tantivy.Query.const_score_query(
                tantivy.Query.term_query(self.schema, anchor.tantivy_name, value), ANCHOR_BONUS
            )
            return tantivy.Query.boolean_query([(Occur.Must, base), (Occur.Should, bonus)])
        pattern = ("(?i)" if case_insensitive else "") + rust_regex_escape(value) + ".*"
        return tantivy.Query.const_score_query(tantivy.Query.regex_query(self.schema, spec.tantivy_name, pattern), 1.0)

    # -- full text -----------------------------------------------------------------------------

    _MATCH_OPTS = {
        "query",
        "operator",
        "minimum_should_match",
        "analyzer",
        "boost",
        "zero_terms_query",
        "lenient",
        "auto_generate_synonyms_phrase_query",
        "prefix_length",
        "max_expansions",
        "fuzzy_transpositions",
        "_name",
        "fuzziness",
    }

    def match_field(self, path: str, opts: dict[str, Any], kind: str = "match") -> tantivy.Query:
        spec = self._field(path, kind)
        if spec is None:
            return tantivy.Query.empty_query()
        text = opts["query"]
        if not spec.is_text:
            if kind != "match":
                raise SearchApiError(
                    400,
                    "query_shard_exception",
                    f"Can only use {kind} queries on text fields - not on [{path}] which is of type [{spec.kind}]",
                )
            try:
                return _boosted(self._term_query(spec, text), opts.get("boost", 1))
            except SearchApiError:
                if str(opts.get("lenient", "false")).lower() == "true":
                    return tantivy.Query.empty_query()
                raise
        if isinstance(text, bool):
            text = "true" if text else "false"
        if isinstance(text, dict | list):
            raise ParsingError(f"[{kind}] query on [{path}] expects text, got {text!r}")
        tokens = spec.query_tokens(str(text), self._analyzer_opt(opts))
        if not tokens:
            return tantivy.Query.empty_query()
        operator = str(opts.get("operator", "or")).lower()
        msm = opts.get("minimum_should_match")
        if kind == "match":
            q = _combine([self._term_query(spec, t) for t, _ in tokens], operator, msm)
        elif kind == "match_bool_prefix":
            *head, last = [t for t, _ in tokens]
            q = _combine([self._term_query(spec, t) for t in head] + [self.prefix_query(spec, last)], operator, msm)
        elif kind == "match_phrase":
            if len(tokens) == 1:
                q = self._term_query(spec, tokens[0][0])
            else:
                base = tokens[0][1]
                q = tantivy.Query.phrase_query(
                    self.schema, spec.tantivy_name, [(p - base, t) for t, p in tokens], slop=int(opts.get("slop", 0))
                )
        else:  # match_phrase_prefix
            if len(tokens) == 1:
                q = self.prefix_query(spec, tokens[0][0])
            else:
                base = tokens[0][1]
                q = tantivy.Query.phrase_prefix_query(
                    self.schema, spec.tantivy_name, [(p - base, t) for t, p in tokens]
                )
        return _boosted(q, opts.get("boost", 1))

    def _full_text(self, kind: str, body: Any) -> tantivy.Query:
        path, opts = self._single_field(kind, body, "query")
        allowed = self._MATCH_OPTS | ({"slop"} if kind.startswith("match_phrase") else set())
        self._check_opts(kind, opts, allowed)
        return self.match_field(path, opts, kind)

    def _match(self, body: Any) -> tantivy.Query:
        return self._full_text("match", body)

    def _match_phrase(self, body: Any) -> tantivy.Query:
        return self._full_text("match_phrase", body)

    def _match_phrase_prefix(self, body: Any) -> tantivy.Query:
        return self._full_text("match_phrase_prefix", body)

    def _match_bool_prefix(self, body: Any) -> tantivy.Query:
        return self._full_text("match_bool_prefix", body)

    def _expand_fields(self, fields: Any) -> list[tuple[str, float]]:
        if fields is None:
            fields = ["*"]
        if isinstance(fields, str):
            fields = [fields]
        if not isinstance(fields, list) or not fields:
            raise ParsingError(f"[multi_match] [fields] must be a non-empty list of field names, got {fields!r}")
        out: list[tuple[str, float]] = []
        for entry in fields:
            name, _, boost = str(entry).partition("^")
            try:
                weight = float(boost) if boost else 1.0
            except ValueError:
                raise ParsingError(f"[multi_match] bad boost in field [{entry}]") from None
            if "*" in name:
                matched = [
                    p
                    for p, s in self.mapping.fields.items()
                    if fnmatch.fnmatchcase(p, name) and s.is_text and s.kind != "sayt_anchor"
                ]
                out.extend((p, weight) for p in matched)
            else:
                out.append((name, weight))
        return out

    def _multi_match(self, body: Any) -> tantivy.Query:
        if not isinstance(body, dict) or "query" not in body:
            raise ParsingError("[multi_match] requires [query]")
        kind = str(body.get("type", "best_fields"))
        per_field = {
            "best_fields": "match",
            "most_fields": "match",
            "bool_prefix": "match_bool_prefix",
            "phrase": "match_phrase",
            "phrase_prefix": "match_phrase_prefix",
        }
        if kind not in per_field:
            raise ParsingError(
                f"[multi_match] type [{kind}] is not supported by the local search service; use one of "
                f"{', '.join(per_field)}"
            )
        opts = {k: v for k, v in body.items() if k not in ("fields", "type", "tie_breaker")}
        self._check_opts("multi_match", opts, self._MATCH_OPTS | {"slop"})
        clauses = []
        for path, weight in self._expand_fields(body.get("fields")):
            field_opts = {**opts, "boost": weight}
            spec = self.mapping.field(path)
            if spec is not None and not spec.is_text and kind != "best_fields" and kind != "most_fields":
                continue  # OpenSearch skips non-text fields for prefix/phrase types
            if spec is not None and not spec.is_text:
                field_opts["lenient"] = True if body.get("lenient") is None else body["lenient"]
            clauses.append(self.match_field(path, field_opts, per_field[kind]))
        if not clauses:
            return tantivy.Query.empty_query()
        if kind in ("most_fields", "bool_prefix"):
            q = clauses[0] if len(clauses) == 1 else tantivy.Query.boolean_query([(Occur.Should, c) for c in clauses])
        else:
            tie = float(body.get("tie_breaker", 0.0))
            q = clauses[0] if len(clauses) == 1 else tantivy.Query.disjunction_max_query(clauses, tie_breaker=tie)
        return _boosted(q, body.get("boost", 1))

    # -- term level ----------------------------------------------------------------------------

    def _prefix(self, body: Any) -> tantivy.Query:
        path, opts = self._single_field("prefix", body, "value")
        self._check_opts("prefix", opts, {"value", "boost", "case_insensitive", "_name"})
        spec = self._field(path, "prefix")
        if spec is None:
            return tantivy.Query.empty_query()
        ci = str(opts.get("case_insensitive", "false")).lower() == "true"
        return _boosted(self.prefix_query(spec, str(opts["value"]), case_insensitive=ci), opts.get("boost", 1))

    def _term(self, body: Any) -> tantivy.Query:
        path, opts = self._single_field("term", body, "value")
        self._check_opts("term", opts, {"value", "boost", "case_insensitive", "_name"})
        if path == "_id":
            return _boosted(tantivy.Query.term_query(self.schema, ID_FIELD, str(opts["value"])), opts.get("boost", 1))
        spec = self._field(path, "term")
        if spec is None:
            return tantivy.Query.empty_query()
        if str(opts.get("case_insensitive", "false")).lower() == "true":
            if not spec.is_text:
                raise ParsingError(
                    f"[term] case_insensitive is only supported on text and keyword fields, not [{path}]"
                )
            pattern = "(?i)" + rust_regex_escape(str(opts["value"]))
            q = tantivy.Query.const_score_query(tantivy.Query.regex_query(self.schema, spec.tantivy_name, pattern), 1.0)
        else:
            q = self._term_query(spec, opts["value"])
        return _boosted(q, opts.get("boost", 1))

    def _terms(self, body: Any) -> tantivy.Query:
        if not isinstance(body, dict):
            raise ParsingError(f"[terms] query malformed, expected an object, got {body!r}")
        fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
        if len(fields) != 1:
            raise ParsingError(f"[terms] query does not support multiple fields, found {sorted(fields)}")
        ((path, values),) = fields.items()
        if not isinstance(values, list):
            raise ParsingError(
                f"[terms] query on [{path}] needs an array of values (terms lookup is not supported "
                f"by the local search service), got {values!r}"
            )
        if path == "_id":
            return self._ids({"values": values})
        spec = self._field(path, "terms")
        if spec is None or not values:
            return tantivy.Query.empty_query()
        q = tantivy.Query.term_set_query(self.schema, spec.tantivy_name, [self._value(spec, v) for v in values])
        return _boosted(tantivy.Query.const_score_query(q, 1.0), body.get("boost", 1))

    def _ids(self, body: Any) -> tantivy.Query:
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, list):
            raise ParsingError("[ids] query needs [values], an array of ids")
        if not values:
            return tantivy.Query.empty_query()
        q = tantivy.Query.term_set_query(self.schema, ID_FIELD, [str(v) for v in values])
        return _boosted(tantivy.Query.const_score_query(q, 1.0), body.get("boost", 1))

    def _range(self, body: Any) -> tantivy.Query:
        if not isinstance(body, dict) or len(body) != 1:
            raise ParsingError("[range] query malformed: expected one field")
        ((path, opts),) = body.items()
        if not isinstance(opts, dict):
            raise ParsingError(f"[range] query on [{path}] expects an object of bounds, got {opts!r}")
        unknown = set(opts) - {"gt", "gte", "lt", "lte", "boost", "_name"}
        if unknown:
            raise ParsingError(f"[range] query does not support {sorted(unknown)} locally (gt, gte, lt, lte, boost)")
        spec = self._field(path, "range")
        if spec is None:
            return tantivy.Query.empty_query()
        if spec.kind in INTEGER_RANGES:
            ftype = tantivy.FieldType.Integer
        elif spec.kind in FLOAT_TYPES:
            ftype = tantivy.FieldType.Float
        else:
            raise ParsingError(
                f"[range] on [{path}] of type [{spec.kind}] is not supported by the local search service; "
                "only numeric fields"
            )
        lower_key = "gte" if "gte" in opts else "gt" if "gt" in opts else None
        upper_key = "lte" if "lte" in opts else "lt" if "lt" in opts else None
        lower = opts[lower_key] if lower_key else None
        upper = opts[upper_key] if upper_key else None
        if spec.kind in INTEGER_RANGES:
            # Integer bounds: a fractional bound rounds inwards, as OpenSearch does.
            lower = (
                None if lower is None else (math.ceil(float(lower)) if lower_key == "gte" else math.floor(float(lower)))
            )
            upper = (
                None if upper is None else (math.floor(float(upper)) if upper_key == "lte" else math.ceil(float(upper)))
            )
        else:
            lower = None if lower is None else float(lower)
            upper = None if upper is None else float(upper)
        q = tantivy.Query.range_query(
            self.schema,
            spec.tantivy_name,
            ftype,
            lower_bound=lower,
            upper_bound=upper,
            include_lower=lower_key != "gt",
            include_upper=upper_key != "lt",
        )
        return _boosted(tantivy.Query.const_score_query(q, 1.0), opts.get("boost", 1))

    def _exists(self, body: Any) -> tantivy.Query:
        if not isinstance(body, dict) or "field" not in body:
            raise ParsingError("[exists] query needs [field]")
        spec = self.mapping.field(str(body["field"]))
        if spec is None:
            return tantivy.Query.empty_query()
        if spec.is_text:
            q = tantivy.Query.regex_query(self.schema, spec.tantivy_name, ".*")
        else:
            q = tantivy.Query.exists_query(spec.tantivy_name)
        return _boosted(tantivy.Query.const_score_query(q, 1.0), body.get("boost", 1))

    # -- compound ------------------------------------------------------------------------------

    def _match_all(self, body: Any) -> tantivy.Query:
        boost = body.get("boost", 1) if isinstance(body, dict) else 1
        return tantivy.Query.const_score_query(tantivy.Query.all_query(), float(boost))

    def _bool(self, body: Any) -> tantivy.Query:
        if not isinstance(body, dict):
            raise ParsingError(f"[bool] query malformed, expected an object, got {body!r}")
        unknown = set(body) - {
            "must",
            "should",
            "filter",
            "must_not",
            "minimum_should_match",
            "boost",
            "_name",
            "adjust_pure_negative",
        }
        if unknown:
            raise ParsingError(f"[bool] query does not support {sorted(unknown)}")

        def clauses(key: str) -> list[tantivy.Query]:
            value = body.get(key, [])
            items = value if isinstance(value, list) else [value]
            return [self.translate(item) for item in items]

        must, should, filt, must_not = clauses("must"), clauses("should"), clauses("filter"), clauses("must_not")
        subs: list[tuple[tantivy.Occur, tantivy.Query]] = [(Occur.Must, q) for q in must]
        subs += [(Occur.Must, tantivy.Query.const_score_query(q, 0.0)) for q in filt]
        subs += [(Occur.MustNot, q) for q in must_not]
        msm_spec = body.get("minimum_should_match")
        needed = minimum_should_match(msm_spec, len(should)) if msm_spec is not None and should else 0
        if should:
            subs += [(Occur.Should, q) for q in should]
        if not must and not filt:
            if should:
                needed = max(needed, 1)
            else:
                # Only must_not (or nothing): everything else matches, score 0 (OpenSearch adds match_all).
                subs.append(
                    (Occur.Must, tantivy.Query.const_score_query(tantivy.Query.all_query(), 0.0 if must_not else 1.0))
                )
        if needed > len(should):
            return tantivy.Query.empty_query()
        q = tantivy.Query.boolean_query(subs, minimum_number_should_match=needed or None)
        return _boosted(q, body.get("boost", 1))
