"""The gateway's request pipeline: from a received :class:`Request` to a :class:`Response` and
its access-log context. No sockets here; ``server.py`` is the wire.

Order of decisions, one request (docs/aws-behaviour.md sections in brackets):

    Host            unknown -> 403 Forbidden; disabled default endpoint -> 404 [§6]
    size            body over payload_limit_bytes -> 413 Request Entity Too Large
    CORS preflight  OPTIONS + Origin + Access-Control-Request-Method -> 204, no auth [§5]
    route           no route matches METHOD /path (most specific wins) -> 404 Not Found [§6]
    throttle        route / account bucket empty -> 429 Too Many Requests [§4]
    IAM             SigV4 + execute-api:Invoke on the route ARN -> 403 [§1]
    integration     Lambda Invoke; event over Lambda's 6 MB -> 413 [§3.4, lambda_limit.py];
                    failures -> 500, timeout -> 503 [§3.3]; response 2.0 [§3.2]

Choices (UNCONFIRMED): throttling comes before authorization (unauthenticated floods are
throttled too); a Lambda 429 (reserved concurrency) becomes 500 Internal Server Error with the
429 in ``integrationStatus`` and the reason in ``integrationErrorMessage`` (as REST proxy
integrations do, §3.3/§10.3). Requests to an unknown Host or the disabled default endpoint get
no access-log record (they never reach the API's stage); every other request gets exactly one.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadcheck.core.errors import ConfigError
from reference_stack.local.common.admin_token import ADMIN_TOKEN_HEADER, admin_refusal
from reference_stack.local.gateway import cors as cors_mod
from reference_stack.local.gateway.access_log import AccessLogShipper
from reference_stack.local.gateway.auth import Authorizer
from reference_stack.local.gateway.config import GatewayConfig
from reference_stack.local.gateway.faults import Faults
from reference_stack.local.gateway.integration import InvokeResult, LambdaInvoker
from reference_stack.local.gateway.lambda_limit import LAMBDA_TOO_LARGE_STATUS, answer_for
from reference_stack.local.gateway.payload import (
    MalformedResponse,
    build_event,
    clf_time,
    epoch_ms,
    map_response,
)
from reference_stack.local.gateway.routing import HostKind, Request, Router, classify_host
from reference_stack.local.gateway.throttle import Throttler

log = logging.getLogger("loadcheck.gateway")

ADMIN_PREFIX = "/_loadcheck/"
STAGE = "$default"


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    log_context: dict[str, str] | None = None  # None: no access-log record
    close: bool = False  # close the connection after sending
    timestamp_ms: int = 0
    preflight: bool = False  # API Gateway's own CORS preflight answer


def _json(status: int, payload: object, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(
        status,
        [("content-type", "application/json"), *(headers or [])],
        json.dumps(payload, separators=(",", ":")).encode(),
    )


class Gateway:
    """One HTTP API with its ``$default`` stage. Thread-safe; one instance per process."""

    def __init__(
        self,
        *,
        config: GatewayConfig,
        faults: Faults,
        authorizer: Authorizer,
        invoker: LambdaInvoker,
        throttler: Throttler,
        shipper: AccessLogShipper | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.faults = faults
        self.authorizer = authorizer
        self.invoker = invoker
        self.throttler = throttler
        self.shipper = shipper
        self.router = Router(config.routes)
        self._clock = clock
        self.admin_token: str | None = None  # the contract's Lifecycle.admin_token (serve sets it)

    # -- entry point -----------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        kind = classify_host(
            req.header("host"), domain=self.config.domain, default_endpoint_host=self.config.execute_api_host
        )
        if kind is HostKind.ADMIN and req.raw_path.startswith(ADMIN_PREFIX):
            resp = self.admin(req)
        elif kind in (HostKind.ADMIN, HostKind.UNKNOWN):
            resp = _json(403, {"message": "Forbidden"}, [("x-amzn-ErrorType", "ForbiddenException")])
        elif kind is HostKind.DEFAULT_ENDPOINT and self.config.disable_execute_api_endpoint:
            resp = _json(404, {"message": "Not Found"})
        else:
            resp = self._api(req, kind)
        resp.headers.append(("apigw-requestid", req.request_id))
        return resp

    def record(self, req: Request, resp: Response) -> None:
        """Queue the access-log record of a finished response (if it gets one)."""
        if resp.log_context is not None and self.shipper is not None:
            self.shipper.submit(context=resp.log_context, timestamp_ms=resp.timestamp_ms)

    # -- the API ---------------------------------------------------------------------------------

    def _api(self, req: Request, kind: HostKind) -> Response:
        cfg = self.config
        domain = req.host
        ctx: dict[str, str] = {
            "requestId": req.request_id,
            "extendedRequestId": req.request_id,
            "identity.sourceIp": req.source_ip,
            "requestTime": clf_time(req.received_at),
            "requestTimeEpoch": str(epoch_ms(req.received_at)),
            "httpMethod": req.method,
            "path": req.raw_path,
            "protocol": req.protocol,
            "domainName": domain,
            "domainPrefix": domain.split(".", 1)[0],
            "identity.userAgent": req.header("user-agent") or "",
            "accountId": cfg.account_id,
            "apiId": cfg.api_id,
            "stage": STAGE,
        }
        if kind is HostKind.CUSTOM_DOMAIN:
            ctx["customDomain.basePathMatched"] = "(none)"
        resp = self._decide(req, ctx)
        if cfg.cors is not None and not resp.preflight:
            origin = req.header("origin")
            resp.headers = cors_mod.strip_backend_cors(resp.headers) + cors_mod.response_headers(cfg.cors, origin)
        ctx.update(
            {
                "status": str(resp.status),
                "responseLength": str(len(resp.body)),
                "responseLatency": str(int(round((self._clock() - req.received_mono) * 1000))),
                "dataProcessed": str(len(req.body) + len(resp.body)),
            }
        )
        resp.log_context = ctx
        resp.timestamp_ms = epoch_ms(req.received_at)
        return resp

    def _error(
        self, ctx: dict[str, str], status: int, message: str, response_type: str, error_type: str | None = None
    ) -> Response:
        ctx.update(
            {"error.message": message, "error.messageString": json.dumps(message), "error.responseType": response_type}
        )
        return _json(status, {"message": message}, [("x-amzn-ErrorType", error_type)] if error_type else None)

    def _decide(self, req: Request, ctx: dict[str, str]) -> Response:
        cfg = self.config
        if req.oversize:
            return self._error(ctx, 413, "Request Entity Too Large", "REQUEST_TOO_LARGE")
        origin = req.header("origin")
        acrm = req.header("access-control-request-method")
        if cfg.cors is not None and cors_mod.is_preflight(cfg.cors, req.method, origin, acrm):
            assert origin is not None and acrm is not None
            headers = cors_mod.preflight_headers(cfg.cors, origin, acrm, req.header("access-control-request-headers"))
            return Response(204, headers, b"", preflight=True)
        found = self.router.resolve(req.method, req.raw_path)
        if found is None:
            return self._error(ctx, 404, "Not Found", "RESOURCE_NOT_FOUND")
        route_key, path_parameters = found
        ctx["routeKey"] = route_key
        if not self.throttler.admit(route_key):
            return self._error(ctx, 429, "Too Many Requests", "THROTTLED")
        auth = self.authorizer.authorize(
            method=req.method,
            raw_path=req.raw_path,
            raw_query=req.raw_query,
            headers=req.headers,
            body=req.body,
            # IAM authorizes the path the request was sent to (docs/aws-behaviour.md §1.3).
            route_method=route_key.split(" ", 1)[0],
            route_path=req.raw_path,
            source_ip=req.source_ip,
        )
        if auth.identity is not None:
            ident = auth.identity
            ctx.update(
                {
                    "identity.userArn": ident.arn,
                    "identity.caller": ident.user_id,
                    "identity.user": ident.user_id,
                    "identity.accountId": cfg.account_id,
                }
            )
        if auth.failure is not None:
            ctx["authorizer.error"] = auth.failure.detail
            return self._error(ctx, 403, auth.failure.body_message, auth.failure.response_type, auth.failure.error_type)
        assert auth.identity is not None and auth.access_key is not None
        event = build_event(
            req,
            route_key=route_key,
            api_id=cfg.api_id,
            account_id=cfg.account_id,
            identity=auth.identity,
            access_key=auth.access_key,
            stage=STAGE,
            path_parameters=path_parameters,
        )
        result = self.invoker.invoke(self.router.function_for(route_key), event)
        return self._integration(ctx, result)

    def _integration(self, ctx: dict[str, str], result: InvokeResult) -> Response:
        ctx.update({"integrationLatency": str(result.latency_ms), "integration.latency": str(result.latency_ms)})
        if result.request_id:
            ctx.update({"integration.requestId": result.request_id, "awsEndpointRequestId": result.request_id})
        if result.status is not None:
            # The Lambda service's status (not the function's): §2.1 integrationStatus.
            ctx.update({"integrationStatus": str(result.status), "integration.integrationStatus": str(result.status)})

        def failed(message: str, status: int = 500) -> Response:
            ctx.update({"integrationErrorMessage": message, "integration.error": message})
            if status == 503:
                return self._error(ctx, 503, "Service Unavailable", "INTEGRATION_TIMEOUT")
            return self._error(ctx, 500, "Internal Server Error", "INTEGRATION_FAILURE")

        too_large = (
            answer_for(result.status, _lambda_message(result.payload))
            if result.status == LAMBDA_TOO_LARGE_STATUS
            else None
        )
        if too_large is not None:
            ctx.update(
                {
                    "integrationErrorMessage": too_large.integration_error,
                    "integration.error": too_large.integration_error,
                }
            )
            return self._error(ctx, too_large.status, too_large.message, too_large.response_type)
        if result.timed_out:
            return failed(result.error or "integration timed out", 503)
        if result.status is None:
            return failed(result.error or "the Lambda service did not answer")
        if result.status != 200:
            return failed(f"Lambda Invoke answered {result.status}: {_lambda_message(result.payload)}")
        if result.function_error:
            return failed(
                f"The Lambda function returned an error ({result.function_error}): {_function_message(result.payload)}"
            )
        try:
            status, headers, body = map_response(result.payload)
        except MalformedResponse as exc:
            return failed(
                f"The response from the Lambda function doesn't match the format that API Gateway expects: {exc}"
            )
        ctx["integration.status"] = str(status)
        replaced = self.faults.get("throttle-status")
        if status == 429 and replaced:
            status = int(replaced)  # fault: an integration 429 reaches the client as another status
        return Response(status, headers, body)

    # -- admin (docs/internals.md: /_loadcheck/ on the loopback host only) ------------------------

    def admin(self, req: Request) -> Response:
        path, method = req.raw_path, req.method
        refused = admin_refusal(self.admin_token, req.header(ADMIN_TOKEN_HEADER))
        if refused:
            return _json(*refused)
        if path == "/_loadcheck/health" and method == "GET":
            return _json(200, {"status": "ok", "service": "gateway"})
        if path == "/_loadcheck/faults" and method == "GET":
            return _json(200, self.faults.snapshot())
        if path == "/_loadcheck/faults" and method == "POST":
            try:
                changes = json.loads(req.body or b"{}")
                return _json(200, self.faults.update(changes))
            except json.JSONDecodeError as exc:
                return _json(
                    400,
                    {
                        "message": f"faults body is not JSON: {exc.msg}",
                        "fix": 'POST a JSON object {"fault-name": value or null}',
                    },
                )
            except ConfigError as exc:
                return _json(400, {"message": exc.message, "fix": exc.hint})
        if path == "/_loadcheck/flush" and method == "POST":
            shipped = self.shipper.flush() if self.shipper is not None else 0
            return _json(200, {"flushed": True, "access_log_records": shipped})
        if path == "/_loadcheck/stats" and method == "GET":
            s = self.shipper
            return _json(
                200,
                {
                    "access_log": {
                        "pending": s.pending,
                        "shipped": s.shipped,
                        "dropped": s.dropped,
                        "stream": s.stream_name,
                    }
                    if s
                    else None
                },
            )
        return _json(
            404,
            {
                "message": f"no admin endpoint {method} {path}",
                "fix": "use GET /_loadcheck/health, GET|POST /_loadcheck/faults, POST /_loadcheck/flush",
            },
        )


def _lambda_message(payload: bytes) -> str:
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return payload[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("Type", "Reason", "message", "Message") if k in data]
        return " ".join(parts) or json.dumps(data)[:200]
    return str(data)[:200]


def _function_message(payload: bytes) -> str:
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return payload[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        return f"{data.get('errorType', 'Error')}: {data.get('errorMessage', '')}"
    return str(data)[:200]
