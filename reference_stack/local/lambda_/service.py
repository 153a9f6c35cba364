"""The lambda service process: the Invoke API and the admin paths on one threaded HTTP port.

    POST /2015-03-31/functions/<name>/invocations   Invoke (RequestResponse)
    GET  /_loadcheck/health                         {"status": "ok", "service": "lambda"}
    GET  /_loadcheck/faults, POST /_loadcheck/faults
    POST /_loadcheck/flush                          ship buffered log events now
    GET  /_loadcheck/environments                   live environments (pid, state, stream)
    POST /_loadcheck/prewarm {"<function>": N}      start N environments ahead of load (their init
                                                    runs now, as provisioned concurrency's does)

:class:`LambdaService` owns every part (log shipper, launcher, pools, invoker, HTTP server)
and stops them in order. The ``/_loadcheck/`` prefix is reserved on every service (a
documented departure, docs/internals.md).

Departures from AWS (also in docs/fidelity.md, section lambda):

- Only ``X-Amz-Invocation-Type: RequestResponse`` (the default) is served; ``Event`` and
  ``DryRun`` get 400 ``InvalidParameterValueException`` naming the value.
- Requests are not signature-checked (the gateway is the only caller; moto does not check
  either).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
from botocore.config import Config

from loadcheck.core.errors import ConfigError
from reference_stack.local.common.admin_token import ADMIN_TOKEN_HEADER, admin_refusal
from reference_stack.local.common.http11 import write_response
from reference_stack.local.lambda_.config import ServiceConfig
from reference_stack.local.lambda_.environments import FunctionPool
from reference_stack.local.lambda_.faults import Faults
from reference_stack.local.lambda_.invoke import Invoker, InvokeResult, aws_error
from reference_stack.local.lambda_.launcher import Launcher
from reference_stack.local.lambda_.logs import LogShipper

log = logging.getLogger("loadcheck.lambda.service")

INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"


class LambdaService:
    """Every part of the service, built from one :class:`ServiceConfig`."""

    def __init__(self, *, config: ServiceConfig, faults: Faults | None = None, admin_token: str | None = None) -> None:
        self.config = config
        self.admin_token = admin_token
        self.stop_event = threading.Event()
        self.faults = faults or Faults(initial=config.faults)
        self.shipper = LogShipper(client_factory=self._logs_client, interval_s=config.log_batch_interval_s)
        self.launcher = Launcher(config=config, shipper=self.shipper, stop=self.stop_event)
        self.pools = {
            name: FunctionPool(function=fn, launcher=self.launcher.start) for name, fn in config.functions.items()
        }
        self.invoker = Invoker(
            config=config, pools=self.pools, launcher=self.launcher, faults=self.faults, stop=self.stop_event
        )
        self.server = ServiceHttpServer((config.host, config.port), ServiceHandler)
        self.server.service = self
        self._thread: threading.Thread | None = None

    def _logs_client(self) -> Any:
        # moto does not check signatures; the admin identity's keys keep the request well-formed.
        admin = self.config.identities.current().by_name.get("admin")
        return boto3.client(
            "logs",
            region_name=self.config.region,
            endpoint_url=self.config.aws_endpoint_url,
            aws_access_key_id=admin.access_key_id if admin else "testing",
            aws_secret_access_key=admin.secret_access_key if admin else "testing",
            config=Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30),
        )

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def _reap(self) -> None:
        """Kill environments idle for ``idle_timeout_s`` (AWS reclaims idle sandboxes too)."""
        interval = min(5.0, self.config.idle_timeout_s / 2)
        while not self.stop_event.wait(interval):
            for pool in self.pools.values():
                for env in pool.reap_idle(self.config.idle_timeout_s):
                    log.info("reclaiming idle environment %s of %s", env.env_id[:8], env.function.name)
                    self.launcher.kill(env)

    def start(self) -> None:
        self.shipper.start()
        threading.Thread(target=self._reap, name="lambda-idle-reaper", daemon=True).start()
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.5}, name="lambda-invoke-api", daemon=True
        )
        self._thread.start()
        log.info("lambda service listening on %s:%d (%d functions)", self.config.host, self.port, len(self.pools))

    def stop(self) -> None:
        """Stop listening, stop every environment, ship the remaining logs."""
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()
        for pool in self.pools.values():
            pool.close()
        self.launcher.stop_all()
        self.shipper.close()
        log.info(
            "lambda service stopped (%d log events shipped, %d dropped)", self.shipper.shipped, self.shipper.dropped
        )

    def prewarm(self, counts: dict[str, int]) -> dict[str, int]:
        """Start up to ``counts[function]`` environments now and leave them idle in the pool.

        Departure from on-demand Lambda, like provisioned concurrency: the environments'
        init runs before any invocation. ``loadcheck run`` uses it because N simultaneous cold
        starts on one small host contend for its CPUs, which separate Lambda microVMs do not.
        Never more than the function's concurrency cap; returns how many now exist.
        """
        out = {}
        for name, n in counts.items():
            pool = self.pools[name]
            taken = []
            for _ in range(max(0, int(n))):
                env = pool.acquire()
                if env is None:
                    break
                taken.append(env)
            for env in taken:
                pool.release(env)
            out[name] = len(pool.environments())
        return out

    def describe_environments(self) -> dict[str, Any]:
        return {
            name: {
                "environments": [e.describe() for e in pool.environments()],
                "cold_starts": pool.cold_starts,
                "throttles": pool.throttles,
            }
            for name, pool in self.pools.items()
        }


class ServiceHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    service: LambdaService


class ServiceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ServiceHttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        log.debug("invoke api: " + format, *args)

    def _admin_refused(self, path: str) -> bool:
        """True (and answered 403) for an admin path without the stack's token."""
        if not path.startswith("/_loadcheck/"):
            return False
        refused = admin_refusal(self.server.service.admin_token, self.headers.get(ADMIN_TOKEN_HEADER))
        if refused:
            self._json(*refused)
        return refused is not None

    def do_GET(self) -> None:
        service = self.server.service
        path = urlsplit(self.path).path
        if self._admin_refused(path):
            self._read_body()
        elif path == "/_loadcheck/health":
            self._json(200, {"status": "ok", "service": "lambda"})
        elif path == "/_loadcheck/faults":
            self._json(200, service.faults.active())
        elif path == "/_loadcheck/environments":
            self._json(200, service.describe_environments())
        else:
            self._read_body()
            self._unknown(path)

    def do_POST(self) -> None:
        service = self.server.service
        parts = urlsplit(self.path)
        body = self._read_body()
        if self._admin_refused(parts.path):
            pass
        elif parts.path == "/_loadcheck/faults":
            try:
                changes = json.loads(body or b"null")
                self._json(200, service.faults.update(changes))
            except ValueError as exc:
                self._json(
                    400,
                    {
                        "message": f"faults body is not JSON: {exc}",
                        "fix": 'send a JSON object such as {"lambda-error": 0.5}',
                    },
                )
            except ConfigError as exc:
                self._json(400, {"message": exc.message, "fix": exc.hint})
        elif parts.path == "/_loadcheck/flush":
            self._json(200, {"shipped": service.shipper.flush()})
        elif parts.path == "/_loadcheck/prewarm":
            try:
                counts = json.loads(body or b"null")
                if not isinstance(counts, dict) or not all(
                    k in service.pools and isinstance(v, int) and v >= 0 for k, v in counts.items()
                ):
                    raise ValueError(f"expected {{function name: count}} with functions {sorted(service.pools)}")
            except ValueError as exc:
                self._json(
                    400,
                    {"message": f"prewarm body: {exc}", "fix": 'send a JSON object such as {"loadcheck-events": 4}'},
                )
            else:
                self._json(200, service.prewarm(counts))
        elif parts.path.startswith(INVOKE_PREFIX) and parts.path.endswith(INVOKE_SUFFIX):
            name = unquote(parts.path[len(INVOKE_PREFIX) : -len(INVOKE_SUFFIX)])
            qualifier = parse_qs(parts.query).get("Qualifier", [None])[0]
            self._send(self._invoke(service, name, qualifier, body))
        else:
            self._unknown(parts.path)

    def _invoke(self, service: LambdaService, name: str, qualifier: str | None, body: bytes) -> InvokeResult:
        function, arn = service.invoker.resolve(name, qualifier)
        if function is None:
            return aws_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type != "RequestResponse":
            return aws_error(
                400,
                "InvalidParameterValueException",
                f"X-Amz-Invocation-Type {invocation_type!r} is not served by the local lambda "
                "service; only RequestResponse (the default) is",
            )
        log_type = self.headers.get("X-Amz-Log-Type") or "None"
        if log_type not in ("None", "Tail"):
            return aws_error(
                400, "InvalidParameterValueException", f"X-Amz-Log-Type {log_type!r} is not valid; use None or Tail"
            )
        return service.invoker.invoke(
            function, body, trace_header=self.headers.get("X-Amzn-Trace-Id"), log_tail=log_type == "Tail"
        )

    # -- wire helpers ---------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _unknown(self, path: str) -> None:
        self._send(
            aws_error(
                404,
                "UnknownOperationException",
                f"no operation at {path}: the local lambda service serves "
                "POST /2015-03-31/functions/<name>/invocations",
            )
        )

    def _json(self, status: int, doc: Any) -> None:
        self._send(
            InvokeResult(status=status, body=json.dumps(doc).encode(), headers={"Content-Type": "application/json"})
        )

    def setup(self) -> None:
        super().setup()
        # See runtime_api.RuntimeApiHandler.setup: no Nagle stall on small responses.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, result: InvokeResult) -> None:
        write_response(self, result.status, result.headers.items(), result.body)
