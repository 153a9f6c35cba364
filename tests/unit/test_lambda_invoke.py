"""The Invoke rules without processes: lookup, throttling, results, timeouts and faults.

The seam is the launcher: environments here have no process, and a thread plays the runtime
by calling the Runtime API methods of the model directly."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from loadcheck.core.state import Identities
from reference_stack.local.lambda_.config import FunctionConfig, ServiceConfig
from reference_stack.local.lambda_.environments import Environment, FunctionPool, Outcome
from reference_stack.local.lambda_.faults import Faults
from reference_stack.local.lambda_.invoke import Invoker
from reference_stack.local.lambda_.logs import LogShipper, StreamLog


class FakeLauncher:
    """Starts environments without processes; records kills."""

    def __init__(self, shipper: LogShipper) -> None:
        self.shipper = shipper
        self.started: list[Environment] = []
        self.killed: list[Environment] = []

    def start(self, function: FunctionConfig) -> Environment:
        env = Environment(
            env_id=f"e{len(self.started)}",
            function=function,
            log=StreamLog(shipper=self.shipper, group=function.log_group, stream=f"s{len(self.started)}"),
        )
        self.started.append(env)
        return env

    def kill(self, env: Environment) -> None:
        env.retire()
        self.killed.append(env)


def _function(name: str, *, timeout_s: float = 3.0, reserved: int | None = 2) -> FunctionConfig:
    return FunctionConfig(
        name=name,
        key=name,
        handler="m.h",
        task_root=Path("."),
        memory_mb=128,
        timeout_s=timeout_s,
        reserved_concurrency=reserved,
        environment={},
        role_identity="r",
        log_group=f"/aws/lambda/{name}",
    )


Setup = tuple[Invoker, FakeLauncher, LogShipper, Faults]


@pytest.fixture
def setup() -> Setup:
    shipper = LogShipper(client_factory=lambda: None)
    launcher = FakeLauncher(shipper)
    functions = {f.name: f for f in (_function("f"), _function("quick", timeout_s=0.05), _function("none", reserved=0))}
    config = ServiceConfig(
        host="127.0.0.1",
        port=0,
        ready_file=None,
        parent_pid=None,
        region="us-east-1",
        account_id="123456789012",
        aws_endpoint_url="http://127.0.0.1:1",
        python="python",
        functions=functions,
        identities=Identities.of({}),
    )
    pools = {name: FunctionPool(function=fn, launcher=launcher.start) for name, fn in functions.items()}
    faults = Faults(rng=random.Random(1))
    invoker = Invoker(
        config=config,
        pools=pools,
        launcher=launcher,
        faults=faults,  # type: ignore[arg-type]
        stop=threading.Event(),
    )
    return invoker, launcher, shipper, faults


def _lines(shipper: LogShipper, stream: str, group: str = "/aws/lambda/f") -> list[str]:
    return [m for _, m in shipper._pending.get((group, stream), [])]


def _runtime(env_getter: Callable[[], Environment], answer: bytes | None) -> threading.Thread:
    """Plays awslambdaric: takes one invocation and answers it (or never answers)."""

    def run() -> None:
        env = env_getter()
        invocation = env.next_invocation()
        if answer is not None and invocation is not None:
            env.post_result(invocation.request_id, Outcome(kind="response", body=answer))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _first_env(launcher: FakeLauncher) -> Environment:
    while not launcher.started:  # the invoker starts it on demand
        threading.Event().wait(0.01)
    return launcher.started[0]


def test_resolve_names_arns_and_qualifiers(setup: Setup) -> None:
    invoker = setup[0]
    assert invoker.resolve("f")[0] is not None
    assert invoker.resolve("arn:aws:lambda:us-east-1:123456789012:function:f")[0] is not None
    assert invoker.resolve("f:$LATEST")[0] is not None
    assert invoker.resolve("f", "$LATEST")[0] is not None
    fn, arn = invoker.resolve("f:prod")
    assert fn is None and arn == "arn:aws:lambda:us-east-1:123456789012:function:f:prod"
    assert invoker.resolve("g")[0] is None


def test_a_response_is_returned_with_lambda_headers(setup: Setup) -> None:
    invoker, launcher, shipper, _ = setup
    runtime = _runtime(lambda: _first_env(launcher), b'{"ok": true}')
    result = invoker.invoke(invoker.config.functions["f"], b'{"a": 1}', trace_header="Root=1-abc")
    runtime.join(timeout=10)
    assert (result.status, result.body) == (200, b'{"ok": true}')
    assert result.headers["X-Amz-Executed-Version"] == "$LATEST"
    assert result.headers["X-Amzn-Trace-Id"] == "Root=1-abc"
    assert "X-Amz-Function-Error" not in result.headers
    rid = result.headers["x-amzn-RequestId"]
    lines = _lines(shipper, "s0")
    assert lines[0] == f"START RequestId: {rid} Version: $LATEST\n"
    assert lines[1] == f"END RequestId: {rid}\n"
    assert lines[2].startswith(f"REPORT RequestId: {rid}\tDuration: ") and "Init Duration" in lines[2]


def test_zero_concurrency_throttles_with_the_lambda_shape(setup: Setup) -> None:
    invoker = setup[0]
    result = invoker.invoke(invoker.config.functions["none"], b"{}")
    assert result.status == 429
    assert result.headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert json.loads(result.body) == {
        "Type": "User",
        "message": "Rate Exceeded.",
        "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
    }


def test_bad_payloads_are_refused_before_any_environment_starts(setup: Setup) -> None:
    invoker, launcher, _, _ = setup
    assert invoker.invoke(invoker.config.functions["f"], b"{oops").status == 400
    assert invoker.invoke(invoker.config.functions["f"], b"1" * 6_291_457).status == 413
    assert launcher.started == []


def test_a_silent_runtime_times_out_and_its_environment_is_killed(setup: Setup) -> None:
    invoker, launcher, shipper, _ = setup
    runtime = _runtime(lambda: _first_env(launcher), None)
    result = invoker.invoke(invoker.config.functions["quick"], b"{}")
    runtime.join(timeout=10)
    body = json.loads(result.body)
    assert result.headers["X-Amz-Function-Error"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert launcher.killed == launcher.started
    lines = _lines(shipper, "s0", "/aws/lambda/quick")
    assert any(" Task timed out after " in line for line in lines)
    assert lines[-1].endswith("Status: timeout\t\n")


def test_the_error_fault_skips_the_handler(setup: Setup) -> None:
    invoker, launcher, shipper, faults = setup
    faults.update({"lambda-error": 1})
    result = invoker.invoke(invoker.config.functions["f"], b"{}")
    body = json.loads(result.body)
    assert result.headers["X-Amz-Function-Error"] == "Unhandled"
    assert body["errorType"] == "LoadcheckInjectedError" and body["requestId"] == result.headers["x-amzn-RequestId"]
    assert launcher.started[0].invocations == 0, "the runtime never saw the invocation"
    assert any(line.startswith("[ERROR] LoadcheckInjectedError") for line in _lines(shipper, "s0"))
