"""The aws service process: moto's server app behind the governor, on a threaded loopback server.

Runs under the service process contract (:mod:`reference_stack.local.common.contract`): JSON
config, ``ready_file`` once listening, flush-and-exit on SIGTERM/SIGINT, exit when the parent
dies; it answers ``/_loadcheck/health|faults|flush``. Extra admin paths (departures: AWS has no ``/_loadcheck/`` paths):

- ``GET /_loadcheck/capacity``: every table's bucket levels (diagnostics);
- ``GET|POST /_loadcheck/clock``: TEST-ONLY, with config ``clock: "manual"``; POST
  ``{"advance_s": X}`` moves the governor's clock forward by X seconds.

moto's state lives in this process and nowhere else, except the role sessions its STS issues,
which :mod:`reference_stack.local.aws.sts` records for the gateway and the search service. ``MOTO_ACCOUNT_ID`` is set to the
configured account so every request, whatever its access key, lands in one account, the one the
governor reads.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from loadcheck.core.errors import ConfigError
from loadcheck.core.state import sessions_file_for
from reference_stack.local.aws.accounting import Accounting
from reference_stack.local.aws.backend import MotoTables
from reference_stack.local.aws.buckets import Clock, ManualClock, SystemClock
from reference_stack.local.aws.cloudwatch.api import MetricDataExtensions
from reference_stack.local.aws.config import AwsConfig, parse_config
from reference_stack.local.aws.faults import Faults
from reference_stack.local.aws.governor import Governor
from reference_stack.local.aws.logs.api import LogsExtensions
from reference_stack.local.aws.metrics import MetricsPublisher, MetricsRecorder, MotoCloudWatchSink
from reference_stack.local.aws.protocol import json_reply, read_body
from reference_stack.local.aws.sts import SessionRecorder
from reference_stack.local.common.admin_token import admin_refusal
from reference_stack.local.common.contract import Lifecycle, run_service

log = logging.getLogger("loadcheck.aws")
SERVICE = "aws"


class _Handler(WSGIRequestHandler):
    """HTTP/1.1, so clients keep their connections (moto_server answers ``Connection: close``)."""

    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one line per request would drown the service log under load


class _Http10Handler(_Handler):
    """One request per connection (config ``keep_alive: false``), as moto_server serves."""

    protocol_version = "HTTP/1.0"


class AwsService:
    """Everything the process runs, built from one config; ``serve()`` blocks until stopped."""

    def __init__(self, *, config: AwsConfig, clock: Clock | None = None, admin_token: str | None = None) -> None:
        self.config = config
        self.admin_token = admin_token
        os.environ["MOTO_ACCOUNT_ID"] = config.account_id
        self.clock: Clock = clock or (ManualClock() if config.clock == "manual" else SystemClock())
        self.faults = Faults(initial=config.faults)
        self.accounting = Accounting(clock=self.clock, burst_start=config.burst_start)
        self.recorder = MetricsRecorder(clock=self.clock)
        self.governor = Governor(
            app=MetricDataExtensions(
                app=LogsExtensions(
                    app=SessionRecorder(
                        DomainDispatcherApplication(create_backend_app),
                        sessions_file=sessions_file_for(config.identities_file) if config.identities_file else None,
                        identities_file=config.identities_file,
                    ),
                    account_id=config.account_id,
                    default_region=config.region,
                ),
                account_id=config.account_id,
                default_region=config.region,
            ),
            accounting=self.accounting,
            recorder=self.recorder,
            faults=self.faults,
            tables=MotoTables(account_id=config.account_id),
            default_region=config.region,
            enabled=config.governor,
            admin=self._admin,
        )
        self.publisher = MetricsPublisher(
            recorder=self.recorder,
            interval_s=config.metrics_interval_s,
            sink=MotoCloudWatchSink(account_id=config.account_id, region=config.region, lock=self.governor.other_lock),
        )
        self.server: BaseWSGIServer | None = None

    # -- admin endpoints --------------------------------------------------------------------------

    def _admin(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        refused = admin_refusal(self.admin_token, environ.get("HTTP_X_LOADCHECK_ADMIN_TOKEN"))
        if refused:
            read_body(environ)  # drained, so the client reads the answer instead of a reset
            return json_reply(*refused).send(start_response)
        try:
            code, payload = self._route(method, path, read_body(environ))
        except ConfigError as exc:
            code, payload = 400, {"error": exc.message, "value": _jsonable(exc.value), "fix": exc.hint}
        return json_reply(code, payload).send(start_response)

    def _route(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        if path == "/_loadcheck/health" and method == "GET":
            return 200, {"status": "ok", "service": SERVICE}
        if path == "/_loadcheck/faults":
            if method == "GET":
                return 200, self.faults.active()
            if method == "POST":
                return 200, self.faults.update(_json_body(body))
        if path == "/_loadcheck/flush" and method == "POST":
            return 200, {"published": self.publisher.flush()}
        if path == "/_loadcheck/capacity" and method == "GET":
            return 200, self.accounting.snapshot()
        if path == "/_loadcheck/clock":
            return self._clock_route(method, body)
        return 404, {
            "error": f"no admin endpoint {method} {path}",
            "fix": "use GET /_loadcheck/health, GET|POST /_loadcheck/faults, POST /_loadcheck/flush, "
            "GET /_loadcheck/capacity, GET|POST /_loadcheck/clock",
        }

    def _clock_route(self, method: str, body: bytes) -> tuple[int, Any]:
        if method == "GET":
            return 200, {"mode": self.config.clock, "now": self.clock.now()}
        if not isinstance(self.clock, ManualClock):
            raise ConfigError(
                "the clock can be advanced only in test mode",
                value=self.config.clock,
                hint='start the aws service with config "clock": "manual" (test-only)',
            )
        data = _json_body(body)
        step = data.get("advance_s") if isinstance(data, dict) else None
        if isinstance(step, bool) or not isinstance(step, int | float) or step < 0:
            raise ConfigError(
                f"advance_s={step!r} is not a number of seconds >= 0", value=step, hint='send {"advance_s": 1.5}'
            )
        return 200, {"mode": "manual", "now": self.clock.advance(float(step))}

    # -- lifecycle --------------------------------------------------------------------------------

    def bind(self) -> int:
        handler = _Handler if self.config.keep_alive else _Http10Handler
        self.server = make_server(
            self.config.host, self.config.port, self.governor, threaded=True, request_handler=handler
        )
        return int(self.server.server_port)

    def serve(self, lifecycle: Lifecycle) -> int:
        """Listen, announce readiness, and run until the contract's stop (SIGTERM/SIGINT, parent death)."""
        port = self.bind()
        assert self.server is not None
        thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        thread.start()
        self.publisher.start()
        lifecycle.ready(port)
        log.info(
            "aws service listening on http://%s:%d (governor %s, clock %s, burst_start %s)",
            self.config.host,
            port,
            "on" if self.config.governor else "OFF",
            self.config.clock,
            self.config.burst_start,
        )
        lifecycle.stop.wait()
        self.shutdown()
        thread.join(timeout=5)
        return 0

    def shutdown(self) -> None:
        """Stop listening first, then flush, so the last requests' metrics are in the flush."""
        self.publisher.stop()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        try:
            sent = self.publisher.flush()
            log.info("flushed %d metric data points", sent)
        except Exception:  # never let a failing flush keep the process alive
            log.exception("metrics flush at shutdown failed")


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        raise ConfigError(
            f"request body is not JSON: {body[:80]!r}",
            value=body[:80].decode(errors="replace"),
            hint='send a JSON object, e.g. {"drop-writes": 0.1}',
        ) from None


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def serve(config: AwsConfig, lifecycle: Lifecycle) -> int:
    """The contract's ``serve``: build the service from its config and run it."""
    if config.unknown_keys:
        log.warning("ignoring unknown config keys: %s", ", ".join(config.unknown_keys))
    return AwsService(config=config, admin_token=lifecycle.admin_token).serve(lifecycle)


def main(argv: list[str] | None = None) -> int:
    return run_service(
        name=SERVICE,
        description="moto behind the DynamoDB capacity governor, on 127.0.0.1",
        parse=parse_config,
        serve=serve,
        argv=argv,
    )
