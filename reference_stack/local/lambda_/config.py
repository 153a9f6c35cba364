"""The lambda service's configuration, read once from the JSON file the supervisor writes
(identities.json excepted: it is reloaded when it changes, see ``ServiceConfig.identities``).

Keys are those of docs/internals.md ("Common config keys" and "lambda"). Every problem is a
:class:`~loadcheck.core.errors.ConfigError` naming the file, the key, the value and the fix, raised
before anything starts.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError
from loadcheck.core.state import ACCOUNT_ID, Identities, IdentityStore
from reference_stack.local.common.contract import log_level

# Lambda's account-level default concurrency quota (docs/aws-behaviour.md §8.4); the cap for a
# function configured without reserved concurrency.
ACCOUNT_CONCURRENCY = 1000
# Largest function timeout Lambda accepts (docs/aws-behaviour.md §8.4).
MAX_TIMEOUT_S = 900


@dataclass(frozen=True)
class FunctionConfig:
    """One function as the supervisor describes it (docs/internals.md, lambda ``functions``)."""

    name: str
    key: str
    handler: str
    task_root: Path
    memory_mb: int
    timeout_s: float
    reserved_concurrency: int | None
    environment: dict[str, str]
    role_identity: str
    log_group: str
    runtime: str = "python3.12"  # the description's runtime: names AWS_EXECUTION_ENV

    @property
    def concurrency_cap(self) -> int:
        """Reserved concurrency, or the account quota when none is reserved."""
        return ACCOUNT_CONCURRENCY if self.reserved_concurrency is None else self.reserved_concurrency


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the service needs; built by :func:`parse_config`, passed down explicitly."""

    host: str
    port: int
    ready_file: Path | None
    parent_pid: int | None
    region: str
    account_id: str
    aws_endpoint_url: str
    python: str
    functions: dict[str, FunctionConfig]
    # identities.json, reloaded when it changes: a new environment gets the role's current keys
    identities: IdentityStore | Identities = field(repr=False)
    faults: dict[str, Any] = field(default_factory=dict)
    log_level: str = "INFO"
    log_batch_interval_s: float = 1.0
    idle_timeout_s: float = 600.0

    def function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"


class _Reader:
    """Typed access to the config document with errors that say where and how to fix."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, message: str, value: object, hint: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message} (got {value!r})", value=value, hint=hint)

    def get(
        self,
        data: dict[str, Any],
        key: str,
        kind: type | tuple[type, ...],
        *,
        where: str = "",
        default: Any = ...,
        hint: str = "",
    ) -> Any:
        name = f"{where}{key}"
        if key not in data:
            if default is ...:
                raise ConfigError(
                    f"{self.path}: missing key {name!r}",
                    value=None,
                    hint=hint or f"add {name!r} to the lambda service config",
                )
            return default
        value = data[key]
        # bool is an int in Python; a JSON true is never a valid number here.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(name, "must not be a boolean", value, hint or f"give {name!r} a number")
        if not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(name, f"must be {want}", value, hint or f"set {name!r} to a {want}")
        return value


def parse_config(data: Any, path: str = "<config>") -> ServiceConfig:
    r = _Reader(path)
    if not isinstance(data, dict):
        raise r.fail("(top level)", "must be a JSON object", type(data).__name__, "write the config as an object")
    host = r.get(data, "host", str, default="127.0.0.1")
    if host != "127.0.0.1":
        raise r.fail("host", "the local stack listens on loopback only", host, 'set "host": "127.0.0.1"')
    port = r.get(data, "port", int, default=0)
    if not 0 <= port <= 65535:
        raise r.fail("port", "is not a TCP port", port, "use 0 (pick a free port) or 1..65535")
    ready = r.get(data, "ready_file", (str, type(None)), default=None)
    parent_pid = r.get(data, "parent_pid", (int, type(None)), default=None)
    region = r.get(data, "region", str, default="us-east-1")
    account_id = r.get(data, "account_id", str, default=ACCOUNT_ID)
    endpoint = r.get(data, "aws_endpoint_url", str)
    if not endpoint.startswith(("http://", "https://")):
        raise r.fail(
            "aws_endpoint_url",
            "must be an http(s) URL",
            endpoint,
            "give the aws service's URL, e.g. http://127.0.0.1:4566",
        )
    python = r.get(data, "python", str, default=sys.executable)
    faults = r.get(data, "faults", (dict, type(None)), default=None) or {}
    level = log_level(data, where=path)
    interval = r.get(data, "log_batch_interval_s", (int, float), default=1.0)
    if interval <= 0:
        raise r.fail("log_batch_interval_s", "must be positive", interval, "use e.g. 1.0")
    idle = r.get(data, "idle_timeout_s", (int, float), default=600)
    if idle <= 0:
        raise r.fail("idle_timeout_s", "must be positive", idle, "use e.g. 600 (seconds an idle environment lives)")
    identities_file = r.get(data, "identities_file", str)
    identities = IdentityStore(identities_file)
    try:
        known = identities.current().by_name
    except ConfigError as exc:
        raise r.fail("identities_file", exc.message, identities_file, exc.hint or "") from exc
    raw_functions = r.get(data, "functions", dict)
    if not raw_functions:
        raise r.fail("functions", "names no function", raw_functions, "describe at least one function")
    functions = {name: _function(r, name, spec, known) for name, spec in raw_functions.items()}
    return ServiceConfig(
        host=host,
        port=port,
        ready_file=Path(ready) if ready else None,
        parent_pid=parent_pid,
        region=region,
        account_id=account_id,
        aws_endpoint_url=endpoint.rstrip("/"),
        python=python,
        functions=functions,
        identities=identities,
        faults=faults,
        log_level=level,
        log_batch_interval_s=float(interval),
        idle_timeout_s=float(idle),
    )


def _function(r: _Reader, name: str, spec: Any, identities: Mapping[str, Any]) -> FunctionConfig:
    where = f"functions.{name}."
    if not isinstance(spec, dict):
        raise r.fail(f"functions.{name}", "must be an object", spec, "see docs/internals.md (lambda)")
    handler = r.get(spec, "handler", str, where=where)
    if "." not in handler:
        raise r.fail(where + "handler", "must be <module>.<function>", handler, 'e.g. "events.handler"')
    task_root = Path(r.get(spec, "task_root", str, where=where))
    if not task_root.is_dir():
        raise r.fail(
            where + "task_root",
            "is not a directory",
            str(task_root),
            "point it at the folder holding the handler module",
        )
    memory = r.get(spec, "memory_mb", int, where=where, default=128)
    if not 128 <= memory <= 10240:
        raise r.fail(where + "memory_mb", "Lambda allows 128..10240 MB", memory, "pick a value in 128..10240")
    timeout = r.get(spec, "timeout_s", (int, float), where=where, default=3)
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise r.fail(
            where + "timeout_s", f"Lambda allows 1..{MAX_TIMEOUT_S} s", timeout, f"pick a value in (0, {MAX_TIMEOUT_S}]"
        )
    reserved = r.get(spec, "reserved_concurrency", (int, type(None)), where=where, default=None)
    if reserved is not None and reserved < 0:
        raise r.fail(where + "reserved_concurrency", "must be >= 0", reserved, "use 0 (always throttled) or more")
    environment = r.get(spec, "environment", dict, where=where, default={})
    for k, v in environment.items():
        if not isinstance(v, str):
            raise r.fail(
                f"{where}environment.{k}", "Lambda environment values are strings", v, f'quote it: "{k}": "{v}"'
            )
    role = r.get(spec, "role_identity", str, where=where)
    if role not in identities:
        raise r.fail(
            where + "role_identity",
            "is not in identities.json",
            role,
            f"use one of {sorted(identities)} or regenerate identities.json",
        )
    log_group = r.get(spec, "log_group", str, where=where, default=f"/aws/lambda/{name}")
    runtime = r.get(spec, "runtime", str, where=where, default="python3.12")
    if not runtime.startswith("python3."):
        raise r.fail(
            where + "runtime",
            "the local lambda service runs Python runtimes only",
            runtime,
            'use a Python runtime such as "python3.12"',
        )
    return FunctionConfig(
        name=name,
        key=r.get(spec, "key", str, where=where, default=name),
        handler=handler,
        task_root=task_root.resolve(),
        memory_mb=memory,
        timeout_s=float(timeout),
        reserved_concurrency=reserved,
        environment=dict(environment),
        role_identity=role,
        log_group=log_group,
        runtime=runtime,
    )
