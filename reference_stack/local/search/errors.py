"""Errors of the search service, rendered in OpenSearch's REST error shape.

    SearchApiError(status, type, reason)     any error answered with OpenSearch's body:
    │                                         {"error": {"root_cause": [...], "type", "reason"}, "status"}
    ├── ParsingError        400 parsing_exception (unsupported or malformed query DSL)
    ├── IllegalArgument     400 illegal_argument_exception
    ├── MapperParsingError  400 mapper_parsing_exception (bad mappings, bad documents)
    └── IndexNotFound       404 index_not_found_exception

Authorization failures are not OpenSearch errors: the AWS front end answers them with its
own bodies (``{"Message": ...}``), see :mod:`.auth`.
"""

from __future__ import annotations

from typing import Any


class SearchApiError(Exception):
    """An error answered with OpenSearch's error body (docs/aws-behaviour.md §9.2, §9.4)."""

    def __init__(self, status: int, type_: str, reason: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.type = type_
        self.reason = reason
        self.extra = dict(extra or {})

    def cause(self) -> dict[str, Any]:
        return {"type": self.type, "reason": self.reason, **self.extra}

    def body(self) -> dict[str, Any]:
        return {"error": {"root_cause": [self.cause()], **self.cause()}, "status": self.status}


class ParsingError(SearchApiError):
    def __init__(self, reason: str) -> None:
        super().__init__(400, "parsing_exception", reason)


class IllegalArgument(SearchApiError):
    def __init__(self, reason: str) -> None:
        super().__init__(400, "illegal_argument_exception", reason)


class MapperParsingError(SearchApiError):
    def __init__(self, reason: str) -> None:
        super().__init__(400, "mapper_parsing_exception", reason)


class IndexNotFound(SearchApiError):
    def __init__(self, index: str) -> None:
        super().__init__(
            404,
            "index_not_found_exception",
            f"no such index [{index}]",
            extra={"index": index, "resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_"},
        )
