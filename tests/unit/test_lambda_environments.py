"""The environment model without processes: pool cap and reuse, the Runtime API handshake,
exits and init errors. The launcher is the seam: here it returns environments with no process."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from reference_stack.local.lambda_.config import FunctionConfig
from reference_stack.local.lambda_.environments import (
    Environment,
    FunctionPool,
    Invocation,
    Outcome,
    describe_exit,
    exit_outcome,
    timeout_outcome,
)
from reference_stack.local.lambda_.logs import LogShipper, StreamLog


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _function(cap: int | None = 2) -> FunctionConfig:
    return FunctionConfig(
        name="f",
        key="f",
        handler="m.h",
        task_root=Path("."),
        memory_mb=128,
        timeout_s=3.0,
        reserved_concurrency=cap,
        environment={},
        role_identity="r",
        log_group="/aws/lambda/f",
    )


@pytest.fixture
def shipper() -> LogShipper:
    return LogShipper(client_factory=lambda: None)


def _env(shipper: LogShipper, clock: Clock, env_id: str = "e1") -> Environment:
    return Environment(
        env_id=env_id,
        function=_function(),
        log=StreamLog(shipper=shipper, group="/aws/lambda/f", stream=f"s-{env_id}"),
        clock=clock,
    )


def _invocation(clock: Clock, rid: str = "r1", timeout_s: float = 3.0) -> Invocation:
    return Invocation(
        request_id=rid,
        payload=b"{}",
        function_arn="arn",
        trace_id="Root=1-x",
        timeout_s=timeout_s,
        clock=clock,
        wall=lambda: 1_000.0,
    )


def _pending(shipper: LogShipper, stream: str) -> list[str]:
    return [m for _, m in shipper._pending.get(("/aws/lambda/f", stream), [])]


def test_pool_reuses_idle_environments_and_throttles_at_the_cap(shipper: LogShipper) -> None:
    clock = Clock()
    started: list[Environment] = []

    def launch(fn: FunctionConfig) -> Environment:
        started.append(_env(shipper, clock, f"e{len(started)}"))
        return started[-1]

    pool = FunctionPool(function=_function(cap=2), launcher=launch)
    a, b = pool.acquire(), pool.acquire()
    assert a is not None and b is not None and a is not b
    assert pool.acquire() is None and pool.throttles == 1
    pool.release(b)
    assert pool.acquire() is b, "an idle environment is reused before any other is started"
    assert len(started) == 2 and pool.cold_starts == 2


def test_a_dead_or_failed_environment_frees_its_slot(shipper: LogShipper) -> None:
    clock = Clock()
    pool = FunctionPool(function=_function(cap=1), launcher=lambda fn: _env(shipper, clock, f"e{clock.t}"))
    env = pool.acquire()
    assert env is not None
    env.process_exited(-9)
    pool.release(env)
    assert pool.environments() == []
    fresh = pool.acquire()
    assert fresh is not None and fresh is not env


def test_zero_reserved_concurrency_never_starts_anything(shipper: LogShipper) -> None:
    pool = FunctionPool(function=_function(cap=0), launcher=lambda fn: pytest.fail("must not launch"))
    assert pool.acquire() is None


def test_a_failed_launch_releases_the_reserved_slot(shipper: LogShipper) -> None:
    def broken(fn: FunctionConfig) -> Environment:
        raise OSError("no such interpreter")

    pool = FunctionPool(function=_function(cap=1), launcher=broken)
    with pytest.raises(OSError):
        pool.acquire()
    pool._launcher = lambda fn: _env(shipper, Clock())
    assert pool.acquire() is not None


def test_next_blocks_until_assigned_then_delivers_with_deadline(shipper: LogShipper) -> None:
    clock = Clock()
    env = _env(shipper, clock)
    clock.t += 0.25  # the runtime's first /next comes 250 ms after the process started
    got: list[Invocation | None] = []
    runtime = threading.Thread(target=lambda: got.append(env.next_invocation()))
    runtime.start()
    inv = _invocation(clock)
    env.assign(inv)
    runtime.join(timeout=10)
    assert got == [inv]
    assert inv.deadline_ms == 1_003_000  # wall 1000 s + 3 s timeout, in ms
    assert env.init_duration_ms == pytest.approx(250.0)
    assert env.take_init_duration() == pytest.approx(250.0)
    assert env.take_init_duration() is None, "only the first REPORT carries Init Duration"
    assert _pending(shipper, "s-e1") == ["START RequestId: r1 Version: $LATEST\n"]
    assert not env.post_result("other-id", Outcome(kind="response", body=b"1"))
    assert env.post_result("r1", Outcome(kind="response", body=b'"ok"'))
    assert inv.wait(init_limit_s=10) == Outcome(kind="response", body=b'"ok"')
    assert not env.post_result("r1", Outcome(kind="response", body=b"2")), "one result per invocation"


def test_wait_gives_up_at_the_function_timeout(shipper: LogShipper) -> None:
    clock = Clock()
    inv = _invocation(clock, timeout_s=3.0)
    assert inv.deliver()
    clock.t += 3.0
    assert inv.wait(init_limit_s=10) is None
    assert inv.finish(timeout_outcome("r1", 3.0))
    assert not inv.finish(Outcome(kind="response", body=b"late")), "a late result loses to the timeout"
    assert json.loads(inv.outcome.body) == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "RequestId: r1 Error: Task timed out after 3.00 seconds",
    }


def test_wait_gives_up_when_init_never_asks(shipper: LogShipper) -> None:
    clock = Clock()
    inv = _invocation(clock)
    clock.t += 10.0
    assert inv.wait(init_limit_s=10) is None


def test_exit_mid_invocation_is_runtime_exit_error(shipper: LogShipper) -> None:
    clock = Clock()
    env = _env(shipper, clock)
    inv = _invocation(clock)
    env.assign(inv)
    env.process_exited(3)
    assert inv.outcome == exit_outcome("r1", "exit status 3")
    assert (
        json.loads(inv.outcome.body)["errorMessage"] == "RequestId: r1 Error: Runtime exited with error: exit status 3"
    )
    late = _invocation(clock, "r2")
    env.assign(late)
    assert late.outcome is not None and late.outcome.error_type == "Runtime.ExitError"


def test_init_error_fails_the_pending_invocation_and_the_environment(shipper: LogShipper) -> None:
    clock = Clock()
    env = _env(shipper, clock)
    inv = _invocation(clock)
    env.assign(inv)
    error = Outcome(
        kind="init_error", body=b'{"errorType": "Runtime.ImportModuleError"}', error_type="Runtime.ImportModuleError"
    )
    assert env.post_init_error(error)
    assert inv.outcome == error
    assert not env.alive and env.state == "failed"


def test_init_error_after_init_is_refused(shipper: LogShipper) -> None:
    clock = Clock()
    env = _env(shipper, clock)
    runtime = threading.Thread(target=env.next_invocation)
    runtime.start()
    env.assign(_invocation(clock, "r9"))
    runtime.join(timeout=10)
    assert not env.post_init_error(Outcome(kind="init_error", body=b"{}", error_type="X")), "403 on AWS"
    assert env.alive


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (1, "exit status 1"),
        (0, "exit status 0"),
        (-9, "signal: killed"),
        (-11, "signal: segmentation fault"),
        (-64, "signal: signal 64"),
    ],
)
def test_exit_descriptions_follow_lambda(code: int, text: str) -> None:
    assert describe_exit(code) == text


def test_idle_environments_are_reclaimed(shipper: LogShipper) -> None:
    clock = Clock()
    pool = FunctionPool(function=_function(cap=2), launcher=lambda fn: _env(shipper, clock, f"e{clock.t}"), clock=clock)
    busy, idle = pool.acquire(), pool.acquire()
    assert busy is not None and idle is not None
    pool.release(idle)
    clock.t += 599
    assert pool.reap_idle(600) == []
    clock.t += 1
    assert pool.reap_idle(600) == [idle]
    assert idle.state == "retired" and pool.environments() == [busy], "a busy environment is never reclaimed"
