"""Errors of the CloudWatch Logs extensions, rendered as the Logs JSON 1.1 protocol answers them.

    LogsApiError(code, message)        HTTP 400 ``{"__type": code, "message": message, ...extra}``
    ├── InvalidParameter               ``InvalidParameterException`` (a filter pattern that does not parse)
    └── MalformedQuery                 ``MalformedQueryException`` with ``queryCompileError`` (Logs Insights)

Errors a client can trigger only by a bad request: none of them is a loadcheck error for the
user of loadcheck; the aws service answers them on the wire (docs/aws-behaviour.md §11.4).
"""

from __future__ import annotations

from typing import Any


class LogsApiError(Exception):
    """An error answered with the Logs JSON protocol's error body."""

    def __init__(self, code: str, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        return {"__type": self.code, "message": self.message, **self.extra}


class InvalidParameter(LogsApiError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterException", message)


class MalformedQuery(LogsApiError):
    """A Logs Insights query that does not compile; ``start``/``end`` locate the culprit in the query."""

    def __init__(self, message: str, *, start: int = 0, end: int = 0) -> None:
        super().__init__(
            "MalformedQueryException",
            "The query string is not valid. Details about this error are displayed in a QueryCompileError object.",
            extra={
                "queryCompileError": {"location": {"startCharOffset": start, "endCharOffset": end}, "message": message}
            },
        )
        self.detail = message
