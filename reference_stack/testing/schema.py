"""Strategies for every route of an API, derived from its openapi.yaml: a new route is property-tested
without new strategy code.

:func:`load_api` reads an OpenAPI 3.1 document (and, optionally, the stack description whose
``routes`` it must match); :func:`route_requests` draws, for one route or any route, a
payload-2.0 event (:func:`~reference_stack.testing.events.http_api_v2_event`) whose path
parameters, query parameters, headers and JSON body come from the operation's schemas through
hypothesis-jsonschema (install ``loadcheck[testing]``):

- ``valid=True``: every required parameter and field present, every value accepted by its schema
  (judged again with ``jsonschema`` and its format checker, so ``format: date`` means a real date);
- ``valid=False``: exactly one thing wrong, named in :attr:`RouteRequest.field`: a required
  parameter or body field missing, a field the schema does not allow (``additionalProperties:
  false``), a value its schema refuses, a body of the wrong JSON type, or a body that is not JSON.

Parameter values are sent as text (``limit=5``); a value is valid when the text, read as the
schema's type (integer, number, boolean, string), is. Path parameters are never empty and never
hold ``/``: API Gateway would not route such a request to the route at all. Parameters of
``in: cookie`` and array/object parameters are not supported (:class:`ConfigError` names them).
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from loadcheck.core.description import StackDescription
from loadcheck.core.errors import ConfigError
from reference_stack.testing.events import http_api_v2_events

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_SCALARS = ("string", "integer", "number", "boolean")


@dataclass(frozen=True, eq=False)  # hashed by identity: a drawn request maps each to its text
class Parameter:
    name: str
    location: str  # "path", "query" or "header"
    required: bool
    schema: dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """One route of the API: its parameters and JSON request body (``body_schema`` None: no body)."""

    route: str  # "GET /notes/{day}", as the stack description keys it
    method: str
    path: str
    parameters: tuple[Parameter, ...]
    body_schema: dict[str, Any] | None
    body_required: bool
    function: str | None  # the description's function key for the route, when a description was given


@dataclass(frozen=True)
class Api:
    """The operations of an openapi.yaml, keyed by route (``"METHOD /path"``)."""

    operations: dict[str, Operation]
    source: str

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(self.operations)


@dataclass(frozen=True)
class RouteRequest:
    """A drawn request: the payload-2.0 ``event`` and what went into it.

    ``valid`` False means exactly one thing is wrong, ``field`` names it (a parameter or body
    field; None when the body as a whole is wrong) and ``reason`` says what.
    """

    route: str
    event: dict[str, Any]
    valid: bool
    body: Any = None  # the JSON value sent (raw bytes when the body is deliberately not JSON)
    path_parameters: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    field: str | None = None
    reason: str = ""
    function: str | None = None


# ------------------------------------------------------------------------------------------
# Reading the document


def _inline(node: Any, doc: dict[str, Any], where: str, seen: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points to (refused when recursive)."""
    if isinstance(node, list):
        return [_inline(n, doc, where, seen) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if not ref.startswith("#/"):
            raise ConfigError(f"{where}: $ref {ref!r} is not local; only '#/...' references are supported")
        if ref in seen:
            raise ConfigError(f"{where}: $ref {ref!r} is recursive; strategies need a finite schema")
        target: Any = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or part not in target:
                raise ConfigError(f"{where}: $ref {ref!r} points at nothing; fix the reference")
            target = target[part]
        rest = {k: v for k, v in node.items() if k != "$ref"}
        resolved = _inline(target, doc, where, (*seen, ref))
        return {**resolved, **_inline(rest, doc, where, seen)} if isinstance(resolved, dict) else resolved
    return {k: _inline(v, doc, where, seen) for k, v in node.items()}


def _json_schema(schema: Any) -> Any:
    """The schema as plain JSON Schema: OpenAPI 3.0's ``nullable`` becomes a ``"null"`` type."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {k: v for k, v in schema.items() if k != "nullable"}
    for key in ("items", "not", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _json_schema(out[key])
    for key in ("properties", "patternProperties", "$defs"):
        if isinstance(out.get(key), dict):
            out[key] = {k: _json_schema(v) for k, v in out[key].items()}
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(out.get(key), list):
            out[key] = [_json_schema(v) for v in out[key]]
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _parameter(raw: dict[str, Any], where: str) -> Parameter:
    name, location = raw.get("name"), raw.get("in")
    if location not in ("path", "query", "header"):
        raise ConfigError(f"{where}: parameter {name!r} is in {location!r}; only path, query and header are supported")
    schema = _json_schema(raw.get("schema") or {"type": "string"})
    if schema.get("type") not in _SCALARS:
        raise ConfigError(
            f"{where}: parameter {name!r} has type {schema.get('type')!r}; give it one of {', '.join(_SCALARS)}"
        )
    return Parameter(str(name), location, bool(raw.get("required")) or location == "path", schema)


def load_api(openapi: str | Path, description: StackDescription | None = None) -> Api:
    """Read ``openapi`` (YAML or JSON); with ``description``, its routes must be the document's."""
    path = Path(openapi)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"cannot read the OpenAPI document {str(path)!r}: {e}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise ConfigError(f"{path}: not an OpenAPI document (no 'paths' object)")
    operations: dict[str, Operation] = {}
    for api_path, item in doc["paths"].items():
        item = _inline(item, doc, f"{path} {api_path}")
        shared = item.get("parameters", [])
        for method in _METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            route = f"{method.upper()} {api_path}"
            where = f"{path} {route}"
            by_key = {(p["in"], p["name"]): p for p in [*shared, *op.get("parameters", [])]}
            params = tuple(_parameter(p, where) for p in by_key.values())
            declared = {p.name for p in params if p.location == "path"}
            in_path = set(re.findall(r"\{([^}+]+)\+?\}", api_path))
            if declared != in_path:
                raise ConfigError(
                    f"{where}: path parameters {sorted(declared)} differ from the path's {sorted(in_path)}"
                )
            body = op.get("requestBody") or {}
            content = body.get("content") or {}
            media = next((m for m in content if m.split(";")[0].strip() == "application/json"), None)
            if content and media is None:
                raise ConfigError(
                    f"{where}: request body media types {sorted(content)}; only application/json is supported"
                )
            schema = _json_schema(content[media].get("schema") or {}) if media else None
            function = description.routes.get(route) if description else None
            operations[route] = Operation(
                route, method.upper(), api_path, params, schema, bool(body.get("required")), function
            )
    if description is not None and set(description.routes) != set(operations):
        only_desc = sorted(set(description.routes) - set(operations))
        only_doc = sorted(set(operations) - set(description.routes))
        raise ConfigError(
            f"{path}: the routes differ from the description {description.path}: only in the description {only_desc}, "
            f"only in openapi.yaml {only_doc}; write each route in both"
        )
    return Api(operations, str(path))


# ------------------------------------------------------------------------------------------
# Judging values


def _validator(schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker  # deferred: optional, the [testing] extra

    return Draft202012Validator(schema, format_checker=FormatChecker())


def _from_schema(schema: dict[str, Any]) -> SearchStrategy[Any]:
    """Values ``schema`` accepts (each one checked again with ``jsonschema``)."""
    check = _validator(schema)
    return _generate(schema).filter(check.is_valid)


def _generate(schema: Any) -> SearchStrategy[Any]:
    """Objects, arrays and unions are built here, every other schema by hypothesis-jsonschema.

    Its own object strategy calls a Hypothesis internal (``conjecture.utils.many().more()``) that
    current Hypothesis releases no longer have, so objects never reach it.
    """
    try:
        from hypothesis_jsonschema import from_schema  # deferred: optional, the [testing] extra
    except ImportError as e:
        raise ConfigError(
            "strategies from openapi.yaml need hypothesis-jsonschema: pip install 'loadcheck[testing]'"
        ) from e
    if not isinstance(schema, dict):
        return _ANY_JSON
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            base = {k: v for k, v in schema.items() if k != key}
            return st.one_of([_generate({**base, **branch}) for branch in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_generate({**schema, "type": k}) for k in kind])
    if kind == "object" or (kind is None and "properties" in schema):
        return _objects(schema)
    if kind == "array":
        low = int(schema.get("minItems", 0))
        return st.lists(_generate(schema.get("items", {})), min_size=low, max_size=int(schema.get("maxItems", low + 4)))
    if kind is None and "enum" not in schema and "const" not in schema:
        return _ANY_JSON
    return from_schema(schema)


@st.composite
def _objects(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = schema.get("properties") or {}
    required = list(schema.get("required") or [])
    out: dict[str, Any] = {}
    for name, sub in props.items():
        if name in required or draw(st.booleans()):
            out[name] = draw(_generate(sub))
    for name in required:
        if name not in out:
            out[name] = draw(_ANY_JSON)
    extra = schema.get("additionalProperties", True)
    if extra is not False:
        names = st.text(max_size=8).filter(lambda n: n not in props)
        more = draw(st.dictionaries(names, _generate(extra if isinstance(extra, dict) else {}), max_size=2))
        out = {**more, **out}
    return out


def _as_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) or value is None else str(value)


def _read_text(text: str, schema: dict[str, Any]) -> Any:
    """A parameter's text read as its schema's type (unchanged when it is not of that type)."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if kind == "number":
        try:
            return float(text) if re.fullmatch(r"-?[0-9.eE+-]+", text) else text
        except ValueError:
            return text
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


def _routable(p: Parameter, text: str) -> bool:
    if p.location == "path":
        return text != "" and "/" not in text
    if p.location == "header":
        return text == text.strip() and all(c in string.printable and c not in "\r\n\t\x0b\x0c" for c in text)
    return True


def _valid_text(p: Parameter) -> SearchStrategy[str]:
    check = _validator(p.schema)
    return (
        _from_schema(p.schema)
        .map(_as_text)
        .filter(lambda t: _routable(p, t) and check.is_valid(_read_text(t, p.schema)))
    )


def _invalid_text(p: Parameter) -> SearchStrategy[str]:
    check = _validator(p.schema)
    edges: list[str] = ["", " ", "null", "true", "-1", "0", "1.5", "x" * (int(p.schema.get("maxLength", 0)) + 1)]
    for bound, step in (("minimum", -1), ("maximum", 1), ("exclusiveMinimum", 0), ("exclusiveMaximum", 0)):
        if isinstance(p.schema.get(bound), (int, float)):
            edges.append(_as_text(p.schema[bound] + step))
    pool = st.sampled_from(edges) | st.text(max_size=20)
    return pool.filter(lambda t: _routable(p, t) and not check.is_valid(_read_text(t, p.schema)))


_ANY_JSON: SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _invalid_json(schema: dict[str, Any]) -> SearchStrategy[Any]:
    """JSON values ``schema`` refuses."""
    check = _validator(schema)
    edges: list[Any] = []
    if isinstance(schema.get("maxLength"), int):
        edges.append("x" * (schema["maxLength"] + 1))
    if isinstance(schema.get("minLength"), int) and schema["minLength"] > 0:
        edges.append("")
    for bound, step in (("minimum", -1), ("maximum", 1)):
        if isinstance(schema.get(bound), (int, float)):
            edges.append(schema[bound] + step)
    pool = (st.sampled_from(edges) | _ANY_JSON) if edges else _ANY_JSON
    return pool.filter(lambda v: not check.is_valid(v))


def _constrained(schema: dict[str, Any]) -> bool:
    keys = ("type", "enum", "const", "anyOf", "oneOf", "allOf", "not", "pattern", "format")
    return any(k in schema for k in keys)


# ------------------------------------------------------------------------------------------
# Requests


@st.composite
def _route_request(draw: st.DrawFn, op: Operation, valid: bool) -> RouteRequest:
    values: dict[Parameter, str] = {}
    for p in op.parameters:
        if p.required or draw(st.booleans()):
            values[p] = draw(_valid_text(p))
    body: Any = draw(_from_schema(op.body_schema)) if op.body_schema is not None else None
    send_body = op.body_schema is not None and (op.body_required or draw(st.booleans()))
    wrong_field: str | None = None
    reason = ""
    raw_body: bytes | None = None
    if not valid:
        kinds: list[tuple[str, Any]] = []
        kinds += [("missing-param", p) for p in op.parameters if p.required and p.location != "path"]
        kinds += [("bad-param", p) for p in op.parameters if _constrained(p.schema)]
        if op.body_schema is not None:
            kinds += [("not-json", None)]
            if _constrained(op.body_schema):
                kinds += [("body-type", None)]
            props = op.body_schema.get("properties") or {}
            if isinstance(body, dict):
                kinds += [("missing-field", n) for n in op.body_schema.get("required", [])]
                kinds += [("bad-field", n) for n, s in props.items() if _constrained(s)]
                if op.body_schema.get("additionalProperties") is False:
                    kinds += [("unknown-field", None)]
        assert kinds, "route_requests keeps only operations that have invalid requests"
        kind, what = draw(st.sampled_from(kinds))
        if kind == "missing-param":
            del values[what]
            wrong_field, reason = what.name, f"required {what.location} parameter {what.name!r} is missing"
        elif kind == "bad-param":
            values[what] = draw(_invalid_text(what))
            wrong_field, reason = what.name, f"{what.location} parameter {what.name!r} breaks its schema"
        elif kind == "not-json":
            raw_body = draw(st.sampled_from([b"{", b"not json", b"{'a': 1}", b"[1,]", b'{"a": NaN}', b"\xff\xfe"]))
            send_body, reason = True, "the body is not JSON"
        elif kind == "body-type":
            body, send_body, reason = draw(_invalid_json(op.body_schema or {})), True, "the body breaks the schema"
        elif kind == "missing-field":
            body = {k: v for k, v in body.items() if k != what}
            send_body, wrong_field, reason = True, what, f"required field {what!r} is missing"
        elif kind == "bad-field":
            body = {**body, what: draw(_invalid_json((op.body_schema or {})["properties"][what]))}
            send_body, wrong_field, reason = True, what, f"field {what!r} breaks its schema"
        else:
            known = set((op.body_schema or {}).get("properties") or {})
            extra = draw(st.text(string.ascii_letters, min_size=1, max_size=10).filter(lambda s: s not in known))
            body = {**body, extra: "x"}
            send_body, wrong_field, reason = True, extra, f"field {extra!r} is not in the schema"
    path_params = {p.name: t for p, t in values.items() if p.location == "path"}
    query = {p.name: t for p, t in values.items() if p.location == "query"}
    headers = {p.name.lower(): t for p, t in values.items() if p.location == "header"}
    concrete = re.sub(r"\{([^}+]+)\+?\}", lambda m: quote(path_params[m.group(1)], safe=""), op.path)
    payload: bytes | None = raw_body if raw_body is not None else (json.dumps(body).encode() if send_body else None)
    event = draw(
        http_api_v2_events(
            method=op.method,
            path=concrete,
            body=payload,
            content_type="application/json" if payload is not None else None,
            query={k: [v] for k, v in query.items()},
            headers={k: [v] for k, v in headers.items()},
            route_key=op.route,
            path_parameters=path_params or None,
        )
    )
    return RouteRequest(
        route=op.route,
        event=event,
        valid=valid,
        body=raw_body if raw_body is not None else (body if send_body else None),
        path_parameters=path_params,
        query=query,
        headers=headers,
        field=wrong_field,
        reason=reason,
        function=op.function,
    )


def route_requests(api: Api, route: str | None = None, *, valid: bool | None = True) -> SearchStrategy[RouteRequest]:
    """Requests for ``route`` (any route of ``api`` when None): valid ones, invalid ones
    (``valid=False``, exactly one thing wrong) or both (``valid=None``)."""
    if route is not None and route not in api.operations:
        raise ConfigError(f"route {route!r} is not in {api.source}; its routes are {', '.join(api.routes)}")
    ops = [api.operations[route]] if route is not None else list(api.operations.values())
    pairs = [(op, flag) for op in ops for flag in ([True, False] if valid is None else [valid])]
    pairs = [(op, flag) for op, flag in pairs if flag or _can_be_invalid(op)]
    if not pairs:
        raise ConfigError(f"{route or api.source}: the schema accepts every request; there is no invalid one to draw")
    return st.one_of(*[_route_request(op, flag) for op, flag in pairs])


def _can_be_invalid(op: Operation) -> bool:
    return op.body_schema is not None or any(
        (p.required and p.location != "path") or _constrained(p.schema) for p in op.parameters
    )
