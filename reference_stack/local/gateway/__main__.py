"""``python -m reference_stack.local.gateway --config FILE``: the gateway service process.

Runs under the service contract (:mod:`reference_stack.local.common.contract`): binds
``host``/``port`` (0 = free port), writes ``ready_file`` once listening, flushes access logs and
exits 0 on SIGTERM/SIGINT or when ``parent_pid`` is gone. It answers ``/_loadcheck/...`` on the
loopback host only. Logs go to stderr, never a secret.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from typing import Any

import boto3

from loadcheck.core.errors import ConfigError
from reference_stack.local.common import http11
from reference_stack.local.common.contract import Lifecycle, run_service
from reference_stack.local.gateway.access_log import VARIABLES, AccessLogShipper
from reference_stack.local.gateway.app import Gateway
from reference_stack.local.gateway.auth import Authorizer, IdentityStore
from reference_stack.local.gateway.config import GatewayConfig, parse_config
from reference_stack.local.gateway.faults import Faults
from reference_stack.local.gateway.integration import LambdaInvoker
from reference_stack.local.gateway.server import GatewayServer
from reference_stack.local.gateway.throttle import Throttler
from reference_stack.local.gateway.tls import server_context

log = logging.getLogger("loadcheck.gateway")
SHUTDOWN_GRACE_S = 5.0  # the contract allows 10 s from SIGTERM to exit


def _logs_client_factory(cfg: GatewayConfig, store: IdentityStore) -> Any:
    def make() -> Any:
        by_key, _ = store.current()
        admin = next((i for i in by_key.values() if i.name == "admin"), None)
        return boto3.client(
            "logs",
            region_name=cfg.region,
            endpoint_url=cfg.aws_endpoint_url,
            aws_access_key_id=admin.access_key_id if admin else "loadcheck",
            aws_secret_access_key=admin.secret_access_key if admin else "loadcheck",
            aws_session_token=admin.session_token if admin else None,
        )

    return make


def build(cfg: GatewayConfig) -> Gateway:
    """The gateway model from its config (the wiring; no sockets)."""
    fmt_fields = tuple(cfg.access_log.format) if cfg.access_log else ()
    faults = Faults(log_fields=fmt_fields, initial=cfg.faults)
    store = IdentityStore(cfg.identities_file)
    authorizer = Authorizer(
        store=store,
        region=cfg.region,
        account_id=cfg.account_id,
        api_id=cfg.api_id,
        allow_denied=lambda: bool(faults.get("allow-denied")),
    )
    shipper = None
    if cfg.access_log is not None:
        shipper = AccessLogShipper(
            settings=cfg.access_log, api_id=cfg.api_id, faults=faults, client_factory=_logs_client_factory(cfg, store)
        )
    throttler = Throttler(routes=list(cfg.routes), stage=cfg.throttle, route_limits=cfg.route_throttle)
    invoker = LambdaInvoker(endpoint=cfg.lambda_endpoint, timeout_s=cfg.integration_timeout_s)
    return Gateway(
        config=cfg, faults=faults, authorizer=authorizer, invoker=invoker, throttler=throttler, shipper=shipper
    )


def serve(cfg: GatewayConfig, lifecycle: Lifecycle) -> int:
    """The contract's ``serve``: TLS, listen, ship access logs, run until stopped."""
    http11.install()  # requests and Invoke answers parsed without the email package
    gateway = build(cfg)
    gateway.admin_token = lifecycle.admin_token
    try:
        ctx = server_context(
            cert_file=cfg.cert_file, key_file=cfg.key_file, server_names=(cfg.domain, cfg.execute_api_host)
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the TLS certificate {cfg.cert_file} / key {cfg.key_file}: {exc}",
            value=cfg.cert_file,
            hint="give PEM files for the domain (the supervisor makes them with trustme)",
        ) from exc
    try:
        server = GatewayServer((cfg.host, cfg.port), gateway=gateway, ssl_context=ctx)
    except OSError as exc:
        raise ConfigError(
            f"gateway cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}",
            value=cfg.port,
            hint="use port 0 (any free port) or free the port",
        ) from exc
    port = server.server_address[1]
    if gateway.shipper is not None:
        gateway.shipper.start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="https", daemon=True).start()
    lifecycle.ready(port)
    log.info(
        "gateway for %s listening on https://%s:%d (%d routes; access-log variables known: %d)",
        cfg.domain,
        cfg.host,
        port,
        len(cfg.routes),
        len(VARIABLES),
    )
    lifecycle.stop.wait()
    server.shutdown()
    server.server_close()
    if not server.wait_idle(SHUTDOWN_GRACE_S):
        log.warning("requests still running after %.0f s; their access-log records may be lost", SHUTDOWN_GRACE_S)
    if gateway.shipper is not None:
        gateway.shipper.stop()
        log.info(
            "access logs: %d shipped, %d dropped by fault, %d pending",
            gateway.shipper.shipped,
            gateway.shipper.dropped,
            gateway.shipper.pending,
        )
    return 0


def parse(data: dict[str, Any], where: str) -> GatewayConfig:
    """The contract's ``parse``: the gateway's messages already name "gateway config" and the key."""
    return parse_config(data)


def main(argv: list[str] | None = None) -> int:
    return run_service(
        name="gateway",
        description="The local API Gateway HTTP API (custom domain, IAM auth).",
        parse=parse,
        serve=serve,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
