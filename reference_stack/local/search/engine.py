"""The index model: named indices on tantivy, their documents, and refresh.

An :class:`Engine` holds the indices of one domain; each :class:`SearchIndex` owns one tantivy
index (on disk under ``data_dir/<index>/`` when a data directory is given), one writer, and
the realtime view of its documents (``GET _doc`` is realtime in OpenSearch, searches are not).

Visibility follows OpenSearch's refresh model (index.refresh_interval, default ``1s``): writes
reach searches, counts and suggestions after a refresh, which happens on ``POST _refresh``, on
``?refresh=true|wait_for``, and by the :meth:`Engine.refresh_due` tick at most
``refresh_interval`` after the first unrefreshed write (``-1`` disables it, as in OpenSearch).

Departures from OpenSearch (docs/fidelity.md, section search):

- One shard, no replicas are kept: ``_shards`` reports 1 + number_of_replicas in total and 1
  successful (a one-node domain), and ``_cluster/health`` is yellow when replicas are asked for.
- ``refresh=wait_for`` refreshes at once instead of waiting for the next scheduled refresh.
- OpenSearch skips scheduled refreshes of a search-idle shard (30 s without searches) and
  refreshes on the next search; here the schedule always runs.
- A dynamic mapping update (a document with new fields) indexes every document again into a
  new tantivy index, because tantivy schemas are fixed; that also makes every earlier write
  visible, as a refresh would.
- ``_version``/``_seq_no`` restart from the stored documents after a service restart
  (version 1 each); realtime data of unrefreshed writes is committed on shutdown and flush.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tantivy

from .errors import IllegalArgument, IndexNotFound, SearchApiError
from .mapping import (
    ID_FIELD,
    Mapping,
    build_mapping,
    completion_inputs,
    dynamic_update,
    stored_id,
    stored_source,
    to_document,
)

_INVALID_INDEX_CHARS = set('\\/*?"<>| ,#:')
WRITER_HEAP = 50_000_000


def validate_index_name(name: str) -> None:
    """OpenSearch's index name rules (MetadataCreateIndexService.validateIndexOrAliasName)."""
    reason = None
    if name != name.lower():
        reason = "must be lowercase"
    elif any(c in _INVALID_INDEX_CHARS for c in name):
        reason = 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?, #, :]'
    elif name[:1] in ("-", "_", "+"):
        reason = "must not start with '_', '-', or '+'"
    elif name in (".", ".."):
        reason = "must not be '.' or '..'"
    elif len(name.encode()) > 255:
        reason = "index name is too long, (" + str(len(name.encode())) + " > 255)"
    if reason:
        raise SearchApiError(
            400,
            "invalid_index_name_exception",
            f"Invalid index name [{name}], {reason}",
            extra={"index": name, "index_uuid": "_na_"},
        )


def parse_interval(value: Any) -> float | None:
    """``1s``/``500ms``/``-1`` → seconds (None = never)."""
    text = str(value).strip()
    if text == "-1":
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    if not m:
        raise IllegalArgument(
            f"failed to parse setting [index.refresh_interval] with value [{value}] as a time value: "
            "use e.g. 1s, 500ms or -1"
        )
    number, unit = float(m.group(1)), m.group(2) or "ms"
    return number / 1000 if unit == "ms" else number * 60 if unit == "m" else number


def _flat_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``{"index": {"number_of_shards": 1}}`` and ``{"number_of_shards": 1}`` → ``index.*`` keys."""
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            key = prefix + k
            if isinstance(v, dict) and k != "analysis":
                walk(v, key + ".")
            else:
                flat[key] = v

    walk(settings, "")
    return {(k if k.startswith("index.") else "index." + k): v for k, v in flat.items()}


@dataclass
class DocState:
    source: dict[str, Any]
    version: int
    seq_no: int


@dataclass(frozen=True)
class View:
    mapping: Mapping
    searcher: tantivy.Searcher
    completions: dict[str, list[tuple[str, str, int, str]]]


class SearchIndex:
    """One index: mapping, tantivy index and writer, realtime documents, refresh state."""

    def __init__(
        self,
        *,
        name: str,
        settings: dict[str, Any],
        mappings: dict[str, Any],
        path: Path | None,
        clock: Callable[[], float] = time.monotonic,
        index_uuid: str | None = None,
        created_ms: int | None = None,
        generation: int = 0,
    ) -> None:
        self.name = name
        self.settings = _flat_settings(settings)
        self.mapping: Mapping = build_mapping(mappings, {"analysis": self.settings.get("index.analysis", {})})
        self.replicas = int(self.settings.get("index.number_of_replicas", 1))
        shards = int(self.settings.get("index.number_of_shards", 1))
        if shards < 1 or self.replicas < 0:
            raise IllegalArgument(f"index [{name}]: number_of_shards must be >= 1 and number_of_replicas >= 0")
        self.refresh_interval = parse_interval(self.settings.get("index.refresh_interval", "1s"))
        self.max_result_window = int(self.settings.get("index.max_result_window", 10000))
        self.uuid = index_uuid or uuid.uuid4().hex[:22]
        self.created_ms = created_ms or int(time.time() * 1000)
        self.path = path
        self.generation = generation
        self._clock = clock
        self.tindex, self._writer = self._open_tantivy(self.mapping, generation)
        self.lock = threading.RLock()
        self.live: dict[str, DocState] = {}
        self._seq_no = -1
        self._dirty_since: float | None = None
        self.completion_snapshot: dict[str, list[tuple[str, str, int, str]]] = {}
        self._load_existing()

    # -- persistence -------------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        settings = {k[len("index.") :]: v for k, v in self.settings.items()}
        return {
            "name": self.name,
            "uuid": self.uuid,
            "created_ms": self.created_ms,
            "settings": settings,
            "mappings": self.mapping.as_json(),
            "generation": self.generation,
        }

    def write_meta(self) -> None:
        if self.path is not None:
            tmp = self.path / "meta.json.tmp"
            tmp.write_text(json.dumps(self.meta(), indent=2), encoding="utf-8")
            tmp.replace(self.path / "meta.json")

    def _open_tantivy(self, mapping: Mapping, generation: int) -> tuple[tantivy.Index, tantivy.IndexWriter]:
        where = None
        if self.path is not None:
            where = self.path / f"tantivy-{generation}"
            where.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(mapping.schema, path=str(where) if where else None)
        index.config_reader(reload_policy="manual")
        return index, index.writer(heap_size=WRITER_HEAP, num_threads=1)

    def _remap(self, properties: dict[str, Any]) -> None:
        """Apply a dynamic mapping update: tantivy schemas are fixed, so every document is
        indexed again into a new tantivy index (a new generation on disk), which also makes every
        earlier write visible (a refresh)."""
        mappings = {**self.mapping.as_json(), "properties": properties}
        mapping = build_mapping(mappings, {"analysis": self.settings.get("index.analysis", {})})
        tindex, writer = self._open_tantivy(mapping, self.generation + 1)
        for doc_id, state in self.live.items():
            writer.add_document(to_document(mapping, doc_id, state.source))
        writer.commit()
        tindex.reload()
        old_dir = self.path / f"tantivy-{self.generation}" if self.path is not None else None
        self._writer.rollback()
        self.mapping, self.tindex, self._writer = mapping, tindex, writer
        self.generation += 1
        self.write_meta()
        self._dirty_since = None
        self._rebuild_completions()
        if old_dir is not None:
            shutil.rmtree(old_dir, ignore_errors=True)

    def _load_existing(self) -> None:
        searcher = self.tindex.searcher()
        if searcher.num_docs == 0:
            return
        for _, addr in searcher.search(tantivy.Query.all_query(), limit=searcher.num_docs).hits:
            doc = searcher.doc(addr)
            self._seq_no += 1
            self.live[stored_id(doc)] = DocState(stored_source(doc), 1, self._seq_no)
        self._rebuild_completions()

    # -- writes ------------------------------------------------------------------------------

    def shards_header(self) -> dict[str, int]:
        return {"total": 1 + self.replicas, "successful": 1, "failed": 0}

    def write(self, doc_id: str, source: Any, *, op_type: str = "index") -> tuple[int, dict[str, Any]]:
        """Index ``source`` under ``doc_id``; returns (HTTP status, OpenSearch write result)."""
        if not isinstance(source, dict):
            raise SearchApiError(
                400,
                "mapper_parsing_exception",
                "failed to parse, document is empty"
                if not source
                else f"failed to parse: the document must be a JSON object, got {source!r}",
            )
        if not doc_id or len(doc_id.encode()) > 512:
            raise IllegalArgument(
                f"id [{doc_id}] is too long, must be no longer than 512 bytes but was: {len(doc_id.encode())}"
                if doc_id
                else "if _id is specified it must not be empty"
            )
        with self.lock:
            if self.mapping.dynamic == "true":
                extended = dynamic_update(self.mapping.properties, source)
                if extended is not None:
                    self._remap(extended)
            document = to_document(self.mapping, doc_id, source)  # validates before anything changes
            old = self.live.get(doc_id)
            if old is not None and op_type == "create":
                raise SearchApiError(
                    409,
                    "version_conflict_engine_exception",
                    f"[{doc_id}]: version conflict, document already exists (current version [{old.version}])",
                    extra={"index": self.name, "shard": "0", "index_uuid": self.uuid},
                )
            if old is not None:
                self._writer.delete_documents_by_term(ID_FIELD, doc_id)
            self._writer.add_document(document)
            self._seq_no += 1
            state = DocState(source, (old.version + 1) if old else 1, self._seq_no)
            self.live[doc_id] = state
            self._mark_dirty()
        return (200 if old else 201), self._result(doc_id, state, "updated" if old else "created")

    def delete(self, doc_id: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            old = self.live.pop(doc_id, None)
            self._seq_no += 1
            if old is None:
                return 404, self._result(doc_id, DocState({}, 1, self._seq_no), "not_found")
            self._writer.delete_documents_by_term(ID_FIELD, doc_id)
            self._mark_dirty()
            return 200, self._result(doc_id, DocState({}, old.version + 1, self._seq_no), "deleted")

    def update(
        self, doc_id: str, partial: Any, *, doc_as_upsert: bool = False, upsert: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """``_update`` with a partial ``doc`` (merged as OpenSearch merges objects)."""
        if not isinstance(partial, dict):
            raise IllegalArgument(
                "[doc] must be an object; scripted updates are not supported by the local search service"
            )
        with self.lock:
            old = self.live.get(doc_id)
            if old is None:
                if doc_as_upsert or upsert is not None:
                    return self.write(doc_id, partial if doc_as_upsert else upsert)
                raise SearchApiError(
                    404,
                    "document_missing_exception",
                    f"[{doc_id}]: document missing",
                    extra={"index": self.name, "shard": "0", "index_uuid": self.uuid},
                )
            merged = _merge(old.source, partial)
            if merged == old.source:
                return 200, self._result(doc_id, old, "noop")
            return self.write(doc_id, merged)

    def _result(self, doc_id: str, state: DocState, result: str) -> dict[str, Any]:
        return {
            "_index": self.name,
            "_id": doc_id,
            "_version": state.version,
            "result": result,
            "_shards": self.shards_header(),
            "_seq_no": state.seq_no,
            "_primary_term": 1,
        }

    def _mark_dirty(self) -> None:
        if self._dirty_since is None:
            self._dirty_since = self._clock()

    # -- reads -------------------------------------------------------------------------------

    def get(self, doc_id: str) -> DocState | None:
        with self.lock:
            return self.live.get(doc_id)

    def refresh(self) -> None:
        """Make every write so far visible to searches (commit + reload the reader)."""
        with self.lock:
            if self._dirty_since is None:
                return
            self._writer.commit()
            self.tindex.reload()
            self._rebuild_completions()
            self._dirty_since = None

    def refresh_if_due(self) -> None:
        with self.lock:
            if self._dirty_since is None or self.refresh_interval is None:
                return
            if self._clock() - self._dirty_since >= self.refresh_interval:
                self.refresh()

    def _rebuild_completions(self) -> None:
        snapshot: dict[str, list[tuple[str, str, int, str]]] = {}
        for path in self.mapping.completions:
            entries = []
            for doc_id, state in self.live.items():
                for analyzed, text, weight in completion_inputs(self.mapping, path, doc_id, state.source):
                    entries.append((analyzed, text, weight, doc_id))
            entries.sort()
            snapshot[path] = entries
        self.completion_snapshot = snapshot

    def searcher(self) -> tantivy.Searcher:
        return self.tindex.searcher()

    def view(self) -> View:
        """A consistent snapshot for one search: a dynamic mapping update swaps the mapping,
        the tantivy index and the suggestions together, so a search takes all three at once."""
        with self.lock:
            return View(self.mapping, self.tindex.searcher(), self.completion_snapshot)

    def close(self) -> None:
        with self.lock:
            self.refresh()
            self._writer.wait_merging_threads()


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Engine:
    """The indices of one domain. Thread-safe; index-level locks serialize writers."""

    def __init__(self, *, data_dir: Path | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.data_dir = data_dir
        self._clock = clock
        self._lock = threading.Lock()
        self.indices: dict[str, SearchIndex] = {}
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            for meta_path in sorted(data_dir.glob("*/meta.json")):
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                self.indices[meta["name"]] = SearchIndex(
                    name=meta["name"],
                    settings=meta["settings"],
                    mappings=meta["mappings"],
                    path=meta_path.parent,
                    clock=clock,
                    index_uuid=meta["uuid"],
                    created_ms=meta["created_ms"],
                    generation=int(meta.get("generation", 0)),
                )

    def get(self, name: str) -> SearchIndex:
        index = self.indices.get(name)
        if index is None:
            raise IndexNotFound(name)
        return index

    def create(self, name: str, *, settings: dict[str, Any], mappings: dict[str, Any]) -> SearchIndex:
        validate_index_name(name)
        with self._lock:
            if name in self.indices:
                existing = self.indices[name]
                raise SearchApiError(
                    400,
                    "resource_already_exists_exception",
                    f"index [{name}/{existing.uuid}] already exists",
                    extra={"index": name, "index_uuid": existing.uuid},
                )
            path = self.data_dir / name if self.data_dir else None
            if path is not None and path.exists():
                shutil.rmtree(path)
            index = SearchIndex(name=name, settings=settings, mappings=mappings, path=path, clock=self._clock)
            index.write_meta()
            self.indices[name] = index
            return index

    def get_or_create(self, name: str) -> SearchIndex:
        """The index, created with default settings and dynamic mappings if missing, as a write to
        a missing index does in OpenSearch (``action.auto_create_index``)."""
        with self._lock:
            if name in self.indices:
                return self.indices[name]
        try:
            return self.create(name, settings={}, mappings={})
        except SearchApiError as exc:
            if exc.type == "resource_already_exists_exception":
                return self.get(name)
            raise

    def delete(self, name: str) -> None:
        with self._lock:
            index = self.get(name)
            del self.indices[name]
        with index.lock:
            index.close()
        if index.path is not None:
            shutil.rmtree(index.path, ignore_errors=True)

    def refresh_due(self) -> None:
        for index in list(self.indices.values()):
            index.refresh_if_due()

    def flush(self) -> None:
        for index in list(self.indices.values()):
            index.refresh()

    def close(self) -> None:
        for index in list(self.indices.values()):
            index.close()
