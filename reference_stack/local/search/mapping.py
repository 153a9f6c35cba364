"""Index mappings: OpenSearch field types mapped onto a tantivy schema, and documents onto
tantivy documents.

Each mapped field (and each subfield: multi-field ``fields``, ``search_as_you_type``'s
``_2gram``/``_3gram``/``_index_prefix``) becomes one tantivy field named ``f<n>``; the
mapping keeps the OpenSearch path → :class:`FieldSpec` table the query translator reads.
Text is analyzed here (:mod:`.analysis`) and handed to tantivy pre-tokenized.

Field types (docs/aws-behaviour.md §9.5 and the OpenSearch mapping reference):
text, keyword, long/integer/short/byte, float/double/half_float, boolean, search_as_you_type
(``max_shingle_size`` 2..4, default 3), completion, object (``properties``).

Departures from OpenSearch (docs/fidelity.md, section search):

- Dynamic mapping (``dynamic: true``, the default) maps a new string as text with a
  ``.keyword`` subfield (ignore_above 256), an integer as long, a fraction as float, a boolean
  as boolean, an object by its properties, as OpenSearch does, but without date detection: a
  date-like string becomes text, not date. ``false`` keeps new fields in ``_source`` only;
  ``strict`` refuses the document.
- Unsupported types (date, nested, geo_point, ...) are refused at index creation, naming them.
- ``search_as_you_type`` also gets a hidden ``._anchor`` subfield (edge n-grams of the whole
  value's start) used only to rank a prefix that begins the value above one found later in it;
  OpenSearch scores both prefix matches the same (constant score).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import tantivy

from .analysis import Analyzer, Token, build_analyzers, shingles
from .errors import MapperParsingError, SearchApiError

POSITION_INCREMENT_GAP = 100  # between the values of an array in a text field (OpenSearch default)
PREFIX_MIN, PREFIX_MAX = 1, 20  # edge n-gram bounds of search_as_you_type's _index_prefix
INTEGER_RANGES = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-128, 127),
}
FLOAT_TYPES = ("float", "double", "half_float", "scaled_float")
TEXT_KINDS = ("text", "keyword", "search_as_you_type", "sayt_shingle", "sayt_prefix", "sayt_anchor")
ID_FIELD, SOURCE_FIELD = "_id", "_source"


@dataclass(frozen=True)
class FieldSpec:
    """One searchable field. ``kind`` is the OpenSearch type, or for search_as_you_type's
    subfields ``sayt_shingle`` (``_2gram``...), ``sayt_prefix`` (``_index_prefix``) or
    ``sayt_anchor`` (hidden)."""

    path: str
    kind: str
    tantivy_name: str
    source_path: str
    index_analyzer: Analyzer | None = None
    search_analyzer: Analyzer | None = None
    shingle_size: int = 0
    root: str | None = None  # search_as_you_type root path, for its subfields and itself
    ignore_above: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_text(self) -> bool:
        return self.kind in TEXT_KINDS

    def query_tokens(self, text: str, analyzer: Analyzer | None = None) -> list[Token]:
        if self.kind == "keyword":
            return [(text, 0)]
        base = analyzer or self.search_analyzer
        assert base is not None
        tokens = base.analyze(text)
        if self.kind == "sayt_shingle":
            return shingles(tokens, self.shingle_size)
        if self.kind == "sayt_prefix":
            return shingles(tokens, self.shingle_size, filler=True)
        return tokens


@dataclass
class Mapping:
    """What an index knows about its fields; built once at index creation."""

    properties: dict[str, Any]
    dynamic: str
    analyzers: dict[str, Analyzer]
    fields: dict[str, FieldSpec]
    completions: dict[str, Analyzer]  # completion field path -> its analyzer
    schema: tantivy.Schema

    def field(self, path: str) -> FieldSpec | None:
        return self.fields.get(path)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"properties": self.properties}
        if self.dynamic != "true":
            out["dynamic"] = self.dynamic
        return out


def _analyzer(name: Any, analyzers: dict[str, Analyzer], path: str) -> Analyzer:
    if name not in analyzers:
        raise MapperParsingError(f"analyzer [{name}] has not been configured in mappings (field [{path}])")
    return analyzers[name]


def build_mapping(mappings: dict[str, Any], settings: dict[str, Any]) -> Mapping:
    """Validate ``mappings``/``settings`` of ``PUT /<index>`` and build the tantivy schema."""
    if not isinstance(mappings, dict):
        raise MapperParsingError(f"Failed to parse mapping: mappings must be an object, got {mappings!r}")
    unknown = set(mappings) - {"properties", "dynamic", "_source"}
    if unknown:
        raise MapperParsingError(f"Root mapping definition has unsupported parameters: {sorted(unknown)}")
    analysis = (settings.get("index", {}) or {}).get("analysis") or settings.get("analysis") or {}
    analyzers = build_analyzers(analysis)
    default = analyzers.get("default", analyzers["standard"])
    dynamic = str(mappings.get("dynamic", "true")).lower()
    if dynamic not in ("true", "false", "strict"):
        raise MapperParsingError(f"Could not convert [dynamic] to boolean or strict: [{dynamic}]")
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(ID_FIELD, stored=True, tokenizer_name="raw")
    builder.add_bytes_field(SOURCE_FIELD, stored=True, indexed=False)
    fields: dict[str, FieldSpec] = {}
    completions: dict[str, Analyzer] = {}

    def add(spec: FieldSpec) -> None:
        fields[spec.path] = spec
        if spec.is_text:
            builder.add_text_field(spec.tantivy_name, stored=False, tokenizer_name="raw", index_option="position")
        elif spec.kind in INTEGER_RANGES:
            builder.add_integer_field(spec.tantivy_name, indexed=True, fast=True)
        elif spec.kind in FLOAT_TYPES:
            builder.add_float_field(spec.tantivy_name, indexed=True, fast=True)
        elif spec.kind == "boolean":
            builder.add_boolean_field(spec.tantivy_name, indexed=True, fast=True)

    def name() -> str:
        return f"f{len(fields)}"

    def walk(props: dict[str, Any], prefix: str) -> None:
        if not isinstance(props, dict):
            raise MapperParsingError(f"properties of [{prefix or '_doc'}] must be an object")
        for key, definition in props.items():
            path = prefix + key
            if not isinstance(definition, dict):
                raise MapperParsingError(f"Expected map for property [{path}] but got {definition!r}")
            kind = definition.get("type", "object" if "properties" in definition else None)
            if kind == "object":
                walk(definition.get("properties", {}), path + ".")
                continue
            add_field(path, kind, definition, source_path=path)
            for sub, subdef in (definition.get("fields") or {}).items():
                if kind in ("search_as_you_type", "completion"):
                    raise MapperParsingError(f"multi-fields under [{path}] of type [{kind}] are not supported locally")
                add_field(f"{path}.{sub}", subdef.get("type"), subdef, source_path=path)

    def add_field(path: str, kind: Any, d: dict[str, Any], *, source_path: str) -> None:
        index_an = _analyzer(d["analyzer"], analyzers, path) if "analyzer" in d else default
        search_an = _analyzer(d["search_analyzer"], analyzers, path) if "search_analyzer" in d else index_an
        if kind == "text":
            add(FieldSpec(path, "text", name(), source_path, index_an, search_an))
        elif kind == "keyword":
            ignore_above = d.get("ignore_above")
            add(
                FieldSpec(
                    path, "keyword", name(), source_path, ignore_above=int(ignore_above) if ignore_above else None
                )
            )
        elif kind in INTEGER_RANGES or kind in FLOAT_TYPES or kind == "boolean":
            add(FieldSpec(path, kind, name(), source_path))
        elif kind == "search_as_you_type":
            size = int(d.get("max_shingle_size", 3))
            if not 2 <= size <= 4:
                raise MapperParsingError(f"[max_shingle_size] must be at least [2] and at most [4], got [{size}]")
            add(
                FieldSpec(
                    path,
                    "search_as_you_type",
                    name(),
                    source_path,
                    index_an,
                    search_an,
                    root=path,
                    extra={"max_shingle_size": size},
                )
            )
            for n in range(2, size + 1):
                add(
                    FieldSpec(
                        f"{path}._{n}gram",
                        "sayt_shingle",
                        name(),
                        source_path,
                        index_an,
                        search_an,
                        shingle_size=n,
                        root=path,
                    )
                )
            add(
                FieldSpec(
                    f"{path}._index_prefix",
                    "sayt_prefix",
                    name(),
                    source_path,
                    index_an,
                    search_an,
                    shingle_size=size,
                    root=path,
                )
            )
            add(FieldSpec(f"{path}._anchor", "sayt_anchor", name(), source_path, index_an, search_an, root=path))
        elif kind == "completion":
            completions[path] = _analyzer(d.get("analyzer", "simple"), analyzers, path)
        elif kind is None:
            raise MapperParsingError(f"No type specified for field [{path}]")
        else:
            raise MapperParsingError(
                f"No handler for type [{kind}] declared on field [{path}]: the local search service supports text, "
                "keyword, long, integer, short, byte, float, double, half_float, boolean, search_as_you_type, "
                "completion and object"
            )

    walk(mappings.get("properties", {}), "")
    return Mapping(
        properties=mappings.get("properties", {}),
        dynamic=dynamic,
        analyzers=analyzers,
        fields=fields,
        completions=completions,
        schema=builder.build(),
    )


# ---------------------------------------------------------------------------------------------
# Documents


def stored_id(doc: tantivy.Document) -> str:
    return str(doc.get_first(ID_FIELD))


def stored_source(doc: tantivy.Document) -> dict[str, Any]:
    raw = doc.get_first(SOURCE_FIELD)
    return dict(json.loads(raw)) if raw is not None else {}


def hit_count(result: tantivy.SearchResult) -> int:
    """``SearchResult.count`` (present when searching with ``count=True``; missing from tantivy's stub)."""
    return int(getattr(result, "count", 0) or 0)


def source_values(source: dict[str, Any], path: str) -> list[Any]:
    """Every value at a dotted ``path`` of ``_source``, arrays flattened (objects in arrays too)."""
    nodes: list[Any] = [source]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            for item in node if isinstance(node, list) else [node]:
                if isinstance(item, dict) and part in item:
                    nxt.append(item[part])
        nodes = nxt
    out: list[Any] = []

    def flat(v: Any) -> Iterator[Any]:
        if isinstance(v, list):
            for x in v:
                yield from flat(x)
        elif v is not None:
            yield v

    for n in nodes:
        out.extend(flat(n))
    return out


def _bad_value(spec: FieldSpec, doc_id: str, value: Any) -> SearchApiError:
    return MapperParsingError(
        f"failed to parse field [{spec.path}] of type [{spec.kind}] in document with id "
        f"'{doc_id}'. Preview of field's value: '{value}'"
    )


def _tokens_for(spec: FieldSpec, texts: list[str]) -> list[Token]:
    """Index-time tokens of a text-like field over all values, with the array position gap."""
    out: list[Token] = []
    base = 0
    for text in texts:
        if spec.kind == "keyword":
            tokens: list[Token] = [(text, 0)]
        else:
            assert spec.index_analyzer is not None
            analyzed = spec.index_analyzer.analyze(text)
            if spec.kind == "sayt_shingle":
                tokens = shingles(analyzed, spec.shingle_size)
            elif spec.kind == "sayt_prefix":
                tokens = [
                    (s[:n], p)
                    for s, p in shingles(analyzed, spec.shingle_size, filler=True)
                    for n in range(PREFIX_MIN, min(PREFIX_MAX, len(s)) + 1)
                ]
            elif spec.kind == "sayt_anchor":
                whole = " ".join(t for t, _ in analyzed)
                tokens = [(whole[:n], 0) for n in range(PREFIX_MIN, min(PREFIX_MAX, len(whole)) + 1)]
            else:
                tokens = analyzed
        out.extend((t, base + p) for t, p in tokens)
        if out:
            base = out[-1][1] + POSITION_INCREMENT_GAP
    return out


def _coerce_number(spec: FieldSpec, doc_id: str, value: Any) -> int | float:
    if isinstance(value, bool):
        raise _bad_value(spec, doc_id, value)
    try:
        number = float(value) if isinstance(value, str) else value
    except ValueError:
        raise _bad_value(spec, doc_id, value) from None
    if not isinstance(number, int | float) or (isinstance(number, float) and not math.isfinite(number)):
        raise _bad_value(spec, doc_id, value)
    if spec.kind in INTEGER_RANGES:
        low, high = INTEGER_RANGES[spec.kind]
        if isinstance(number, float):
            if number != int(number) and isinstance(value, str):
                raise _bad_value(spec, doc_id, value)
            number = int(number)  # OpenSearch truncates a fractional value for integer types
        if not low <= number <= high:
            raise MapperParsingError(
                f"failed to parse field [{spec.path}] of type [{spec.kind}] in document with id "
                f"'{doc_id}'. Preview of field's value: '{value}': out of range for {spec.kind}"
            )
        return number
    return float(number)


def _coerce_bool(spec: FieldSpec, doc_id: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    if value == "":
        return False
    raise _bad_value(spec, doc_id, value)


def to_document(mapping: Mapping, doc_id: str, source: dict[str, Any]) -> tantivy.Document:
    """The tantivy document for ``source``; raises MapperParsingError naming a bad value."""
    if mapping.dynamic == "strict":
        _check_strict(mapping, source, "")
    doc = tantivy.Document()
    doc.add_text(ID_FIELD, doc_id)
    doc.add_bytes(SOURCE_FIELD, json.dumps(source, separators=(",", ":")).encode())
    for spec in mapping.fields.values():
        values = source_values(source, spec.source_path)
        if not values:
            continue
        if spec.is_text:
            texts = []
            for v in values:
                if isinstance(v, dict):
                    raise MapperParsingError(
                        f"failed to parse field [{spec.path}] of type [{spec.kind}] in document "
                        f"with id '{doc_id}'. Preview of field's value: '{v}'"
                    )
                text = ("true" if v else "false") if isinstance(v, bool) else str(v)
                if spec.ignore_above is not None and len(text) > spec.ignore_above:
                    continue
                texts.append(text)
            tokens = _tokens_for(spec, texts)
            if tokens:
                doc.add_pre_tokenized_text(
                    spec.tantivy_name,
                    tantivy.PreTokenizedString(" ".join(texts), [tantivy.Token(t, p, 0, len(t)) for t, p in tokens]),
                )
        elif spec.kind in INTEGER_RANGES:
            for v in values:
                doc.add_integer(spec.tantivy_name, int(_coerce_number(spec, doc_id, v)))
        elif spec.kind in FLOAT_TYPES:
            for v in values:
                doc.add_float(spec.tantivy_name, float(_coerce_number(spec, doc_id, v)))
        elif spec.kind == "boolean":
            for v in values:
                doc.add_boolean(spec.tantivy_name, _coerce_bool(spec, doc_id, v))
    for path in mapping.completions:
        completion_inputs(mapping, path, doc_id, source)  # validates the shape now, not at suggest time
    return doc


def _dynamic_type(value: Any) -> dict[str, Any] | None:
    if isinstance(value, list):
        for item in value:
            if item is not None:
                return _dynamic_type(item)
        return None
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    if isinstance(value, dict):
        props = {k: t for k, v in value.items() if (t := _dynamic_type(v)) is not None}
        return {"properties": props}
    return None


def dynamic_update(properties: dict[str, Any], source: dict[str, Any]) -> dict[str, Any] | None:
    """The properties extended with ``source``'s unmapped fields (OpenSearch ``dynamic: true``),
    or None when nothing is new."""
    changed = False

    def merge(props: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
        nonlocal changed
        out = dict(props)
        for key, value in node.items():
            existing = out.get(key)
            if existing is None:
                new = _dynamic_type(value)
                if new is not None and (new.get("properties") != {} or "type" in new):
                    out[key] = new
                    changed = True
            elif "properties" in existing and "type" not in existing:
                objects = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]
                merged = existing
                for obj in objects:
                    merged = {**merged, "properties": merge(merged.get("properties", {}), obj)}
                out[key] = merged
        return out

    result = merge(properties, source)
    return result if changed else None


def _check_strict(mapping: Mapping, source: dict[str, Any], prefix: str) -> None:
    known = set(mapping.fields) | set(mapping.completions)
    for key, value in source.items():
        path = prefix + key
        if path in known:
            continue
        if isinstance(value, dict) and any(k.startswith(path + ".") for k in known):
            _check_strict(mapping, value, path + ".")
            continue
        raise SearchApiError(
            400,
            "strict_dynamic_mapping_exception",
            f"mapping set to strict, dynamic introduction of [{key}] within [{prefix.rstrip('.') or '_doc'}] is not allowed",
        )


def completion_inputs(mapping: Mapping, path: str, doc_id: str, source: dict[str, Any]) -> list[tuple[str, str, int]]:
    """``(analyzed input, input as written, weight)`` for a completion field of one document."""
    out: list[tuple[str, str, int]] = []
    analyzer = mapping.completions[path]
    for value in source_values(source, path):
        inputs: list[Any]
        if isinstance(value, str):
            inputs, weight = [value], 1
        elif isinstance(value, dict):
            raw = value.get("input")
            inputs = raw if isinstance(raw, list) else [raw]
            weight = value.get("weight", 1)
            if isinstance(weight, bool) or not isinstance(weight, int | str) or not str(weight).lstrip("-").isdigit():
                raise MapperParsingError(
                    f"failed to parse [{path}]: weight must be an integer, but was [{weight}] (document '{doc_id}')"
                )
            weight = int(weight)
            if weight < 0:
                raise MapperParsingError(f"failed to parse [{path}]: weight must be >= 0, but was [{weight}]")
        else:
            raise MapperParsingError(
                f"failed to parse [{path}]: expected text or object, got [{value}] (document '{doc_id}')"
            )
        for text in inputs:
            if not isinstance(text, str):
                raise MapperParsingError(f"failed to parse [{path}]: input must be text, got [{text}]")
            # max_input_length 50 (OpenSearch default) limits what is indexed, not what is returned.
            out.append((" ".join(analyzer.terms(text[:50])), text, weight))
    return out
