"""Starting and stopping execution environments: ``python -m awslambdaric <handler>`` processes.

Environments stay in the service's process group, so the supervisor's group kill reaches them
even if the service itself dies; a kill here walks the environment's process tree (so it
reaches anything the handler spawned). Each runs with cwd and ``LAMBDA_TASK_ROOT`` = the function's task root and the environment variables of
docs/aws-behaviour.md §8.2. Its stdout/stderr go to its log stream (logs.py), its Runtime API
listener is runtime_api.py.

Departures from AWS (also in docs/fidelity.md, section lambda):

- The interpreter is the configured ``python`` (the project's virtualenv, Python 3.11 here)
  while ``AWS_EXECUTION_ENV`` names the function's ``runtime`` (default ``python3.12``, as the
  stack description says).
- ``PATH`` is the service's own (the interpreter must be found); ``HOME`` is unset and
  ``AWS_CONFIG_FILE``/``AWS_SHARED_CREDENTIALS_FILE`` point at /dev/null so that nothing of the
  host's AWS configuration leaks into a handler. ``PYTHONDONTWRITEBYTECODE=1`` because /var/task
  is read-only on AWS (no ``__pycache__`` appears in the task root).
- ``AWS_ENDPOINT_URL`` points the SDK at the local aws service (AWS sets no such variable).
- ``_X_AMZN_TRACE_ID`` is set per invocation by awslambdaric itself from the trace header.
- ``LAMBDA_RUNTIME_DIR`` is the awslambdaric package directory, not /var/runtime.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import awslambdaric
import psutil

from reference_stack.local.lambda_.config import FunctionConfig, ServiceConfig
from reference_stack.local.lambda_.environments import Environment
from reference_stack.local.lambda_.logs import LogShipper, OutputPump, StreamLog
from reference_stack.local.lambda_.runtime_api import RuntimeApiServer

log = logging.getLogger("loadcheck.lambda.launcher")


def log_stream_name(env_id: str, now: datetime) -> str:
    """``YYYY/MM/DD/[$LATEST]<32 hex>`` (docs/aws-behaviour.md §8.2; moto uses the same shape)."""
    return f"{now:%Y/%m/%d}/[$LATEST]{env_id}"


def lambda_environment(
    *, config: ServiceConfig, function: FunctionConfig, runtime_api: str, log_stream: str, base_path: str
) -> dict[str, str]:
    """The process environment of one execution environment (docs/aws-behaviour.md §8.2)."""
    identity = config.identities.current().by_name[function.role_identity]

    env = {
        "PATH": base_path,
        "LANG": "en_US.UTF-8",
        "TZ": "UTC",
        "PYTHONPATH": str(function.task_root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        # The function's own variables first: Lambda's reserved names win over them (§8.2).
        **function.environment,
        "_HANDLER": function.handler,
        "LAMBDA_TASK_ROOT": str(function.task_root),
        "LAMBDA_RUNTIME_DIR": os.path.dirname(awslambdaric.__file__),
        "AWS_LAMBDA_RUNTIME_API": runtime_api,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": function.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_ACCESS_KEY_ID": identity.access_key_id,
        "AWS_ACCESS_KEY": identity.access_key_id,
        "AWS_SECRET_ACCESS_KEY": identity.secret_access_key,
        "AWS_ENDPOINT_URL": config.aws_endpoint_url,
    }
    if identity.session_token:
        env["AWS_SESSION_TOKEN"] = identity.session_token
    return env


class Launcher:
    """Starts environments for the pools and stops them; one per service."""

    def __init__(
        self,
        *,
        config: ServiceConfig,
        shipper: LogShipper,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.shipper = shipper
        self.stop_event = stop
        self._clock = clock
        self._base_path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        self._lock = threading.Lock()
        self._live: dict[str, Environment] = {}

    def start(self, function: FunctionConfig) -> Environment:
        env_id = uuid.uuid4().hex
        stream = StreamLog(
            shipper=self.shipper, group=function.log_group, stream=log_stream_name(env_id, datetime.now(UTC))
        )
        env = Environment(env_id=env_id, function=function, log=stream, clock=self._clock)
        server = RuntimeApiServer(environment=env, stop=self.stop_event)
        server.start()
        env.runtime_address = server.address
        variables = lambda_environment(
            config=self.config,
            function=function,
            runtime_api=server.address,
            log_stream=stream.stream,
            base_path=self._base_path,
        )
        env.created_at = self._clock()  # Init Duration counts from the process start
        try:
            process = subprocess.Popen(
                [self.config.python, "-m", "awslambdaric", function.handler],
                cwd=function.task_root,
                env=variables,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError:
            server.stop()
            raise
        env.process = process
        assert process.stdout is not None and process.stderr is not None
        env.pump = OutputPump(pipes=[process.stdout, process.stderr], on_line=stream.line, name=env_id[:8])
        with self._lock:
            self._live[env_id] = env
        threading.Thread(target=self._watch, args=(env, server), name=f"lambda-watch-{env_id[:8]}", daemon=True).start()
        log.info(
            "started environment %s for %s (pid %d, runtime api %s)",
            env_id[:8],
            function.name,
            process.pid,
            server.address,
        )
        return env

    def _watch(self, env: Environment, server: RuntimeApiServer) -> None:
        assert env.process is not None and env.pump is not None
        returncode = env.process.wait()
        # Everything the runtime printed before dying belongs before the invoker's END line;
        # reading to EOF waits for any grandchild holding the pipes, so that comes after.
        env.pump.drain()
        env.process_exited(returncode)
        env.pump.close()
        server.stop()
        with self._lock:
            self._live.pop(env.env_id, None)
        log.info("environment %s of %s exited (%s)", env.env_id[:8], env.function.name, env.exit_reason)

    def kill(self, env: Environment) -> None:
        """SIGKILL the environment's process and its descendants (Lambda does not let a
        timed-out runtime clean up); the watcher thread reaps it and records the exit."""
        env.retire()
        process = env.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)

    def stop_all(self, *, timeout_s: float = 5.0) -> None:
        with self._lock:
            envs = list(self._live.values())
        for env in envs:
            self.kill(env)
        deadline = self._clock() + timeout_s
        for env in envs:
            if env.process is not None:
                try:
                    env.process.wait(timeout=max(0.1, deadline - self._clock()))
                except subprocess.TimeoutExpired:
                    log.warning("environment %s (pid %s) did not exit", env.env_id[:8], env.pid)

    def live(self) -> list[Environment]:
        with self._lock:
            return list(self._live.values())
