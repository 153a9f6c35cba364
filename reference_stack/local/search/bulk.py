"""``_bulk``: the NDJSON bulk API (OpenSearch REST reference, "Bulk").

Each action line (``index``, ``create``, ``delete``, ``update``) is answered by one item with
its own status; a failed item sets ``errors`` and does not stop the others. ``index``/``create``
on a missing index create it (``action.auto_create_index``); ``update`` supports ``doc``,
``doc_as_upsert`` and ``upsert`` (no scripts).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from .engine import Engine
from .errors import IllegalArgument, IndexNotFound, ParsingError, SearchApiError
from .wire import json_body, refresh_mode


def bulk(
    engine: Engine,
    default_index: str | None,
    raw: bytes,
    params: dict[str, str],
    *,
    allow_explicit_index: bool = True,
) -> tuple[int, dict[str, Any]]:
    """``POST [/<index>]/_bulk``: NDJSON actions index/create/delete/update; (status, response).

    ``allow_explicit_index`` is the domain's ``rest.action.multi.allow_explicit_index``: when
    false, an action line naming ``_index`` refuses the whole request (400, as OpenSearch does)."""
    started = time.perf_counter()
    refresh = refresh_mode(params)
    if raw and not raw.endswith(b"\n"):
        raise IllegalArgument("The bulk request must be terminated by a newline [\\n]")
    lines = [line for line in raw.split(b"\n") if line.strip()]
    if not lines:
        raise IllegalArgument("request body is required (the bulk request has no actions)")
    items: list[dict[str, Any]] = []
    touched: set[str] = set()
    i = 0
    while i < len(lines):
        line_no = i + 1
        action_line = json_body(lines[i], what=f"bulk action on line {line_no}")
        i += 1
        if not isinstance(action_line, dict) or len(action_line) != 1:
            raise IllegalArgument(
                f"Malformed action/metadata line [{line_no}], expected a simple value for field "
                f"[_index] but found an object with {len(action_line) if isinstance(action_line, dict) else 0} keys"
            )
        ((action, meta),) = action_line.items()
        if action not in ("index", "create", "delete", "update"):
            raise IllegalArgument(
                f"Malformed action/metadata line [{line_no}], expected one of [create, delete, "
                f"index, update] but found [{action}]"
            )
        meta = meta or {}
        if not allow_explicit_index and "_index" in meta:
            raise IllegalArgument("explicit index in bulk is not allowed")
        source: Any = None
        if action != "delete":
            if i >= len(lines):
                raise IllegalArgument(
                    f"Validation Failed: 1: the {action} action on line [{line_no}] has no document line after it;"
                )
            source = json_body(lines[i], what=f"bulk document on line {i + 1}")
            i += 1
        name = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        if name is None:
            items.append(
                {
                    action: {
                        "_index": None,
                        "_id": doc_id,
                        "status": 400,
                        "error": {
                            "type": "action_request_validation_exception",
                            "reason": "Validation Failed: 1: index is missing;",
                        },
                    }
                }
            )
            continue
        items.append({action: _bulk_item(engine, action, name, doc_id, source)})
        touched.add(name)
    if refresh:
        for name in touched:
            if name in engine.indices:
                engine.indices[name].refresh()
    errors = any("error" in next(iter(item.values())) for item in items)
    return 200, {"took": int((time.perf_counter() - started) * 1000), "errors": errors, "items": items}


def _bulk_item(engine: Engine, action: str, name: str, doc_id: Any, source: Any) -> dict[str, Any]:
    try:
        index = engine.get_or_create(name) if action in ("index", "create") else engine.get(name)
        if action == "delete":
            if doc_id is None:
                raise IllegalArgument("Validation Failed: 1: id is missing;")
            status, result = index.delete(str(doc_id))
        elif action == "update":
            if doc_id is None:
                raise IllegalArgument("Validation Failed: 1: id is missing;")
            if not isinstance(source, dict) or "doc" not in source:
                raise ParsingError('bulk update supports only {"doc": {...}} locally')
            status, result = index.update(
                str(doc_id),
                source["doc"],
                doc_as_upsert=bool(source.get("doc_as_upsert")),
                upsert=source.get("upsert"),
            )
        else:
            generated = doc_id is None
            doc_id = secrets.token_urlsafe(15)[:20] if generated else str(doc_id)
            status, result = index.write(doc_id, source, op_type=action)
        return {**result, "status": status}
    except SearchApiError as exc:
        if isinstance(exc, IndexNotFound):
            exc.extra["index"] = name
        return {"_index": name, "_id": doc_id, "status": exc.status, "error": exc.cause()}
