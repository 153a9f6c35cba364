"""The OpenSearch REST API (the wire protocol), over the :class:`~.engine.Engine` model.

:class:`Api` maps one HTTP request (method, path, query string, body) to one response
(status, JSON body); it knows nothing of sockets or SigV4 (see :mod:`.server`, :mod:`.auth`).

Endpoints: ``GET|HEAD /``, ``GET /_cluster/health[/<index>]``, ``PUT|GET|HEAD|DELETE /<index>``,
``GET /<index>/_mapping``, ``GET /<index>/_settings``, ``POST|PUT /_bulk``, ``POST|PUT /<index>/_bulk``,
``PUT|POST /<index>/_doc/<id>``, ``POST /<index>/_doc``, ``GET|HEAD|DELETE /<index>/_doc/<id>``,
``PUT|POST /<index>/_create/<id>``, ``POST /<index>/_update/<id>``, ``GET|POST /<index>/_search``,
``GET|POST /<index>/_count``, ``GET|POST [/<index>]/_refresh``.

Departures from OpenSearch (docs/fidelity.md, section search):

- Writing a document to a missing index creates it with default settings and dynamic
  mappings, as OpenSearch's ``action.auto_create_index`` default does (see :mod:`.mapping` for
  dynamic mapping); ``_update`` and ``delete`` on a missing index answer 404.
- One index per request: comma lists, wildcards, ``_all``, aliases and ``/_search`` over every
  index are refused (400 illegal_argument_exception naming the fix).
- Unknown URL parameters are refused as OpenSearch does; ``pretty`` indents, ``human``,
  ``error_trace``, ``timeout``, ``master_timeout``, ``cluster_manager_timeout``,
  ``wait_for_active_shards``, ``routing``, ``preference``, ``search_type``, ``request_cache``
  are accepted and ignored; ``filter_path`` is refused.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote

from .bulk import bulk as run_bulk
from .engine import Engine, SearchIndex
from .errors import IllegalArgument, ParsingError, SearchApiError
from .searching import SearchRequest, SourceFilter, count
from .wire import Request, Response, json_body, refresh_mode

__all__ = ["Api", "Request", "Response"]

IGNORED_PARAMS = {
    "pretty",
    "human",
    "error_trace",
    "timeout",
    "master_timeout",
    "cluster_manager_timeout",
    "wait_for_active_shards",
    "routing",
    "preference",
    "search_type",
    "request_cache",
    "allow_no_indices",
    "ignore_unavailable",
    "expand_wildcards",
    "format",
}
SEARCH_PARAMS = {
    "size",
    "from",
    "_source",
    "_source_includes",
    "_source_excludes",
    "track_total_hits",
    "rest_total_hits_as_int",
    "version",
}
WRITE_PARAMS = {"refresh", "op_type"}


class Api:
    """Routes OpenSearch REST requests to the engine."""

    def __init__(
        self,
        *,
        engine: Engine,
        domain_name: str,
        account_id: str,
        engine_version: str = "OpenSearch_2.19",
        allow_explicit_index: bool = True,
    ) -> None:
        self.engine = engine
        self.allow_explicit_index = allow_explicit_index
        self.domain_name = domain_name
        self.account_id = account_id
        number = engine_version.split("_", 1)[-1]
        self.version_number = number if number.count(".") >= 2 else number + ".0"
        self.cluster_uuid = secrets.token_urlsafe(16)[:22]
        self.node_name = secrets.token_hex(16)

    # -- dispatch ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except SearchApiError as exc:
            return Response(exc.status, exc.body())

    def _dispatch(self, req: Request) -> Response:
        method = req.method.upper()
        parts = [unquote(p) for p in req.path.split("?", 1)[0].split("/") if p]
        params = dict(parse_qsl(req.query, keep_blank_values=True))
        if "filter_path" in params:
            raise IllegalArgument(
                "[filter_path] is not supported by the local search service; filter the response on the client"
            )
        routes: list[tuple[str, Callable[[], Response], set[str]]] = self._routes(parts, req, params)
        for route_method, handler, allowed_params in routes:
            if route_method == method or (route_method == "GET" and method == "HEAD" and not parts):
                unknown = set(params) - allowed_params - IGNORED_PARAMS
                if unknown:
                    raise IllegalArgument(
                        f"request [/{'/'.join(parts)}] contains unrecognized parameter: [{sorted(unknown)[0]}]"
                    )
                return handler()
        if routes:
            allowed = sorted({m for m, _, _ in routes})
            return Response(
                405,
                {
                    "error": f"Incorrect HTTP method for uri [/{'/'.join(parts)}] and method [{method}], "
                    f"allowed: [{', '.join(allowed)}]",
                    "status": 405,
                },
            )
        return Response(
            400, {"error": f"no handler found for uri [/{'/'.join(parts)}] and method [{method}]", "status": 400}
        )

    def _routes(
        self, parts: list[str], req: Request, params: dict[str, str]
    ) -> list[tuple[str, Callable[[], Response], set[str]]]:
        n = len(parts)
        if n == 0:
            return [("GET", self._info, set())]
        first = parts[0]
        if first == "_cluster" and n >= 2 and parts[1] == "health" and n <= 3:
            return [
                (
                    "GET",
                    lambda: self._health(parts[2] if n == 3 else None, params),
                    {
                        "wait_for_status",
                        "level",
                        "local",
                        "wait_for_no_relocating_shards",
                        "wait_for_no_initializing_shards",
                        "wait_for_nodes",
                        "wait_for_events",
                    },
                )
            ]
        if first == "_bulk" and n == 1:
            bulk_route = (
                lambda: Response(
                    *run_bulk(self.engine, None, req.body, params, allow_explicit_index=self.allow_explicit_index)
                ),
                WRITE_PARAMS | {"_source"},
            )
            return [("POST", *bulk_route), ("PUT", *bulk_route)]
        if first == "_cat" and n == 2 and parts[1] == "indices":
            return [("GET", lambda: self._cat_indices(params), {"v", "h", "s", "bytes"})]
        if first == "_refresh" and n == 1:
            return [("POST", self._refresh_all, set()), ("GET", self._refresh_all, set())]
        if first in ("_search", "_count", "_msearch", "_mapping", "_all") or first.startswith("_"):
            if first in ("_search", "_count", "_mapping"):
                raise IllegalArgument(
                    f"/{first} over every index is not supported by the local search service; "
                    f"name the index: /<index>/{first}"
                )
            return []
        index_name = first
        self._check_single_index(index_name)
        if n == 1:
            return [
                ("PUT", lambda: self._create(index_name, req.body), set()),
                ("GET", lambda: self._get_index(index_name), set()),
                ("HEAD", lambda: self._head_index(index_name), set()),
                ("DELETE", lambda: self._delete_index(index_name), set()),
            ]
        op = parts[1]
        if n == 2:
            if op == "_mapping":
                return [
                    ("GET", lambda: self._get_mapping(index_name), set()),
                    ("PUT", lambda: self._refuse("PUT /<index>/_mapping (changing a mapping)"), set()),
                    ("POST", lambda: self._refuse("POST /<index>/_mapping (changing a mapping)"), set()),
                ]
            if op == "_settings":
                return [("GET", lambda: self._get_settings(index_name), set())]
            if op == "_bulk":
                bulk_route = (
                    lambda: Response(
                        *run_bulk(
                            self.engine, index_name, req.body, params, allow_explicit_index=self.allow_explicit_index
                        )
                    ),
                    WRITE_PARAMS | {"_source"},
                )
                return [("POST", *bulk_route), ("PUT", *bulk_route)]
            if op == "_doc":
                return [
                    (
                        "POST",
                        lambda: self._write(index_name, secrets.token_urlsafe(15)[:20], req.body, params),
                        WRITE_PARAMS,
                    )
                ]
            if op == "_search":
                search = (lambda: self._search(index_name, req.body, params), SEARCH_PARAMS)
                return [("GET", *search), ("POST", *search)]
            if op == "_count":
                c: tuple[Callable[[], Response], set[str]] = (lambda: self._count(index_name, req.body), set())
                return [("GET", *c), ("POST", *c)]
            if op == "_refresh":
                return [
                    ("POST", lambda: self._refresh(index_name), set()),
                    ("GET", lambda: self._refresh(index_name), set()),
                ]
            return []
        if n == 3 and op == "_doc":
            doc_id = parts[2]
            return [
                ("PUT", lambda: self._write(index_name, doc_id, req.body, params), WRITE_PARAMS),
                ("POST", lambda: self._write(index_name, doc_id, req.body, params), WRITE_PARAMS),
                (
                    "GET",
                    lambda: self._get_doc(index_name, doc_id, params, head=False),
                    {"_source", "_source_includes", "_source_excludes", "realtime", "refresh"},
                ),
                ("HEAD", lambda: self._get_doc(index_name, doc_id, params, head=True), {"realtime", "refresh"}),
                ("DELETE", lambda: self._delete_doc(index_name, doc_id, params), {"refresh"}),
            ]
        if n == 3 and op == "_create":
            doc_id = parts[2]
            create = (lambda: self._write(index_name, doc_id, req.body, {**params, "op_type": "create"}), {"refresh"})
            return [("PUT", *create), ("POST", *create)]
        if n == 3 and op == "_update":
            return [("POST", lambda: self._update(index_name, parts[2], req.body, params), {"refresh"})]
        return []

    @staticmethod
    def _check_single_index(name: str) -> None:
        if "," in name or "*" in name:
            raise IllegalArgument(
                f"index expression [{name}] names several indices; the local search service "
                "serves one index per request: name one index"
            )

    @staticmethod
    def _refuse(what: str) -> Response:
        raise IllegalArgument(f"{what} is not supported by the local search service; delete and re-create the index")

    # -- cluster -------------------------------------------------------------------------------

    def _info(self) -> Response:
        return Response(
            200,
            {
                "name": self.node_name,
                "cluster_name": f"{self.account_id}:{self.domain_name}",
                "cluster_uuid": self.cluster_uuid,
                "version": {
                    "distribution": "opensearch",
                    "number": self.version_number,
                    "build_type": "tar",
                    "build_hash": "unknown",
                    "build_date": "2024-01-01T00:00:00.000000Z",
                    "build_snapshot": False,
                    "lucene_version": "9.10.0",
                    "minimum_wire_compatibility_version": "7.10.0",
                    "minimum_index_compatibility_version": "7.0.0",
                },
                "tagline": "The OpenSearch Project: https://opensearch.org/",
            },
        )

    def _health(self, index_name: str | None, params: dict[str, str]) -> Response:
        indices = [self.engine.get(index_name)] if index_name else list(self.engine.indices.values())
        primaries = sum(int(i.settings.get("index.number_of_shards", 1)) for i in indices)
        unassigned = sum(int(i.settings.get("index.number_of_shards", 1)) * i.replicas for i in indices)
        status = "yellow" if unassigned else "green"
        wanted = params.get("wait_for_status")
        rank = {"red": 0, "yellow": 1, "green": 2}
        if wanted is not None and wanted not in rank:
            raise IllegalArgument(f"unknown cluster health status [{wanted}]; use green, yellow or red")
        timed_out = wanted is not None and rank[status] < rank[wanted]
        body = {
            "cluster_name": f"{self.account_id}:{self.domain_name}",
            "status": status,
            "timed_out": timed_out,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "discovered_master": True,
            "discovered_cluster_manager": True,
            "active_primary_shards": primaries,
            "active_shards": primaries,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": unassigned,
            "delayed_unassigned_shards": 0,
            "number_of_pending_tasks": 0,
            "number_of_in_flight_fetch": 0,
            "task_max_waiting_in_queue_millis": 0,
            "active_shards_percent_as_number": 100.0 * primaries / (primaries + unassigned)
            if primaries + unassigned
            else 100.0,
        }
        return Response(408 if timed_out else 200, body)

    def _cat_indices(self, params: dict[str, str]) -> Response:
        """``GET /_cat/indices`` (``?format=json`` or text, ``?v`` for a header row)."""
        rows = []
        for name, index in sorted(self.engine.indices.items()):
            health = "yellow" if index.replicas else "green"
            view = index.view()
            rows.append(
                {
                    "health": health,
                    "status": "open",
                    "index": name,
                    "uuid": index.uuid,
                    "pri": str(index.settings.get("index.number_of_shards", 1)),
                    "rep": str(index.replicas),
                    "docs.count": str(view.searcher.num_docs),
                    "docs.deleted": "0",
                }
            )
        if params.get("format") == "json":
            return Response(200, rows)
        cols = ["health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted"]
        table = ([cols] if "v" in params else []) + [[r[c] for c in cols] for r in rows]
        widths = [max((len(row[i]) for row in table), default=0) for i in range(len(cols))]
        text = "".join(" ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in table)
        return Response(200, text, {"Content-Type": "text/plain; charset=UTF-8"})

    # -- indices -------------------------------------------------------------------------------

    def _create(self, name: str, raw: bytes) -> Response:
        body = json_body(raw, what="create index body")
        if not isinstance(body, dict):
            raise ParsingError("create index body must be a JSON object")
        unknown = set(body) - {"settings", "mappings", "aliases"}
        if unknown:
            raise ParsingError(f"unknown key [{sorted(unknown)[0]}] for create index")
        if body.get("aliases"):
            raise IllegalArgument("aliases are not supported by the local search service; use the index name")
        mappings = body.get("mappings", {}) or {}
        if "_doc" in mappings and isinstance(mappings["_doc"], dict) and "properties" not in mappings:
            raise IllegalArgument("mapping types (mappings._doc) were removed; put properties directly under mappings")
        self.engine.create(name, settings=body.get("settings", {}) or {}, mappings=mappings)
        return Response(200, {"acknowledged": True, "shards_acknowledged": True, "index": name})

    def _settings_json(self, index: SearchIndex) -> dict[str, Any]:
        out: dict[str, Any] = {}
        defaults = {"index.number_of_shards": "1", "index.number_of_replicas": "1"}
        for key, value in {**defaults, **index.settings}.items():
            node = out
            parts = key.split(".")
            for p in parts[:-1]:
                node = node.setdefault(p, {})
            node[parts[-1]] = (
                value
                if isinstance(value, dict | list)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        out["index"].update(
            {
                "creation_date": str(index.created_ms),
                "uuid": index.uuid,
                "provided_name": index.name,
                "version": {"created": "136347827"},
            }
        )
        return out

    def _get_index(self, name: str) -> Response:
        index = self.engine.get(name)
        return Response(
            200, {name: {"aliases": {}, "mappings": index.mapping.as_json(), "settings": self._settings_json(index)}}
        )

    def _head_index(self, name: str) -> Response:
        return Response(200 if name in self.engine.indices else 404, None)

    def _delete_index(self, name: str) -> Response:
        self.engine.delete(name)
        return Response(200, {"acknowledged": True})

    def _get_mapping(self, name: str) -> Response:
        return Response(200, {name: {"mappings": self.engine.get(name).mapping.as_json()}})

    def _get_settings(self, name: str) -> Response:
        return Response(200, {name: {"settings": self._settings_json(self.engine.get(name))}})

    def _refresh(self, name: str) -> Response:
        index = self.engine.get(name)
        index.refresh()
        shards = int(index.settings.get("index.number_of_shards", 1))
        return Response(200, {"_shards": {"total": shards * (1 + index.replicas), "successful": shards, "failed": 0}})

    def _refresh_all(self) -> Response:
        self.engine.flush()
        total = sum(int(i.settings.get("index.number_of_shards", 1)) for i in self.engine.indices.values())
        replicas = sum(
            int(i.settings.get("index.number_of_shards", 1)) * i.replicas for i in self.engine.indices.values()
        )
        return Response(200, {"_shards": {"total": total + replicas, "successful": total, "failed": 0}})

    # -- documents -----------------------------------------------------------------------------

    def _write(self, name: str, doc_id: str, raw: bytes, params: dict[str, str]) -> Response:
        refresh = refresh_mode(params)
        document = json_body(raw, required=True, what="document")
        index = self.engine.get_or_create(name)
        op_type = params.get("op_type", "index")
        if op_type not in ("index", "create"):
            raise IllegalArgument(f"op_type must be [index] or [create], got [{op_type}]")
        status, result = index.write(doc_id, document, op_type=op_type)
        if refresh:
            index.refresh()
            result["forced_refresh"] = True
        return Response(status, result)

    def _update(self, name: str, doc_id: str, raw: bytes, params: dict[str, str]) -> Response:
        index = self.engine.get(name)
        body = json_body(raw, required=True, what="update body")
        if (
            not isinstance(body, dict)
            or "doc" not in body
            or set(body) - {"doc", "doc_as_upsert", "upsert", "detect_noop"}
        ):
            raise ParsingError(
                '[_update] supports only {"doc": {...}, "doc_as_upsert", "upsert"} locally; '
                "scripted updates are not supported"
            )
        status, result = index.update(
            doc_id, body["doc"], doc_as_upsert=bool(body.get("doc_as_upsert")), upsert=body.get("upsert")
        )
        if refresh_mode(params):
            index.refresh()
        return Response(status, result)

    def _get_doc(self, name: str, doc_id: str, params: dict[str, str], *, head: bool) -> Response:
        index = self.engine.get(name)
        state = index.get(doc_id)
        if state is None:
            return Response(404, None if head else {"_index": name, "_id": doc_id, "found": False})
        if head:
            return Response(200, None)
        body: dict[str, Any] = {
            "_index": name,
            "_id": doc_id,
            "_version": state.version,
            "_seq_no": state.seq_no,
            "_primary_term": 1,
            "found": True,
        }
        spec: Any = True
        if "_source" in params:
            raw = params["_source"]
            spec = raw == "true" if raw in ("true", "false") else raw.split(",")
        if "_source_includes" in params or "_source_excludes" in params:
            spec = {
                "includes": [p for p in params.get("_source_includes", "").split(",") if p],
                "excludes": [p for p in params.get("_source_excludes", "").split(",") if p],
            }
        source_filter = SourceFilter(spec)
        if source_filter.enabled:
            body["_source"] = source_filter.apply(state.source)
        return Response(200, body)

    def _delete_doc(self, name: str, doc_id: str, params: dict[str, str]) -> Response:
        index = self.engine.get(name)
        status, result = index.delete(doc_id)
        if refresh_mode(params) and status == 200:
            index.refresh()
        return Response(status, result)

    # -- search --------------------------------------------------------------------------------

    def _search(self, name: str, raw: bytes, params: dict[str, str]) -> Response:
        index = self.engine.get(name)
        return Response(200, SearchRequest(index, json_body(raw, what="search body"), params).execute())

    def _count(self, name: str, raw: bytes) -> Response:
        return Response(200, count(self.engine.get(name), json_body(raw, what="count body")))
