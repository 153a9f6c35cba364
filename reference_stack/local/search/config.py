"""The search service's configuration, resolved once from its JSON config file.

Keys (docs/internals.md, "Local stack processes"): the common ``service``, ``host``, ``port``,
``ready_file``, ``parent_pid``, ``region``, ``account_id``, ``identities_file``, ``faults``,
``log_level``; and ``domain_arn``, ``access_policy`` (the domain's resource policy document),
``data_dir``. Optional: ``engine_version`` (the description's ``search.engine_version``, as the supervisor passes it)
``signature_window_s`` (300) and ``max_payload_bytes`` (10 MiB, the HTTP payload limit of
the small instance types such as ``t3.small.search``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError
from reference_stack.local.common.contract import log_level

FAULTS: dict[str, str] = {}  # the search service has no faults (docs/internals.md)


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    host: str
    port: int
    ready_file: Path | None
    parent_pid: int | None
    region: str
    account_id: str
    identities_file: Path
    domain_arn: str
    access_policy: Any
    data_dir: Path | None
    engine_version: str = "OpenSearch_2.19"
    # rest.action.multi.allow_explicit_index: OpenSearch's default (true); the stack's domain sets false
    allow_explicit_index: bool = True
    signature_window_s: int = 300
    max_payload_bytes: int = 10 * 1024 * 1024
    log_level: str = "INFO"


def parse_config(raw: dict[str, Any], where: str = "config") -> SearchConfig:
    """Validate a config document; every error names the key, the value and the fix."""

    def need(key: str) -> Any:
        if key not in raw or raw[key] in (None, ""):
            raise ConfigError(
                f"{where}: key {key!r} is missing",
                value=None,
                hint=f"add {key!r} (see docs/internals.md, search service)",
            )
        return raw[key]

    host = str(raw.get("host", "127.0.0.1"))
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(
            f"{where}: host {host!r} is not loopback", value=host, hint="the local stack listens on 127.0.0.1 only"
        )
    port = raw.get("port", 0)
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"{where}: port {port!r} is not 0..65535", value=port, hint="use 0 to pick a free port")
    faults = raw.get("faults") or {}
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown fault {unknown[0]!r}",
            value=unknown[0],
            hint="the search service has no faults; remove it",
        )
    window = raw.get("signature_window_s", 300)
    if not isinstance(window, int) or window <= 0:
        raise ConfigError(f"{where}: signature_window_s {window!r} must be a positive integer", value=window)
    max_payload = raw.get("max_payload_bytes", 10 * 1024 * 1024)
    if not isinstance(max_payload, int) or max_payload <= 0:
        raise ConfigError(f"{where}: max_payload_bytes {max_payload!r} must be a positive integer", value=max_payload)
    return SearchConfig(
        host=host,
        port=port,
        ready_file=Path(raw["ready_file"]) if raw.get("ready_file") else None,
        parent_pid=int(raw["parent_pid"]) if raw.get("parent_pid") else None,
        region=str(need("region")),
        account_id=str(raw.get("account_id", "123456789012")),
        identities_file=Path(need("identities_file")),
        domain_arn=str(need("domain_arn")),
        access_policy=need("access_policy"),
        data_dir=Path(raw["data_dir"]) if raw.get("data_dir") else None,
        engine_version=str(raw.get("engine_version", "OpenSearch_2.19")),
        allow_explicit_index=bool(raw.get("allow_explicit_index", True)),
        signature_window_s=window,
        max_payload_bytes=max_payload,
        log_level=log_level(raw, where=where),
    )
