"""The Invoke API's rules: throttle, run on an environment, time out, inject faults, log.

:meth:`Invoker.invoke` turns one ``Invoke`` (RequestResponse) into an :class:`InvokeResult`
(status, headers, body); service.py puts it on the wire. Shapes follow docs/internals.md
(lambda) and docs/aws-behaviour.md §3.3/§8:

- over reserved concurrency: 429 ``TooManyRequestsException``, Reason
  ``ReservedFunctionConcurrentInvocationLimitExceeded``, immediately (no queueing);
- function error (handler exception, init error, crash, timeout): 200 with
  ``X-Amz-Function-Error: Unhandled`` and the error document;
- every response: ``x-amzn-RequestId`` (the invocation id), ``X-Amz-Executed-Version: $LATEST``.

Departures from AWS (also in docs/fidelity.md, section lambda):

- A cold start waits at most ``init_limit_s`` (10 s, Lambda's on-demand init limit) for the
  runtime's first ``/next``; past it the invocation fails as ``Sandbox.Timedout``. AWS instead
  re-runs init inside the invoke phase under the function timeout.
- After an init error (``/init/error``) the invocation fails with the runtime's error document
  and the environment is discarded; AWS retries init once in the invoke phase first. The log
  shows ``INIT_REPORT ... Status: error`` then START/END/REPORT.
- Fault ``lambda-error``: the handler does not run; the answer is a function error with
  errorType ``LoadcheckInjectedError``, logged like an awslambdaric ``[ERROR]`` line. It still
  takes a concurrency slot (and may cold-start an environment) so throttling is unchanged.
- Fault ``lambda-timeout``: the handler does not run; the invocation holds its environment for
  the whole function timeout (so latency and concurrency behave as a real timeout), then the
  environment is killed and the answer is the timeout's.
- ``X-Amz-Log-Type: Tail`` returns the lines logged from the moment the invocation got its
  environment to its REPORT: a cold start's init output is in it when the runtime prints it
  after that moment, which is the usual case.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reference_stack.local.lambda_.config import FunctionConfig, ServiceConfig
from reference_stack.local.lambda_.environments import (
    Environment,
    FunctionPool,
    Invocation,
    Outcome,
    exit_outcome,
    timeout_outcome,
)
from reference_stack.local.lambda_.faults import Faults
from reference_stack.local.lambda_.launcher import Launcher
from reference_stack.local.lambda_.logs import report_line

log = logging.getLogger("loadcheck.lambda.invoke")

# Lambda's limit for the init phase of an on-demand environment (LAM:runtimes-context,
# "Init phase ... limited to 10 seconds").
INIT_LIMIT_S = 10.0
# Sync invocation request payload quota (docs/aws-behaviour.md §8.4: 6 MB).
MAX_REQUEST_BYTES = 6_291_456
# X-Amz-Log-Result carries "the last 4 KB of the execution log" (Lambda Invoke API reference).
LOG_TAIL_BYTES = 4096
INJECTED_ERROR_MESSAGE = "injected by the loadcheck lambda-error fault: the handler did not run"


@dataclass
class InvokeResult:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    outcome: Outcome | None = None


def aws_error(
    status: int, error_type: str, message: str, request_id: str | None = None, *, kind: str = "User", **extra: str
) -> InvokeResult:
    """An error of the Lambda API itself (not of the function): ``x-amzn-ErrorType`` + JSON."""
    request_id = request_id or str(uuid.uuid4())
    doc = {"Type": kind, "message": message, **extra}
    return InvokeResult(
        status=status,
        body=json.dumps(doc).encode(),
        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": error_type, "Content-Type": "application/json"},
    )


def new_trace_id(now: float) -> str:
    """An X-Ray trace header as Lambda passes it on (``Root=1-<8 hex time>-<24 hex>``)."""
    return f"Root=1-{int(now):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"


class Invoker:
    """Runs invocations on the functions' pools; one per service."""

    def __init__(
        self,
        *,
        config: ServiceConfig,
        pools: dict[str, FunctionPool],
        launcher: Launcher,
        faults: Faults,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        init_limit_s: float = INIT_LIMIT_S,
    ) -> None:
        self.config = config
        self.pools = pools
        self.launcher = launcher
        self.faults = faults
        self.stop_event = stop
        self._clock = clock
        self._wall = wall
        self.init_limit_s = init_limit_s

    # -- lookup ---------------------------------------------------------------------------
    def resolve(self, name: str, qualifier: str | None = None) -> tuple[FunctionConfig | None, str]:
        """A function by name or ARN (with optional ``:$LATEST``); returns (function, the ARN asked for)."""
        if name.startswith("arn:"):
            parts = name.split(":")
            name = parts[6] if len(parts) >= 7 else name
            if len(parts) >= 8:
                qualifier = parts[7]
        elif ":" in name:
            name, qualifier = name.split(":", 1)
        arn = self.config.function_arn(name) + (f":{qualifier}" if qualifier else "")
        function = self.config.functions.get(name)
        if function is None or qualifier not in (None, "$LATEST"):
            return None, arn
        return function, arn

    # -- invoke ---------------------------------------------------------------------------
    def invoke(
        self, function: FunctionConfig, payload: bytes, *, trace_header: str | None = None, log_tail: bool = False
    ) -> InvokeResult:
        """Run one RequestResponse invocation; ``log_tail`` adds ``X-Amz-Log-Result`` (the last
        4 KB of the invocation's log, base64), as ``X-Amz-Log-Type: Tail`` asks."""
        request_id = str(uuid.uuid4())
        if len(payload) > MAX_REQUEST_BYTES:
            return aws_error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the InvokeFunction operation",
                request_id,
            )
        payload = payload or b"{}"
        try:
            json.loads(payload)
        except ValueError as exc:
            return aws_error(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}", request_id
            )
        pool = self.pools[function.name]
        try:
            env = pool.acquire()
        except OSError as exc:
            log.error("cannot start an environment for %s: %s", function.name, exc)
            return aws_error(
                500, "ServiceException", f"could not start an execution environment: {exc}", request_id, kind="Service"
            )
        if env is None:
            return aws_error(
                429,
                "TooManyRequestsException",
                "Rate Exceeded.",
                request_id,
                Reason="ReservedFunctionConcurrentInvocationLimitExceeded",
            )
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            function_arn=self.config.function_arn(function.name),
            trace_id=trace_header or new_trace_id(self._wall()),
            timeout_s=function.timeout_s,
            clock=self._clock,
            wall=self._wall,
        )
        tap: list[str] | None = [] if log_tail else None
        env.log.tap = tap
        try:
            if self.faults.roll("lambda-timeout"):
                outcome = self._injected_timeout(env, invocation)
            elif self.faults.roll("lambda-error"):
                outcome = self._injected_error(env, invocation)
            else:
                outcome = self._run(env, invocation)
        finally:
            env.log.tap = None
            pool.release(env)
        headers = {
            "x-amzn-RequestId": request_id,
            "X-Amz-Executed-Version": "$LATEST",
            "Content-Type": outcome.content_type,
            "X-Amzn-Trace-Id": invocation.trace_id,
        }
        if tap is not None:
            headers["X-Amz-Log-Result"] = base64.b64encode("".join(tap).encode()[-LOG_TAIL_BYTES:]).decode()
        if outcome.is_error:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return InvokeResult(status=200, body=outcome.body, headers=headers, outcome=outcome)

    def _run(self, env: Environment, invocation: Invocation) -> Outcome:
        env.assign(invocation)
        outcome = invocation.wait(init_limit_s=self.init_limit_s, stop=self.stop_event)
        if outcome is None:
            timed_out = self._time_out(env, invocation)
            if timed_out is not None:
                return timed_out
            outcome = invocation.outcome  # the result arrived while we decided: it wins
            assert outcome is not None
        env.drain_output()  # the handler's last lines go before END
        memory = env.measure_memory_mb()
        status = error_type = None
        if outcome.kind == "init_error":
            self.launcher.kill(env)
            init_ms = env.take_init_duration() or 0.0
            env.log.line(
                f"INIT_REPORT Init Duration: {init_ms:.2f} ms\tPhase: init\tStatus: error\t"
                f"Error Type: {outcome.error_type}"
            )
            env.log.line(f"START RequestId: {invocation.request_id} Version: $LATEST")
            status, error_type = "error", outcome.error_type
        elif outcome.kind == "exit":
            if invocation.delivered_at is None:
                env.log.line(f"START RequestId: {invocation.request_id} Version: $LATEST")
            message = json.loads(outcome.body)["errorMessage"]
            env.log.line(f"{message}\nRuntime.ExitError")
            status, error_type = "error", "Runtime.ExitError"
        elif outcome.kind == "too_large":
            status, error_type = "error", outcome.error_type
        self._end(
            env,
            invocation,
            memory,
            status=status,
            error_type=error_type,
            init_ms=None if outcome.kind == "init_error" else env.take_init_duration(),
        )
        return outcome

    def _time_out(self, env: Environment, invocation: Invocation) -> Outcome | None:
        """Kill the environment and answer as Lambda does; None if an outcome won the race.

        When the service is stopping, the invocation ends as the runtime's exit instead
        (its environment is being killed), not as a timeout.
        """
        elapsed_s = invocation.duration_ms() / 1000
        stopping = self.stop_event.is_set()
        outcome = (
            exit_outcome(invocation.request_id, "signal: killed")
            if stopping
            else timeout_outcome(invocation.request_id, elapsed_s)
        )
        if not invocation.finish(outcome):
            return None
        memory = env.measure_memory_mb()
        self.launcher.kill(env)
        env.drain_output()
        if invocation.delivered_at is None:
            env.log.line(f"START RequestId: {invocation.request_id} Version: $LATEST")
        if stopping:
            env.log.line(f"{json.loads(outcome.body)['errorMessage']}\nRuntime.ExitError")
            self._end(
                env,
                invocation,
                memory,
                status="error",
                error_type="Runtime.ExitError",
                init_ms=env.take_init_duration(),
            )
            return outcome
        env.log.line(f"{_iso(self._wall())} {invocation.request_id} Task timed out after {elapsed_s:.2f} seconds")
        self._end(env, invocation, memory, status="timeout", init_ms=env.take_init_duration())
        return outcome

    def _injected_timeout(self, env: Environment, invocation: Invocation) -> Outcome:
        invocation.deliver()
        env.log.line(f"START RequestId: {invocation.request_id} Version: $LATEST")
        # Hold the environment for the whole timeout, as a real timed-out invocation does.
        self.stop_event.wait(invocation.timeout_s)
        outcome = self._time_out(env, invocation)
        assert outcome is not None  # nothing else finishes an invocation the runtime never saw
        return outcome

    def _injected_error(self, env: Environment, invocation: Invocation) -> Outcome:
        invocation.deliver()
        env.log.line(f"START RequestId: {invocation.request_id} Version: $LATEST")
        env.log.line(f"[ERROR] LoadcheckInjectedError: {INJECTED_ERROR_MESSAGE}")
        outcome = Outcome(
            kind="injected",
            error_type="LoadcheckInjectedError",
            body=json.dumps(
                {
                    "errorMessage": INJECTED_ERROR_MESSAGE,
                    "errorType": "LoadcheckInjectedError",
                    "requestId": invocation.request_id,
                    "stackTrace": [],
                }
            ).encode(),
        )
        invocation.finish(outcome)
        self._end(env, invocation, env.measure_memory_mb(), init_ms=None)
        return outcome

    def _end(
        self,
        env: Environment,
        invocation: Invocation,
        memory_mb: int,
        *,
        init_ms: float | None,
        status: str | None = None,
        error_type: str | None = None,
    ) -> None:
        env.log.line(f"END RequestId: {invocation.request_id}")
        env.log.line(
            report_line(
                invocation.request_id,
                duration_ms=invocation.duration_ms(),
                memory_mb=env.function.memory_mb,
                max_memory_mb=memory_mb,
                init_duration_ms=init_ms,
                status=status,
                error_type=error_type,
            )
        )


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
