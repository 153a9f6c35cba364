"""Reading a JSON object from a file, or failing with the file, the problem and the fix.

Every reader of a JSON document loadcheck or its user wrote (run directory files, service configs,
Terraform outputs, price tables) goes through :func:`read_json_object`, so they all fail the same
way: ``<what> <path> does not exist`` / ``is not JSON (<reason>: line L column C)`` / ``must be a
JSON object, not <type>``, each with the caller's hint, raised as the caller's error class from
:mod:`loadcheck.core.errors`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from loadcheck.core.errors import ConfigError, LoadcheckError


class _ErrorClass(Protocol):
    def __call__(self, message: str, *, value: object = ..., hint: str | None = ...) -> LoadcheckError: ...


def read_json_object(
    path: str | Path,
    *,
    what: str,
    hint: str,
    missing_hint: str | None = None,
    error: _ErrorClass = ConfigError,
) -> dict[str, Any]:
    """The JSON object in ``path``. ``what`` names the document in messages (e.g. ``"gateway
    service config"``); ``missing_hint`` is the fix when the file does not exist (default ``hint``)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{what} {p} does not exist", value=str(p), hint=missing_hint or hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} {p} cannot be read ({exc})", value=str(p), hint=hint) from None
    except json.JSONDecodeError as exc:
        raise error(
            f"{what} {p} is not JSON ({exc.msg}: line {exc.lineno} column {exc.colno})", value=str(p), hint=hint
        ) from None
    if not isinstance(data, dict):
        raise error(f"{what} {p} must be a JSON object, not {type(data).__name__}", value=str(p), hint=hint)
    return data
