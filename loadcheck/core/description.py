"""The stack description: ``reference_stack/terraform/stack.auto.tfvars.json``.

One file describes the stack for both targets: Terraform reads it as typed variables, and the
local emulation reads it through :func:`load_description`. Every value the emulation needs
comes from here, so the two cannot drift apart. Validation errors name the field, the value
and the fix.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core.errors import DescriptionError
from loadcheck.core.iam import route_arn

DEFAULT_DESCRIPTION = Path(__file__).resolve().parents[2] / "reference_stack" / "terraform" / "stack.auto.tfvars.json"
HANDLERS_DIR = Path(__file__).resolve().parents[2] / "reference_stack" / "handlers"

ROUTE_KEY = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) (/[A-Za-z0-9._~/{}+-]*)$")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class TableSpec:
    name: str
    hash_key: str
    range_key: str
    billing_mode: str  # PROVISIONED | PAY_PER_REQUEST
    read_capacity: int
    write_capacity: int
    point_in_time_recovery: bool = True


@dataclass(frozen=True)
class FunctionSpec:
    key: str  # "events" or "search": the key in the description
    name: str  # the deployed function name, "<name_prefix>-<key>"
    handler: str  # "module.function", relative to the handlers directory
    runtime: str
    memory_mb: int
    timeout_s: int
    reserved_concurrency: int
    log_retention_days: int
    environment: dict[str, str]

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"

    @property
    def role_name(self) -> str:
        return f"{self.name}-role"


@dataclass(frozen=True)
class ThrottleSpec:
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class CorsSpec:
    allow_origins: tuple[str, ...]
    allow_methods: tuple[str, ...]
    allow_headers: tuple[str, ...]
    expose_headers: tuple[str, ...]
    max_age: int
    allow_credentials: bool


@dataclass(frozen=True)
class AccessLogSpec:
    log_group: str
    retention_days: int
    format: dict[str, str]  # JSON field name -> "$context.variable"


@dataclass(frozen=True)
class SearchSpec:
    domain_name: str
    index: str
    engine_version: str
    instance_type: str
    instance_count: int
    volume_size_gb: int


@dataclass(frozen=True)
class StackDescription:
    path: str
    region: str
    name_prefix: str
    domain_name: str
    hosted_zone_name: str
    disable_execute_api_endpoint: bool
    table: TableSpec
    functions: dict[str, FunctionSpec]
    routes: dict[str, str]  # route key -> function key
    throttle: ThrottleSpec
    route_throttle: dict[str, ThrottleSpec]
    payload_limit_bytes: int
    integration_timeout_s: int
    cors: CorsSpec
    access_log: AccessLogSpec
    search: SearchSpec
    requester_trusted_principal_arns: tuple[str, ...] = field(default_factory=tuple)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def function_for_route(self, route_key: str) -> FunctionSpec:
        return self.functions[self.routes[route_key]]

    def route_arn(self, account_id: str, api_id: str, route_key: str, stage: str = "$default") -> str:
        """The execute-api ARN of a route (:func:`loadcheck.core.iam.route_arn`)."""
        return route_arn(self.region, account_id, api_id, route_key, stage)

    def table_arn(self, account_id: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{account_id}:table/{self.table.name}"

    def search_domain_arn(self, account_id: str) -> str:
        return f"arn:aws:es:{self.region}:{account_id}:domain/{self.search.domain_name}"


class _Reader:
    """Reads typed fields from a JSON object and names the field in every error."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, fld: str, message: str, value: object = None, hint: str | None = None) -> DescriptionError:
        return DescriptionError(message, path=self.path, field=fld, value=value, hint=hint)

    def obj(self, data: Any, fld: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.fail(fld, f"expected an object, got {type(data).__name__} {data!r}")
        return data

    def get(
        self, data: dict[str, Any], key: str, prefix: str, kind: type | tuple[type, ...], default: Any = ...
    ) -> Any:
        fld = f"{prefix}{key}"
        if key not in data:
            if default is ...:
                raise self.fail(fld, "is missing", hint=f'add "{key}" to the description')
            return default
        value = data[key]
        if kind in (int, float) or kind == (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(fld, f"expected a number, got {value!r}", value)
            if kind is int and not float(value).is_integer():
                raise self.fail(fld, f"expected a whole number, got {value!r}", value)
            return int(value) if kind is int else float(value)
        if not isinstance(value, kind):
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(fld, f"expected {name}, got {type(value).__name__} {value!r}", value)
        return value

    def positive(self, value: float, fld: str, *, allow_zero: bool = False) -> None:
        if value < 0 or (value == 0 and not allow_zero):
            raise self.fail(
                fld, f"must be {'zero or more' if allow_zero else 'greater than zero'}, got {value!r}", value
            )


def load_description(path: str | Path | None = None) -> StackDescription:
    """Read and validate a stack description; ``None`` reads the reference stack's."""
    p = Path(path) if path is not None else DEFAULT_DESCRIPTION
    spath = str(p)
    if not p.is_file():
        raise DescriptionError(
            "file not found", path=spath, hint="pass --description with the path of a stack.auto.tfvars.json"
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DescriptionError(
            f"not valid JSON: {exc.msg}: line {exc.lineno} column {exc.colno}", path=spath, hint="fix the JSON syntax"
        ) from exc
    return parse_description(data, spath)


def parse_description(data: Any, path: str = "<description>") -> StackDescription:
    r = _Reader(path)
    top = r.obj(data, "(top level)")

    region = r.get(top, "region", "", str)
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region):
        raise r.fail("region", f"not an AWS region name: {region!r}", region, "use a name like us-east-1")
    name_prefix = r.get(top, "name_prefix", "", str)
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}", name_prefix):
        raise r.fail(
            "name_prefix", f"must be lower-case letters, digits and '-', 1-31 chars, got {name_prefix!r}", name_prefix
        )
    domain = r.get(top, "domain_name", "", str)
    if not re.fullmatch(r"([a-z0-9-]+\.)+[a-z0-9-]+", domain):
        raise r.fail("domain_name", f"not a DNS name: {domain!r}", domain)
    zone = r.get(top, "hosted_zone_name", "", str)
    if not (domain == zone or domain.endswith("." + zone)):
        raise r.fail(
            "hosted_zone_name",
            f"{domain!r} is not inside the zone {zone!r}",
            zone,
            "name the Route 53 zone that holds domain_name",
        )
    disable_default = r.get(top, "disable_execute_api_endpoint", "", bool)

    t = r.obj(r.get(top, "table", "", dict), "table")
    billing = r.get(t, "billing_mode", "table.", str)
    if billing not in ("PROVISIONED", "PAY_PER_REQUEST"):
        raise r.fail("table.billing_mode", f"must be PROVISIONED or PAY_PER_REQUEST, got {billing!r}", billing)
    rcu = r.get(t, "read_capacity", "table.", int)
    wcu = r.get(t, "write_capacity", "table.", int)
    if billing == "PROVISIONED":
        r.positive(rcu, "table.read_capacity")
        r.positive(wcu, "table.write_capacity")
    table = TableSpec(
        name=r.get(t, "name", "table.", str),
        hash_key=r.get(t, "hash_key", "table.", str),
        range_key=r.get(t, "range_key", "table.", str),
        billing_mode=billing,
        read_capacity=rcu,
        write_capacity=wcu,
        point_in_time_recovery=r.get(t, "point_in_time_recovery", "table.", bool, True),
    )
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", table.name):
        raise r.fail("table.name", f"not a valid DynamoDB table name: {table.name!r}", table.name)

    functions: dict[str, FunctionSpec] = {}
    for key, spec in r.obj(r.get(top, "functions", "", dict), "functions").items():
        pre = f"functions.{key}."
        s = r.obj(spec, f"functions.{key}")
        handler = r.get(s, "handler", pre, str)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*", handler):
            raise r.fail(pre + "handler", f"expected module.function, got {handler!r}", handler)
        runtime = r.get(s, "runtime", pre, str)
        m = re.fullmatch(r"python3\.(\d+)", runtime)
        if not m or int(m.group(1)) < 12:
            raise r.fail(pre + "runtime", f"expected python3.12 or newer, got {runtime!r}", runtime)
        memory = r.get(s, "memory_mb", pre, int)
        if not 128 <= memory <= 10240:
            raise r.fail(pre + "memory_mb", f"must be 128..10240, got {memory}", memory)
        timeout = r.get(s, "timeout_s", pre, int)
        if not 1 <= timeout <= 900:
            raise r.fail(pre + "timeout_s", f"must be 1..900, got {timeout}", timeout)
        reserved = r.get(s, "reserved_concurrency", pre, int)
        r.positive(reserved, pre + "reserved_concurrency")
        env = r.obj(r.get(s, "environment", pre, dict, {}), pre + "environment")
        for k, v in env.items():
            if not isinstance(v, str):
                raise r.fail(
                    f"{pre}environment.{k}",
                    f"Lambda environment values are strings, got {v!r}",
                    v,
                    f'write "{v}" in quotes',
                )
        functions[key] = FunctionSpec(
            key=key,
            name=f"{name_prefix}-{key}",
            handler=handler,
            runtime=runtime,
            memory_mb=memory,
            timeout_s=timeout,
            reserved_concurrency=reserved,
            log_retention_days=r.get(s, "log_retention_days", pre, int),
            environment=dict(env),
        )
    for needed in ("events", "search"):
        if needed not in functions:
            raise r.fail(
                f"functions.{needed}", "is missing", hint="the reference stack has an events and a search function"
            )

    routes: dict[str, str] = {}
    for rk, fkey in r.obj(r.get(top, "routes", "", dict), "routes").items():
        if not ROUTE_KEY.fullmatch(rk):
            raise r.fail(f"routes.{rk}", f"not a route key like 'GET /events': {rk!r}", rk)
        if fkey not in functions:
            raise r.fail(f"routes.{rk}", f"names function {fkey!r}, which is not in functions", fkey)
        routes[rk] = fkey

    def throttle(obj: Any, fld: str) -> ThrottleSpec:
        o = r.obj(obj, fld)
        rate = r.get(o, "rate_limit", fld + ".", (int, float))
        burst = r.get(o, "burst_limit", fld + ".", int)
        # 0/0 rejects every request (docs/aws-behaviour.md §4, the default_route_settings pitfall).
        r.positive(rate, fld + ".rate_limit")
        r.positive(burst, fld + ".burst_limit")
        return ThrottleSpec(float(rate), burst)

    stage_throttle = throttle(r.get(top, "throttle", "", dict), "throttle")
    route_throttle = {
        rk: throttle(v, f"route_throttle.{rk}")
        for rk, v in r.obj(r.get(top, "route_throttle", "", dict, {}), "route_throttle").items()
    }
    for rk in route_throttle:
        if rk not in routes:
            raise r.fail(f"route_throttle.{rk}", "names a route that is not in routes", rk)

    c = r.obj(r.get(top, "cors", "", dict), "cors")
    cors = CorsSpec(
        allow_origins=tuple(r.get(c, "allow_origins", "cors.", list)),
        allow_methods=tuple(r.get(c, "allow_methods", "cors.", list)),
        allow_headers=tuple(h.lower() for h in r.get(c, "allow_headers", "cors.", list)),
        expose_headers=tuple(h.lower() for h in r.get(c, "expose_headers", "cors.", list)),
        max_age=r.get(c, "max_age", "cors.", int),
        allow_credentials=r.get(c, "allow_credentials", "cors.", bool),
    )

    a = r.obj(r.get(top, "access_log", "", dict), "access_log")
    fmt = r.obj(r.get(a, "format", "access_log.", dict), "access_log.format")
    for k, v in fmt.items():
        if not isinstance(v, str) or "$context." not in v:
            raise r.fail(f"access_log.format.{k}", f"expected a $context variable, got {v!r}", v)
    if not any(v in ("$context.requestId", "$context.extendedRequestId") for v in fmt.values()):
        raise r.fail(
            "access_log.format",
            "must include $context.requestId (docs/aws-behaviour.md §2.3)",
            hint='add "requestId": "$context.requestId"',
        )
    if len(json.dumps(fmt)) > 3072:
        raise r.fail("access_log.format", "is longer than the 3 KB access-log template quota")
    access_log = AccessLogSpec(
        log_group=r.get(a, "log_group", "access_log.", str),
        retention_days=r.get(a, "retention_days", "access_log.", int),
        format=dict(fmt),
    )

    sr = r.obj(r.get(top, "search", "", dict), "search")
    search = SearchSpec(
        domain_name=r.get(sr, "domain_name", "search.", str),
        index=r.get(sr, "index", "search.", str),
        engine_version=r.get(sr, "engine_version", "search.", str),
        instance_type=r.get(sr, "instance_type", "search.", str),
        instance_count=r.get(sr, "instance_count", "search.", int),
        volume_size_gb=r.get(sr, "volume_size_gb", "search.", int),
    )
    if not re.fullmatch(r"[a-z][a-z0-9-]{2,27}", search.domain_name):
        raise r.fail(
            "search.domain_name", f"OpenSearch domain names are 3-28 chars [a-z0-9-], got {search.domain_name!r}"
        )

    req = r.obj(r.get(top, "requester", "", dict, {}), "requester")
    trusted = tuple(r.get(req, "trusted_principal_arns", "requester.", list, []))

    return StackDescription(
        path=path,
        region=region,
        name_prefix=name_prefix,
        domain_name=domain,
        hosted_zone_name=zone,
        disable_execute_api_endpoint=disable_default,
        table=table,
        functions=functions,
        routes=routes,
        throttle=stage_throttle,
        route_throttle=route_throttle,
        payload_limit_bytes=r.get(top, "payload_limit_bytes", "", int),
        integration_timeout_s=min(30, r.get(top, "integration_timeout_s", "", int)),
        cors=cors,
        access_log=access_log,
        search=search,
        requester_trusted_principal_arns=trusted,
        raw=top,
    )
