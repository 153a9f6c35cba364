"""The aws service's configuration, resolved and validated in one place.

Keys (docs/internals.md, "Common config keys" and "aws"):

| key | default | meaning |
|---|---|---|
| service, host, port, ready_file, parent_pid, region, account_id, identities_file, faults, log_level | | the common service contract; role sessions STS issues are recorded in the ``sessions.json`` beside ``identities_file`` (``sts.py``) |
| ``burst_start`` | ``"full"`` | initial level of each provisioned table's burst buckets: ``"full"`` (300 s of unused capacity, as a table idle for 5 minutes on AWS) or ``"empty"`` |
| ``metrics_interval_s`` | 60 | how often accumulated metrics are published into moto's CloudWatch |
| ``governor`` | true | false serves moto unchanged (benchmarks' baseline) |
| ``clock`` | ``"system"`` | TEST-ONLY ``"manual"``: time stands still unless ``POST /_loadcheck/clock {"advance_s": X}`` |
| ``keep_alive`` | true | serve HTTP/1.1 with persistent connections |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from loadcheck.core.errors import ConfigError
from loadcheck.core.state import ACCOUNT_ID
from reference_stack.local.common.contract import LOG_LEVELS

_KNOWN = {
    "service",
    "admin_token_file",  # read by the service contract (Lifecycle.admin_token)
    "host",
    "port",
    "ready_file",
    "parent_pid",
    "region",
    "account_id",
    "identities_file",
    "faults",
    "log_level",
    "burst_start",
    "metrics_interval_s",
    "governor",
    "clock",
    "keep_alive",
}


@dataclass(frozen=True, kw_only=True)
class AwsConfig:
    host: str = "127.0.0.1"
    port: int = 0
    ready_file: Path | None = None
    parent_pid: int | None = None
    identities_file: Path | None = None
    region: str = "us-east-1"
    account_id: str = ACCOUNT_ID
    faults: dict[str, Any] = field(default_factory=dict)
    log_level: str = "INFO"
    burst_start: Literal["full", "empty"] = "full"
    metrics_interval_s: float = 60.0
    governor: bool = True
    clock: Literal["system", "manual"] = "system"
    keep_alive: bool = True
    unknown_keys: tuple[str, ...] = ()


def parse_config(data: Any, where: str = "config") -> AwsConfig:
    """Validate a config document; every error names the key, the value and the fix."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: the aws service config must be a JSON object",
            value=data,
            hint="write a JSON object with the keys in docs/internals.md",
        )

    def bad(key: str, hint: str) -> ConfigError:
        return ConfigError(f"{where}: {key}={data[key]!r} is invalid", value=data[key], hint=hint)

    kwargs: dict[str, Any] = {}
    if "host" in data:
        if data["host"] != "127.0.0.1":
            raise bad("host", "the local stack binds loopback only: use 127.0.0.1")
        kwargs["host"] = data["host"]
    for key, lo, hi in (("port", 0, 65535), ("parent_pid", 1, 2**31)):
        if data.get(key) is not None:
            if not isinstance(data[key], int) or isinstance(data[key], bool) or not lo <= data[key] <= hi:
                raise bad(key, f"use an integer between {lo} and {hi}")
            kwargs[key] = data[key]
    if data.get("ready_file"):
        kwargs["ready_file"] = Path(data["ready_file"])
    if data.get("identities_file"):
        if not isinstance(data["identities_file"], str):
            raise bad("identities_file", "give the path of identities.json as a string")
        kwargs["identities_file"] = Path(data["identities_file"])
    for key in ("region", "account_id", "log_level"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise bad(key, f"give {key} as a non-empty string")
            kwargs[key] = data[key]
    if "log_level" in kwargs:
        if kwargs["log_level"].upper() not in LOG_LEVELS:
            raise bad("log_level", f"use one of {', '.join(LOG_LEVELS)}")
        kwargs["log_level"] = kwargs["log_level"].upper()
    if data.get("faults") is not None:
        if not isinstance(data["faults"], dict):
            raise bad("faults", 'give faults as an object, e.g. {"drop-writes": 0.1}')
        kwargs["faults"] = data["faults"]
    if "burst_start" in data:
        if data["burst_start"] not in ("full", "empty"):
            raise bad("burst_start", 'use "full" (idle table with 300 s of burst) or "empty"')
        kwargs["burst_start"] = data["burst_start"]
    if "metrics_interval_s" in data:
        value = data["metrics_interval_s"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.05 <= value <= 3600:
            raise bad("metrics_interval_s", "use seconds between 0.05 and 3600 (AWS publishes every 60)")
        kwargs["metrics_interval_s"] = float(value)
    for key in ("governor", "keep_alive"):
        if key in data:
            if not isinstance(data[key], bool):
                raise bad(key, f"use true or false for {key}")
            kwargs[key] = data[key]
    if "clock" in data:
        if data["clock"] not in ("system", "manual"):
            raise bad("clock", 'use "system"; "manual" is for tests (POST /_loadcheck/clock advances it)')
        kwargs["clock"] = data["clock"]
    kwargs["unknown_keys"] = tuple(sorted(set(data) - _KNOWN))
    return AwsConfig(**kwargs)
