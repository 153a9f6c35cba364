"""The wire-level pieces shared by the REST handlers: request/response records, JSON bodies,
and the ``refresh`` parameter (OpenSearch REST reference, "Index document": ``refresh``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import IllegalArgument, ParsingError


@dataclass
class Request:
    method: str
    path: str  # raw path, still percent-encoded
    query: str = ""
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-able, or None for no body
    headers: dict[str, str] = field(default_factory=dict)


def json_body(raw: bytes, *, required: bool = False, what: str = "request body") -> Any:
    if not raw.strip():
        if required:
            raise ParsingError(f"{what} is required")
        return {}
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ParsingError(f"Failed to parse the {what} as JSON: {exc}") from None


def refresh_mode(params: dict[str, str]) -> bool:
    value = params.get("refresh")
    if value is None or value == "false":
        return False
    if value in ("", "true", "wait_for"):
        return True
    raise IllegalArgument(f"Unknown value for refresh: [{value}]. Use true, false or wait_for.")
