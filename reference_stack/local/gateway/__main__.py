"""``python -m reference_stack.local.gateway --config FILE``: the gateway service process.

Follows the service contract of docs/internals.md: binds ``host``/``port`` (0 = free port),
writes ``ready_file`` ``{"port", "pid"}`` once listening, answers ``/_loadcheck/...`` on the
loopback host, flushes access logs and exits 0 on SIGTERM/SIGINT, and exits by itself when
``parent_pid`` is gone. Logs go to stderr, never a secret.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import ssl
import sys
import threading
from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError, LoadcheckError
from loadcheck.core.state import write_json_atomic
from reference_stack.local.gateway.access_log import VARIABLES, AccessLogShipper
from reference_stack.local.gateway.app import Gateway
from reference_stack.local.gateway.auth import Authorizer, IdentityStore
from reference_stack.local.gateway.config import GatewayConfig, load_config
from reference_stack.local.gateway.faults import Faults
from reference_stack.local.gateway.integration import LambdaInvoker
from reference_stack.local.gateway.server import GatewayServer
from reference_stack.local.gateway.throttle import Throttler
from reference_stack.local.gateway.tls import server_context

log = logging.getLogger("loadcheck.gateway")
PARENT_POLL_S = 0.5
SHUTDOWN_GRACE_S = 5.0  # the contract allows 10 s from SIGTERM to exit


def _logs_client_factory(cfg: GatewayConfig, store: IdentityStore) -> Any:
    def make() -> Any:
        import boto3  # imported lazily: only the shipper thread needs it

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


def _watch_parent(parent_pid: int, stop: threading.Event) -> None:
    while not stop.wait(PARENT_POLL_S):
        if os.getppid() != parent_pid:
            log.warning("parent process %d is gone; shutting down", parent_pid)
            stop.set()
            return


def serve(cfg: GatewayConfig) -> int:
    gateway = build(cfg)
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
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if gateway.shipper is not None:
        gateway.shipper.start()
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="https", daemon=True).start()
    if cfg.parent_pid:
        threading.Thread(target=_watch_parent, args=(cfg.parent_pid, stop), name="parent-watch", daemon=True).start()
    if cfg.ready_file:
        write_json_atomic(Path(cfg.ready_file), {"port": port, "pid": os.getpid()})
    log.info(
        "gateway for %s listening on https://%s:%d (%d routes; access-log variables known: %d)",
        cfg.domain,
        cfg.host,
        port,
        len(cfg.routes),
        len(VARIABLES),
    )
    while not stop.wait(1.0):
        pass
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference_stack.local.gateway",
        description="The local API Gateway HTTP API (custom domain, IAM auth).",
    )
    parser.add_argument("--config", required=True, help="service config JSON (services/gateway.json)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except LoadcheckError as exc:
        print(f"gateway: error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, cfg.log_level, logging.INFO),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return serve(cfg)
    except LoadcheckError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
