"""The one place loadcheck touches Locust's private or undocumented API, checked at start-up.

The load path needs a few things Locust does not document:

- ``FastHttpSession._send_request_safe_mode(method, url, payload=, headers=)``: the send that
  ``FastHttpSession.request`` does, without its per-request keyword handling and catch-response
  context manager (the signed request reports its own ``request`` event; docs/load.md).
- ``FastHttpSession.base_url``, ``.request_event`` and ``.client.clientpool`` (instance
  attributes set by its ``__init__``): the URL prefix, the event the request is reported on, and
  the geventhttpclient client pool that ``--resolve`` replaces.
- ``WorkerRunner._send_stats()``: a worker pushes Locust's own stats before its final ledger
  batch, so the master's counts are final when that batch lands.
- ``MasterRunner.worker_indexes``: every worker that ever connected, by the index the master gave
  it, so one that died before sending anything is still listed in ``loadgen.json``.

:func:`check_locust` runs when this module is imported (so when a locustfile using the SigV4
user or the ledger hooks is loaded) and checks that the methods exist and accept what we pass;
the instance attributes are checked once per object, when a user or the master is set up
(:func:`check_instance`), never per request. A Locust release that renames any of them fails there
with a :class:`~loadcheck.core.errors.ConfigError` naming the supported range and the fix (pin
locust), instead of failing on the first request or silently losing data.

``SUPPORTED_LOCUST`` must equal the ``locust`` requirement in pyproject.toml (a unit test holds
them together); ``TESTED_LOCUST`` is the release the test suite last ran against.
"""

from __future__ import annotations

from locust.contrib.fasthttp import FastHttpSession
from locust.runners import MasterRunner, WorkerRunner

import inspect
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from loadcheck.core.errors import ConfigError

SUPPORTED_LOCUST = ">=2.43.4,<3"
TESTED_LOCUST = "2.47.0"

# (class, method, keyword arguments we pass it): checked on the class at import.
METHODS: tuple[tuple[type, str, tuple[str, ...]], ...] = (
    (FastHttpSession, "_send_request_safe_mode", ("payload", "headers")),
    (WorkerRunner, "_send_stats", ()),
)
# Attributes Locust sets in __init__ (so not on the class): checked on each object once.
SESSION_ATTRIBUTES = ("base_url", "request_event", "client")
MASTER_ATTRIBUTES = ("worker_indexes",)


def installed_locust() -> str:
    try:
        return version("locust")
    except PackageNotFoundError:
        return "unknown"


def _incompatible(what: str) -> ConfigError:
    installed = installed_locust()
    return ConfigError(
        f"locust {installed} is not supported by loadcheck: {what} "
        f"(loadcheck relies on it; supported: locust{SUPPORTED_LOCUST}, tested with {TESTED_LOCUST})",
        value=installed,
        hint=f'pin locust: pip install "locust=={TESTED_LOCUST}" (or any locust{SUPPORTED_LOCUST} that has it), '
        "or update locustfiles/locust_compat.py for the new Locust",
    )


def _accepts(fn: Callable[..., Any], keywords: Iterable[str]) -> bool:
    """Whether ``fn`` takes each keyword (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: cannot tell, trust it
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return all(k in params for k in keywords)


def check_locust(methods: Iterable[tuple[type, str, tuple[str, ...]]] = METHODS) -> None:
    """Raise :class:`ConfigError` unless every private method we call exists and takes our arguments.

    ``methods`` is ``(class, name, keywords)``; the default is what the load path uses. Tests pass
    stand-in classes to prove the message.
    """
    for cls, name, keywords in methods:
        fn = getattr(cls, name, None)
        if not callable(fn):
            raise _incompatible(f"{cls.__name__}.{name}() is missing")
        if not _accepts(fn, keywords):
            raise _incompatible(f"{cls.__name__}.{name}() no longer takes {', '.join(keywords)}")


def check_instance(obj: object, attributes: Iterable[str]) -> None:
    """Raise :class:`ConfigError` unless ``obj`` has every attribute (set by Locust's ``__init__``)."""
    missing = [a for a in attributes if not hasattr(obj, a)]
    if missing:
        raise _incompatible(f"{type(obj).__name__} has no {', '.join(missing)}")


def session_parts(session: FastHttpSession) -> tuple[Callable[..., Any], str, Callable[..., None]]:
    """``(send, base_url, fire)`` of a FastHttpSession, looked up once per user.

    ``send(method, url, payload=, headers=)`` is the session's safe-mode send (connection errors
    come back as a response with ``error`` set, never raised); ``fire(**request_meta)`` reports
    one ``request`` event. Bound here so the request path pays no lookup for them.
    """
    check_instance(session, SESSION_ATTRIBUTES)
    # base_url is never None here: FastHttpUser refuses to start without a host.
    return session._send_request_safe_mode, session.base_url or "", session.request_event.fire


def client_pool(session: FastHttpSession) -> Any:
    """The geventhttpclient client pool of a FastHttpSession's user agent (``--resolve`` replaces it)."""
    agent = session.client
    check_instance(agent, ("clientpool",))
    return agent.clientpool


def set_client_pool(session: FastHttpSession, pool: Any) -> None:
    session.client.clientpool = pool


def send_stats(runner: WorkerRunner) -> None:
    """Push this worker's Locust stats to the master now (Locust itself does so every few seconds)."""
    runner._send_stats()


def check_master(runner: MasterRunner) -> None:
    """Raise :class:`ConfigError` unless the master runner has what :func:`worker_indexes` reads."""
    check_instance(runner, MASTER_ATTRIBUTES)


def worker_indexes(runner: MasterRunner) -> dict[str, int]:
    """``{client_id: index}`` of every worker that ever connected to this master."""
    check_master(runner)
    return dict(runner.worker_indexes)


check_locust()
