"""The stack description: ``reference_stack/terraform/stack.auto.tfvars.json``.

One file describes the stack for both targets: Terraform reads it as typed variables, and the
local emulation reads it through :func:`load_description`. Every value the emulation needs
comes from here, so the two cannot drift apart. Validation errors name the field, the value
and the fix.

The user's own values (domain, hosted zone, region, anything account-specific) go in a
git-ignored override beside it, ``user.auto.tfvars.json`` (:data:`OVERRIDE_NAME`). Terraform
loads ``*.auto.tfvars.json`` files in lexical order of their names, so the override is read after
the tracked file and each top-level key it holds replaces the tracked key whole (Terraform does
not merge objects across variable files). :func:`load_description` reads it the same way; for the
local stack (``aws=False``) it keeps the tracked values of :data:`AWS_ONLY_KEYS`, so filling in the
override never changes the local stack's domain or region. The tracked file holds placeholders
under the reserved ``.test`` top-level domain (RFC 6761: never delegated publicly, so ACM cannot
validate a certificate for it); :func:`aws_placeholders` names what is still a placeholder.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core.errors import DescriptionError
from loadcheck.core.iam import route_arn
from loadcheck.core.jsonfile import read_json_object

DEFAULT_DESCRIPTION = Path(__file__).resolve().parents[2] / "reference_stack" / "terraform" / "stack.auto.tfvars.json"
# The user's override beside the description: sorts after "stack.auto.tfvars.json", so Terraform
# loads it last; git-ignored (reference_stack/terraform/.gitignore).
OVERRIDE_NAME = "user.auto.tfvars.json"
# Keys only AWS uses: the local stack keeps the tracked file's values even when the override sets them.
AWS_ONLY_KEYS = ("region", "domain_name", "hosted_zone_name", "requester")
# The reserved top-level domain of the tracked placeholders (RFC 6761).
PLACEHOLDER_TLD = ".test"
# API Gateway adds an access-log group to the account's CloudWatch Logs resource policy unless its
# name starts with this prefix; that policy has a size limit (docs/aws-behaviour.md §2.5).
VENDED_LOGS_PREFIX = "/aws/vendedlogs/"
# What each role may do on the search domain, decided from the domain policy and the role policy
# together (docs/aws-behaviour.md §9.3): the search function only POSTs <index>/_search; the
# search-admin role (corpus loading) works on the index and paths under it, never the whole domain.
SEARCH_FUNCTION_ACTIONS = ("es:ESHttpPost",)
SEARCH_ADMIN_ACTIONS = ("es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost", "es:ESHttpPut", "es:ESHttpDelete")
# opensearch.tf's advanced option rest.action.multi.allow_explicit_index: no index named in a
# `_bulk` body, so the index scopes above cannot be bypassed (docs/aws-behaviour.md §9.3).
SEARCH_ALLOW_EXPLICIT_INDEX = False
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
    reserved_concurrency: int | None  # None: unreserved, the function shares the account's concurrency
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
    # Publish the domain's application logs to CloudWatch Logs: needs an account-level CloudWatch
    # Logs resource policy, of which a region holds at most 10 (docs/aws-behaviour.md §9.7).
    application_logs: bool = False


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
    override_path: str | None = None  # the user's override that was read, if any

    def function_for_route(self, route_key: str) -> FunctionSpec:
        return self.functions[self.routes[route_key]]

    def route_arn(self, account_id: str, api_id: str, route_key: str, stage: str = "$default") -> str:
        """The execute-api ARN of a route (:func:`loadcheck.core.iam.route_arn`)."""
        return route_arn(self.region, account_id, api_id, route_key, stage)

    def table_arn(self, account_id: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{account_id}:table/{self.table.name}"

    def export_bucket(self, account_id: str) -> str:
        """The S3 bucket the table is exported to (reference_stack/terraform/export.tf names it the same)."""
        return f"{self.name_prefix}-exports-{account_id}"

    def search_domain_arn(self, account_id: str) -> str:
        return f"arn:aws:es:{self.region}:{account_id}:domain/{self.search.domain_name}"

    def search_function_resources(self, account_id: str) -> tuple[str, ...]:
        """What the search function may call (with :data:`SEARCH_FUNCTION_ACTIONS`): its index's
        ``_search``, as iam.tf and opensearch.tf grant it."""
        return (f"{self.search_domain_arn(account_id)}/{self.search.index}/_search",)

    def search_admin_resources(self, account_id: str) -> tuple[str, ...]:
        """What corpus loading may call (with :data:`SEARCH_ADMIN_ACTIONS`): the index and every
        path under it (``PUT <index>``, ``POST <index>/_bulk``, ``<index>/_refresh``), as iam.tf and
        opensearch.tf grant the search-admin role; never ``/_bulk`` at the root, which could write
        any index."""
        index_arn = f"{self.search_domain_arn(account_id)}/{self.search.index}"
        return (index_arn, f"{index_arn}/*")


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
        self,
        data: dict[str, Any],
        key: str,
        prefix: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        *,
        nullable: bool = False,
    ) -> Any:
        fld = f"{prefix}{key}"
        if key not in data:
            if default is ...:
                raise self.fail(fld, "is missing", hint=f'add "{key}" to the description')
            return default
        value = data[key]
        if value is None and nullable:
            return None
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


def load_description(path: str | Path | None = None, *, aws: bool = False) -> StackDescription:
    """Read and validate a stack description; ``None`` reads the reference stack's.

    The user's override beside it (:data:`OVERRIDE_NAME`), when present, replaces whole top-level
    keys, as Terraform's later variable file does. ``aws=False`` (the local stack) keeps the
    tracked values of :data:`AWS_ONLY_KEYS`; ``aws=True`` takes every key of the override.
    """
    p = Path(path) if path is not None else DEFAULT_DESCRIPTION
    data = _read_object(
        p, what="stack description", hint="pass --description with the path of a stack.auto.tfvars.json"
    )
    override = p.parent / OVERRIDE_NAME
    if override == p or not override.is_file():
        return parse_description(data, str(p))
    values = _read_object(override, what="override", hint=f"fix {override}, or delete it to use {p.name} alone")
    for key, value in values.items():
        if key not in data:
            raise DescriptionError(
                f"{key!r} is not a key of {p.name}",
                path=str(override),
                field=key,
                hint=f"the override sets top-level keys of {p.name}: {', '.join(sorted(data))}",
            )
        if aws or key not in AWS_ONLY_KEYS:
            data[key] = value
    desc = parse_description(data, f"{p} + {override.name}")
    return dataclasses.replace(desc, override_path=str(override))


def _read_object(p: Path, *, what: str, hint: str) -> dict[str, Any]:
    def error(message: str, *, value: object = None, hint: str | None = None) -> DescriptionError:
        return DescriptionError(message, path=str(p), value=value, hint=hint)

    return read_json_object(p, what=what, hint=hint, error=error)


def aws_placeholders(desc: StackDescription) -> list[str]:
    """The fields that still hold the tracked file's local-only placeholders (names under the
    reserved ``.test`` domain): Terraform refuses them at plan time, and ``loadcheck smoke`` names
    them with :func:`placeholder_error`."""
    fields = [("domain_name", desc.domain_name), ("hosted_zone_name", desc.hosted_zone_name)]
    return [name for name, value in fields if value == PLACEHOLDER_TLD[1:] or value.endswith(PLACEHOLDER_TLD)]


def placeholder_error(desc: StackDescription) -> DescriptionError | None:
    """A DescriptionError naming the override to fill in, or None when nothing is a placeholder."""
    left = aws_placeholders(desc)
    if not left:
        return None
    override = Path(desc.override_path or Path(desc.path.split(" + ")[0]).parent / OVERRIDE_NAME)
    values = ", ".join(f"{name} = {getattr(desc, name)!r}" for name in left)
    return DescriptionError(
        f"{values}: a placeholder of the local stack ({PLACEHOLDER_TLD} names cannot be delegated "
        "publicly nor validated by ACM)",
        path=desc.path,
        field=left[0],
        value=getattr(desc, left[0]),
        hint=f'set your own in {override} (git-ignored), e.g. {{"domain_name": "events.example.com", '
        f'"hosted_zone_name": "example.com"}}; copy {OVERRIDE_NAME}.example to start',
    )


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
        # null (the default): unreserved. A reservation needs the account's unreserved concurrency
        # to stay at its minimum, which new accounts cannot spare (docs/aws-behaviour.md §8.6).
        reserved = r.get(s, "reserved_concurrency", pre, int, None, nullable=True)
        if reserved is not None:
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
    if not access_log.log_group.startswith(VENDED_LOGS_PREFIX):
        raise r.fail(
            "access_log.log_group",
            f"{access_log.log_group!r} is not under {VENDED_LOGS_PREFIX}: API Gateway would add it to the "
            "account's CloudWatch Logs resource policy, whose size limit makes stage creation fail in "
            "accounts with many APIs (docs/aws-behaviour.md §2.5)",
            access_log.log_group,
            f"name it {VENDED_LOGS_PREFIX}apigateway/<api-name>",
        )

    sr = r.obj(r.get(top, "search", "", dict), "search")
    search = SearchSpec(
        domain_name=r.get(sr, "domain_name", "search.", str),
        index=r.get(sr, "index", "search.", str),
        engine_version=r.get(sr, "engine_version", "search.", str),
        instance_type=r.get(sr, "instance_type", "search.", str),
        instance_count=r.get(sr, "instance_count", "search.", int),
        volume_size_gb=r.get(sr, "volume_size_gb", "search.", int),
        application_logs=r.get(sr, "application_logs", "search.", bool, False),
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
