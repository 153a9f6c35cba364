"""The services' JSON configs, built in one place: one typed builder per service.

The supervisor (from the stack description), the gateway harness (tests) and the benchmarks all
build their service configs here, so a key is spelled once; each service's ``config.py`` reads
and validates what these write (keys: docs/internals.md, "Local stack processes").

    ServiceBase       the common keys: region, account, identities file, parent pid, log level
    aws_config        moto + capacity governor
    search_config     the OpenSearch-compatible service
    LambdaFunctionConfig      one Lambda function of the lambda service
    lambda_config     the Lambda service (Invoke API + Runtime API)
    gateway_config    the HTTP API on the custom domain
    stack_functions / stack_gateway_config / cors_json / limits_json
                      the parts derived from the stack description
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core.description import CorsSpec, StackDescription, ThrottleSpec, handlers_dir_error
from loadcheck.core.state import ACCOUNT_ID
from reference_stack.local.common.tls import TlsFiles

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, kw_only=True)
class ServiceBase:
    """The keys every service config carries (docs/internals.md, "Common config keys")."""

    region: str
    identities_file: Path | None = None  # every service but aws verifies or signs with it
    admin_token_file: Path | None = None  # <state>/admin-token: /_loadcheck/* requires it (None: open)
    account_id: str = ACCOUNT_ID
    parent_pid: int = field(default_factory=os.getpid)  # the services exit when it dies
    log_level: str = "INFO"

    def keys(self, service: str, *, ready_file: Path, port: int, faults: dict[str, Any] | None) -> dict[str, Any]:
        keys = {
            "service": service,
            "host": LOOPBACK,
            "port": port,
            "ready_file": str(ready_file),
            "parent_pid": self.parent_pid,
            "region": self.region,
            "account_id": self.account_id,
            "log_level": self.log_level,
            "faults": dict(faults or {}),
        }
        if self.identities_file is not None:
            keys["identities_file"] = str(self.identities_file)
        if self.admin_token_file is not None:
            keys["admin_token_file"] = str(self.admin_token_file)
        return keys


def aws_config(
    base: ServiceBase,
    *,
    ready_file: Path,
    port: int = 0,
    burst_start: str = "full",
    metrics_interval_s: float = 60,
    governor: bool = True,
    keep_alive: bool = True,
    faults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``governor=False`` serves plain moto and ``keep_alive=False`` HTTP/1.0: the benchmark's baselines."""
    return base.keys("aws", ready_file=ready_file, port=port, faults=faults) | {
        "burst_start": burst_start,
        "metrics_interval_s": metrics_interval_s,
        "governor": governor,
        "keep_alive": keep_alive,
    }


def search_config(
    base: ServiceBase,
    *,
    ready_file: Path,
    domain_arn: str,
    access_policy: dict[str, Any],
    data_dir: Path,
    port: int = 0,
    engine_version: str | None = None,
    allow_explicit_index: bool | None = None,
) -> dict[str, Any]:
    extra: dict[str, Any] = {"engine_version": engine_version} if engine_version else {}
    if allow_explicit_index is not None:
        extra["allow_explicit_index"] = allow_explicit_index
    return base.keys("search", ready_file=ready_file, port=port, faults=None) | {
        "domain_arn": domain_arn,
        "access_policy": access_policy,
        "data_dir": str(data_dir),
        **extra,
    }


@dataclass(frozen=True, kw_only=True)
class LambdaFunctionConfig:
    """One function of the lambda service (docs/internals.md, lambda ``functions``)."""

    key: str
    handler: str
    task_root: Path
    memory_mb: int
    timeout_s: float
    reserved_concurrency: int | None
    environment: dict[str, str]
    role_identity: str
    log_group: str

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "handler": self.handler,
            "task_root": str(self.task_root),
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "reserved_concurrency": self.reserved_concurrency,
            "environment": dict(self.environment),
            "role_identity": self.role_identity,
            "log_group": self.log_group,
        }


def lambda_config(
    base: ServiceBase,
    *,
    ready_file: Path,
    aws_endpoint_url: str,
    functions: dict[str, LambdaFunctionConfig],
    port: int = 0,
    python: str = sys.executable,
    faults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return base.keys("lambda", ready_file=ready_file, port=port, faults=faults) | {
        "aws_endpoint_url": aws_endpoint_url,
        "python": python,
        "functions": {name: spec.to_json() for name, spec in functions.items()},
    }


def gateway_config(
    base: ServiceBase,
    *,
    ready_file: Path,
    api_id: str,
    domain: str,
    tls: TlsFiles,
    routes: dict[str, str],
    lambda_endpoint: str,
    aws_endpoint_url: str | None,
    throttle: dict[str, float] | None,
    route_throttle: dict[str, dict[str, float]],
    cors: dict[str, Any] | None,
    access_log: dict[str, Any] | None,
    payload_limit_bytes: int,
    integration_timeout_s: float,
    disable_execute_api_endpoint: bool = True,
    default_endpoint_host: str | None = None,
    port: int = 0,
    faults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``routes``: route key -> function name; ``throttle``/``cors``/``access_log`` None = off."""
    return base.keys("gateway", ready_file=ready_file, port=port, faults=faults) | {
        "api_id": api_id,
        "domain": domain,
        "cert_file": tls.cert_file,
        "key_file": tls.key_file,
        "default_endpoint_host": default_endpoint_host or execute_api_host(api_id, base.region),
        "disable_execute_api_endpoint": disable_execute_api_endpoint,
        "routes": dict(routes),
        "lambda_endpoint": lambda_endpoint,
        "aws_endpoint_url": aws_endpoint_url,
        "throttle": throttle,
        "route_throttle": route_throttle,
        "cors": cors,
        "access_log": access_log,
        "payload_limit_bytes": payload_limit_bytes,
        "integration_timeout_s": integration_timeout_s,
    }


def access_log_json(
    log_group: str, fmt: dict[str, str], *, batch_interval_s: float = 1.0, delivery_delay_s: float = 0.0
) -> dict[str, Any]:
    """The gateway's ``access_log`` key; ``fmt`` keeps its field order, as on AWS."""
    return {
        "log_group": log_group,
        "format": dict(fmt),
        "batch_interval_s": batch_interval_s,
        "delivery_delay_s": delivery_delay_s,
    }


# ------------------------------------------------------------------------------------------
# Derived from the stack description


def execute_api_host(api_id: str, region: str) -> str:
    """The default execute-api endpoint's host name."""
    return f"{api_id}.execute-api.{region}.amazonaws.com"


def limits_json(limits: ThrottleSpec) -> dict[str, float]:
    return {"rate_limit": limits.rate_limit, "burst_limit": limits.burst_limit}


def cors_json(cors: CorsSpec) -> dict[str, Any]:
    return {
        "allow_origins": list(cors.allow_origins),
        "allow_methods": list(cors.allow_methods),
        "allow_headers": list(cors.allow_headers),
        "expose_headers": list(cors.expose_headers),
        "max_age": cors.max_age,
        "allow_credentials": cors.allow_credentials,
    }


def stack_functions(desc: StackDescription, *, search_endpoint: str) -> dict[str, LambdaFunctionConfig]:
    """The description's functions, with the environment each handler needs to find its resource."""
    missing = handlers_dir_error(desc)
    if missing is not None:
        raise missing
    functions = {}
    for key, fn in desc.functions.items():
        env = dict(fn.environment)
        if key == desc.table.function:
            env["TABLE_NAME"] = desc.table.name
        if key == desc.search.function:
            env["SEARCH_ENDPOINT"] = search_endpoint
            env["SEARCH_INDEX"] = desc.search.index
        functions[fn.name] = LambdaFunctionConfig(
            key=key,
            handler=fn.handler,
            task_root=desc.handlers_dir,
            memory_mb=fn.memory_mb,
            timeout_s=fn.timeout_s,
            reserved_concurrency=fn.reserved_concurrency,
            environment=env,
            role_identity=f"{key}-role",
            log_group=fn.log_group,
        )
    return functions


def stack_gateway_config(
    base: ServiceBase,
    desc: StackDescription,
    *,
    ready_file: Path,
    api_id: str,
    tls: TlsFiles,
    lambda_endpoint: str,
    aws_endpoint_url: str,
    port: int = 0,
    faults: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The gateway of the stack description: its domain, routes, throttles, CORS and access log."""
    return gateway_config(
        base,
        ready_file=ready_file,
        port=port,
        api_id=api_id,
        domain=desc.domain_name,
        tls=tls,
        routes={rk: desc.function_for_route(rk).name for rk in desc.routes},
        lambda_endpoint=lambda_endpoint,
        aws_endpoint_url=aws_endpoint_url,
        throttle=limits_json(desc.throttle),
        route_throttle={rk: limits_json(t) for rk, t in desc.route_throttle.items()},
        cors=cors_json(desc.cors),
        access_log=access_log_json(desc.access_log.log_group, desc.access_log.format),
        payload_limit_bytes=desc.payload_limit_bytes,
        integration_timeout_s=desc.integration_timeout_s,
        disable_execute_api_endpoint=desc.disable_execute_api_endpoint,
        faults=faults,
    )
