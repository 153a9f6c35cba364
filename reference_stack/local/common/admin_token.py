"""The admin token check every service's ``/_loadcheck/*`` handler calls, at one point.

The supervisor writes a fresh token to ``<state>/admin-token`` (0600, in the 0700 state
directory; :func:`loadcheck.core.state.write_admin_token`) and names that file in each service's
config (``admin_token_file``); the contract reads it once at start-up into
:attr:`~reference_stack.local.common.contract.Lifecycle.admin_token`. Admin clients (the
supervisor's, :func:`loadcheck.core.faults.active_faults`) send it in the
``X-Loadcheck-Admin-Token`` header (:func:`loadcheck.core.state.admin_headers`), so another local
user's process cannot set faults or flush. The comparison takes constant time.

A service started without ``admin_token_file`` (the gateway harness and the benchmarks, which
start single services for tests) leaves its admin paths open, as before the token existed.
"""

from __future__ import annotations

import hmac
from pathlib import Path

from loadcheck.core.errors import ConfigError
from loadcheck.core.state import ADMIN_TOKEN_HEADER

__all__ = ["ADMIN_TOKEN_HEADER", "admin_refusal", "read_token_file"]


def read_token_file(path: str | Path | None) -> str | None:
    """The token in ``path`` (None: no file configured); an unreadable or empty file is a ConfigError."""
    if path is None:
        return None
    try:
        token = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"admin_token_file {path} cannot be read ({exc})",
            value=str(path),
            hint="start the service through the supervisor (`loadcheck stack up`), which writes <state>/admin-token",
        ) from None
    if not token:
        raise ConfigError(f"admin_token_file {path} is empty", value=str(path), hint="restart the stack")
    return token


def admin_refusal(expected: str | None, sent: str | None) -> tuple[int, dict[str, str]] | None:
    """None when an admin request may proceed; else the (status, JSON body) to answer with.

    ``expected`` is the service's token (None: admin paths open); ``sent`` the request's
    ``X-Loadcheck-Admin-Token`` header value (None when absent).
    """
    if expected is None:
        return None
    if sent is not None and hmac.compare_digest(sent.encode(), expected.encode()):
        return None
    return 403, {
        "message": f"admin paths need the stack's admin token in the {ADMIN_TOKEN_HEADER} header",
        "fix": "use `loadcheck stack ...` commands, or send the token in <state-dir>/admin-token",
    }
