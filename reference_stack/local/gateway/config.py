"""The gateway's configuration: one frozen object read from the service config file.

The supervisor writes ``<state>/services/gateway.json`` (keys in docs/internals.md, section
"gateway"); :func:`parse_config` validates it and every error names the key, the bad value and
the fix. Nothing else in the package reads the file or the environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from loadcheck.core.description import route_path_problem
from loadcheck.core.errors import ConfigError
from reference_stack.local.common.contract import log_level

# HTTP API quota: "Maximum integration timeout 30 seconds, cannot be increased" (docs/aws-behaviour.md §3.3,
# AGW:limits). The minimum (50 ms) is the same quota row.
MAX_INTEGRATION_TIMEOUT_S = 30.0
MIN_INTEGRATION_TIMEOUT_S = 0.05
# HTTP API payload quota is 10 MB (AGW:limits); the description carries the value.
DEFAULT_PAYLOAD_LIMIT = 10 * 1024 * 1024
# How long the wire waits for a client (AWS documents neither for HTTP APIs: choices, see
# docs/aws-behaviour.md §10.14): a started request must arrive whole within the first, a
# keep-alive connection may sit without a request for the second.
DEFAULT_REQUEST_TIMEOUT_S = 10.0
DEFAULT_IDLE_TIMEOUT_S = 60.0
ROUTE_KEY = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|ANY) (/\S*)$")


@dataclass(frozen=True)
class Limits:
    """One token bucket: ``rate`` requests per second refill, ``burst`` bucket size (§4)."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Cors:
    """API-level CORS configuration (docs/aws-behaviour.md §5)."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class AccessLogSettings:
    log_group: str
    format: dict[str, str]  # JSON field -> "$context.variable"
    batch_interval_s: float = 1.0
    delivery_delay_s: float = 0.0


@dataclass(frozen=True)
class GatewayConfig:
    """Everything the gateway process needs; built once by :func:`parse_config`."""

    host: str
    port: int
    region: str
    account_id: str
    api_id: str
    domain: str
    cert_file: str
    key_file: str
    identities_file: str
    routes: dict[str, str]  # route key -> Lambda function name
    lambda_endpoint: str
    aws_endpoint_url: str | None
    access_log: AccessLogSettings | None
    throttle: Limits | None = None
    route_throttle: dict[str, Limits] = field(default_factory=dict)
    cors: Cors | None = None
    default_endpoint_host: str = ""
    disable_execute_api_endpoint: bool = True
    payload_limit_bytes: int = DEFAULT_PAYLOAD_LIMIT
    integration_timeout_s: float = MAX_INTEGRATION_TIMEOUT_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S  # TLS handshake, then request line to last body byte
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S  # a keep-alive connection with no request started
    ready_file: str | None = None
    parent_pid: int | None = None
    faults: dict[str, Any] = field(default_factory=dict)
    log_level: str = "INFO"

    @property
    def execute_api_host(self) -> str:
        """The default endpoint's host name (docs/aws-behaviour.md §6)."""
        return self.default_endpoint_host or f"{self.api_id}.execute-api.{self.region}.amazonaws.com"


def _fail(key: str, message: str, value: object, hint: str) -> ConfigError:
    return ConfigError(f"gateway config: {key}: {message} (got {value!r})", value=value, hint=hint)


def _need(data: dict[str, Any], key: str, kind: type | tuple[type, ...], hint: str) -> Any:
    if key not in data or data[key] is None:
        raise _fail(key, "is missing", None, hint)
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _fail(key, f"has the wrong type {type(value).__name__}", value, hint)
    return value


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, "must be a number", value, f"set {key} to a number")
    return float(value)


def _limits(value: object, key: str) -> Limits | None:
    if value in (None, {}):
        return None
    if not isinstance(value, dict):
        raise _fail(
            key,
            "must be an object {rate_limit, burst_limit}",
            value,
            f'write {key} as {{"rate_limit": 200, "burst_limit": 100}}',
        )
    rate = _number(value.get("rate_limit"), f"{key}.rate_limit")
    burst = _number(value.get("burst_limit"), f"{key}.burst_limit")
    if rate < 0 or burst < 0 or not burst.is_integer():
        raise _fail(
            key,
            "rate_limit must be >= 0 and burst_limit a whole number >= 0",
            value,
            "use non-negative limits (0/0 rejects every request, as on AWS)",
        )
    return Limits(rate=rate, burst=int(burst))


def _strings(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(key, "must be a list of strings", value, f"write {key} as a JSON list of strings")
    return tuple(value)


def _cors(value: object) -> Cors | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise _fail("cors", "must be an object", value, "use the description's cors object or null")
    max_age = value.get("max_age")
    if max_age is not None:
        max_age = int(_number(max_age, "cors.max_age"))
    return Cors(
        allow_origins=_strings(value.get("allow_origins"), "cors.allow_origins"),
        allow_methods=tuple(m.upper() for m in _strings(value.get("allow_methods"), "cors.allow_methods")),
        allow_headers=tuple(h.lower() for h in _strings(value.get("allow_headers"), "cors.allow_headers")),
        expose_headers=tuple(h.lower() for h in _strings(value.get("expose_headers"), "cors.expose_headers")),
        max_age=max_age,
        allow_credentials=bool(value.get("allow_credentials", False)),
    )


def _access_log(value: object) -> AccessLogSettings | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise _fail(
            "access_log", "must be an object", value, "give {log_group, format, batch_interval_s, delivery_delay_s}"
        )
    group = _need(
        value, "log_group", str, "name the CloudWatch Logs group, e.g. /aws/vendedlogs/apigateway/loadcheck-http-api"
    )
    fmt = _need(value, "format", dict, 'give the JSON access-log format: {field: "$context.variable"}')
    for name, var in fmt.items():
        if not isinstance(var, str):
            raise _fail(f"access_log.format.{name}", "must be a string", var, 'use "$context.<variable>"')
    if not any("$context.requestId" in v or "$context.extendedRequestId" in v for v in fmt.values()):
        # docs/aws-behaviour.md §2.3: the format must include the request id.
        raise _fail(
            "access_log.format", "must include $context.requestId", fmt, 'add "requestId": "$context.requestId"'
        )
    interval = _number(value.get("batch_interval_s", 1.0), "access_log.batch_interval_s")
    delay = _number(value.get("delivery_delay_s", 0.0), "access_log.delivery_delay_s")
    if interval <= 0 or delay < 0:
        raise _fail(
            "access_log", "batch_interval_s must be > 0 and delivery_delay_s >= 0", value, "fix the two numbers"
        )
    return AccessLogSettings(log_group=group, format=dict(fmt), batch_interval_s=interval, delivery_delay_s=delay)


def parse_config(data: Any) -> GatewayConfig:
    if not isinstance(data, dict):
        raise _fail("(top level)", "must be a JSON object", data, "write the service config as an object")
    routes = _need(data, "routes", dict, 'map route keys to function names: {"GET /events": "loadcheck-events"}')
    for key, fn in routes.items():
        if not ROUTE_KEY.match(key) or not isinstance(fn, str):
            raise _fail(
                f"routes[{key!r}]",
                "must be 'METHOD /path' -> function name",
                fn,
                'e.g. "GET /events": "loadcheck-events"',
            )
        problem = route_path_problem(key.split(" ", 1)[1])
        if problem:
            raise _fail(f"routes[{key!r}]", problem, key, "write path variables as whole segments: /events/{date}")
    route_throttle: dict[str, Limits] = {}
    for key, lim in (data.get("route_throttle") or {}).items():
        if key not in routes:
            raise _fail(f"route_throttle[{key!r}]", "names no configured route", key, f"use one of {sorted(routes)}")
        parsed = _limits(lim, f"route_throttle[{key!r}]")
        if parsed is not None:
            route_throttle[key] = parsed
    timeout = _number(data.get("integration_timeout_s", MAX_INTEGRATION_TIMEOUT_S), "integration_timeout_s")
    if not MIN_INTEGRATION_TIMEOUT_S <= timeout <= MAX_INTEGRATION_TIMEOUT_S:
        raise _fail(
            "integration_timeout_s",
            "must be between 0.05 and 30 seconds (HTTP API quota)",
            timeout,
            "HTTP APIs cannot raise the 30 s integration timeout; pick a value in range",
        )
    limit = _number(data.get("payload_limit_bytes", DEFAULT_PAYLOAD_LIMIT), "payload_limit_bytes")
    if limit <= 0:
        raise _fail("payload_limit_bytes", "must be > 0", limit, "use 10485760 (10 MB, the HTTP API quota)")
    wire_timeouts: dict[str, float] = {}
    for key, default in (("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S), ("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S)):
        wire_timeouts[key] = _number(data.get(key, default), key)
        if wire_timeouts[key] <= 0:
            raise _fail(key, "must be > 0 seconds", wire_timeouts[key], f"use {default:g} (the default) or omit it")
    faults = data.get("faults") or {}
    if not isinstance(faults, dict):
        raise _fail("faults", "must be an object", faults, "write faults as {name: value}")
    parent = data.get("parent_pid")
    return GatewayConfig(
        host=str(data.get("host", "127.0.0.1")),
        port=int(_number(data.get("port", 0), "port")),
        region=_need(data, "region", str, "set region, e.g. us-east-1"),
        account_id=str(_need(data, "account_id", (str, int), "set account_id, e.g. 123456789012")),
        api_id=_need(data, "api_id", str, "set api_id (10 lower-case letters/digits)"),
        domain=_need(data, "domain", str, "set domain to the custom domain name").lower(),
        cert_file=_need(data, "cert_file", str, "give the PEM certificate chain for the domain"),
        key_file=_need(data, "key_file", str, "give the PEM private key for the certificate"),
        identities_file=_need(data, "identities_file", str, "give the path of identities.json"),
        routes=dict(routes),
        lambda_endpoint=_need(
            data, "lambda_endpoint", str, "give the lambda service URL, http://127.0.0.1:PORT"
        ).rstrip("/"),
        aws_endpoint_url=data.get("aws_endpoint_url"),
        access_log=_access_log(data.get("access_log")),
        throttle=_limits(data.get("throttle"), "throttle"),
        route_throttle=route_throttle,
        cors=_cors(data.get("cors")),
        default_endpoint_host=str(data.get("default_endpoint_host") or "").lower(),
        disable_execute_api_endpoint=bool(data.get("disable_execute_api_endpoint", True)),
        payload_limit_bytes=int(limit),
        integration_timeout_s=timeout,
        request_timeout_s=wire_timeouts["request_timeout_s"],
        idle_timeout_s=wire_timeouts["idle_timeout_s"],
        ready_file=data.get("ready_file"),
        parent_pid=int(parent) if parent else None,
        faults=dict(faults),
        log_level=log_level(data, where="gateway config"),
    )
