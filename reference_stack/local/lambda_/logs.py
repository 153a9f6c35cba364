"""Function logs: platform lines, the handler's own output, and shipping to CloudWatch Logs.

Lambda writes, per execution environment, one log stream in the function's log group
(docs/aws-behaviour.md §8.2: ``/aws/lambda/<function>``, stream ``YYYY/MM/DD/[$LATEST]<32 hex>``):
``START``/``END``/``REPORT`` platform lines around each invocation (§8.3) and every line the
runtime prints on stdout/stderr in between.

Departures from AWS (also in docs/fidelity.md, section lambda):

- Events reach CloudWatch Logs in batches every ``interval_s`` (default 1 s) and on flush or
  shutdown; AWS's delivery delay is undocumented (docs/aws-behaviour.md §10). If the aws endpoint
  is down, events stay buffered (at most ``max_buffered`` of them; older ones are dropped and
  counted in the service log) and are retried on the next batch.
- Each message keeps its trailing newline as the raw AWS message does (§8.3 "trailing \\t\\n");
  empty lines are not shipped because PutLogEvents rejects empty messages.
- awslambdaric joins the lines of an ``[ERROR]`` report with ``\\r`` when it writes to stdout
  (RIC:awslambdaric/bootstrap.py ``StandardLogSink.log_error``); on AWS the platform receives
  it as one framed event. We turn each ``\\r`` into ``\\n`` so the report is one multi-line event
  as on AWS.
- Timestamps within a stream never go backwards (moto rejects unordered batches); two events
  in the same millisecond keep their emission order.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import threading
import time
from collections.abc import Callable
from typing import IO, Any

log = logging.getLogger("loadcheck.lambda.logs")

# PutLogEvents limits (CloudWatch Logs API reference: 10,000 events and 1,048,576 bytes per
# batch, counting 26 bytes of overhead per event).
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_duration_ms: float | None = None,
    status: str | None = None,
    error_type: str | None = None,
) -> str:
    """The REPORT line of docs/aws-behaviour.md §8.3: tab-separated, billed at 1 ms granularity.

    ``Status``/``Error Type`` fields appear only for failed invocations (timeout, crash, init
    error): what recent Lambda runtimes print; not in the 2023 documentation snapshot, so
    UNCONFIRMED (a choice, documented in docs/fidelity.md).
    """
    fields = [
        f"REPORT RequestId: {request_id}",
        f"Duration: {duration_ms:.2f} ms",
        f"Billed Duration: {billed_ms(duration_ms)} ms",
        f"Memory Size: {memory_mb} MB",
        f"Max Memory Used: {max_memory_mb} MB",
    ]
    if init_duration_ms is not None:
        fields.append(f"Init Duration: {init_duration_ms:.2f} ms")
    if status:
        fields.append(f"Status: {status}")
    if error_type:
        fields.append(f"Error Type: {error_type}")
    return "\t".join(fields) + "\t\n"


def billed_ms(duration_ms: float) -> int:
    """Billed Duration: the duration rounded up to the next millisecond (§8.3), at least 1 ms."""
    return max(1, math.ceil(round(duration_ms, 6)))


class LogShipper:
    """Buffers log events per (group, stream) and ships them with PutLogEvents in batches.

    ``client_factory`` returns a boto3 ``logs`` client (lazily, so a service whose aws endpoint
    is not up yet still starts); ``clock`` returns epoch seconds and is injectable for tests.
    """

    def __init__(
        self,
        *,
        client_factory: Callable[[], Any],
        interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
        max_buffered: int = 200_000,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.interval_s = interval_s
        self._clock = clock
        self._max_buffered = max_buffered
        self._lock = threading.Lock()  # guards _pending, _last_ts, _buffered
        self._ship_lock = threading.Lock()  # one batch at a time, so batches stay in order
        self._pending: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._last_ts: dict[tuple[str, str], int] = {}
        self._buffered = 0
        self._created: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        self.dropped = 0
        self.shipped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def emit(self, group: str, stream: str, message: str) -> None:
        if not message.strip("\n"):
            return
        key = (group, stream)
        with self._lock:
            ts = max(int(self._clock() * 1000), self._last_ts.get(key, 0))
            self._last_ts[key] = ts
            self._pending.setdefault(key, []).append((ts, message))
            self._buffered += 1
            if self._buffered > self._max_buffered:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        biggest = max(self._pending, key=lambda k: len(self._pending[k]))
        self._pending[biggest].pop(0)
        self._buffered -= 1
        self.dropped += 1
        if self.dropped in (1, 1000) or self.dropped % 100_000 == 0:
            log.warning("log buffer full: %d events dropped so far (is the aws endpoint up?)", self.dropped)

    def buffered(self) -> int:
        with self._lock:
            return self._buffered

    def flush(self) -> int:
        """Ship everything buffered now; returns the number of events shipped."""
        with self._ship_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._buffered = 0
            sent = 0
            failed: dict[tuple[str, str], list[tuple[int, str]]] = {}
            for key, events in pending.items():
                try:
                    sent += self._ship(key, events)
                except Exception as exc:  # endpoint down or moto error: keep the events for later
                    log.warning("could not ship %d log events to %s %s: %s", len(events), *key, exc)
                    failed[key] = events
            if failed:
                with self._lock:
                    for key, events in failed.items():
                        self._pending[key] = events + self._pending.get(key, [])
                        self._buffered += len(events)
            self.shipped += sent
            return sent

    def _ship(self, key: tuple[str, str], events: list[tuple[int, str]]) -> int:
        client = self._get_client()
        self._ensure_stream(client, *key)
        sent = 0
        for batch in _batches(events):
            answer = client.put_log_events(
                logGroupName=key[0],
                logStreamName=key[1],
                logEvents=[{"timestamp": ts, "message": msg} for ts, msg in batch],
            )
            if answer.get("rejectedLogEventsInfo"):  # too old/new: CloudWatch drops them silently
                log.warning("CloudWatch Logs rejected events of %s %s: %s", *key, answer["rejectedLogEventsInfo"])
            sent += len(batch)
        return sent

    def _get_client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _ensure_stream(self, client: Any, group: str, stream: str) -> None:
        if (group, stream) in self._created:
            return
        if group not in self._groups:
            # The supervisor creates the log groups with their retention; creating a missing
            # one here keeps a standalone lambda service usable (AWS would fail to log instead).
            with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
                client.create_log_group(logGroupName=group)
            self._groups.add(group)
        with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
            client.create_log_stream(logGroupName=group, logStreamName=stream)
        self._created.add((group, stream))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lambda-log-shipper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()

    def close(self) -> None:
        """Stop the background thread and ship what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


def _batches(events: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    batches: list[list[tuple[int, str]]] = [[]]
    size = 0
    for ts, msg in events:
        cost = len(msg.encode("utf-8")) + EVENT_OVERHEAD_BYTES
        if batches[-1] and (len(batches[-1]) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            batches.append([])
            size = 0
        batches[-1].append((ts, msg))
        size += cost
    return [b for b in batches if b]


class StreamLog:
    """One environment's log stream: where its platform lines and output go."""

    def __init__(self, *, shipper: LogShipper, group: str, stream: str) -> None:
        self.shipper = shipper
        self.group = group
        self.stream = stream
        # While an invocation asked for ``X-Amz-Log-Type: Tail``, its lines are also kept here.
        self.tap: list[str] | None = None

    def line(self, message: str) -> None:
        message = message if message.endswith("\n") else message + "\n"
        tap = self.tap
        if tap is not None:
            tap.append(message)
        self.shipper.emit(self.group, self.stream, message)


class OutputPump:
    """Reads an environment's stdout and stderr pipes and turns them into log events.

    A background thread reads as output arrives; :meth:`drain` reads synchronously whatever
    the child has already written, so the invoker can put END after the handler's last line
    (awslambdaric flushes every write before it posts the result).
    """

    def __init__(self, *, pipes: list[IO[bytes]], on_line: Callable[[str], None], name: str) -> None:
        self._pipes = pipes
        self._on_line = on_line
        self._lock = threading.Lock()
        self._open: dict[int, bytearray] = {}
        for pipe in pipes:
            os.set_blocking(pipe.fileno(), False)
            self._open[pipe.fileno()] = bytearray()
        self._thread = threading.Thread(target=self._run, name=f"lambda-output-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                fds = list(self._open)
            if not fds:
                return
            try:
                ready, _, _ = select.select(fds, [], [], 0.5)
            except (OSError, ValueError):
                return
            if ready:
                self.drain(partial=False)

    def drain(self, *, partial: bool = True) -> None:
        """Read everything available now; with ``partial``, also emit an unterminated last line."""
        with self._lock:
            for fd in list(self._open):
                buf = self._open[fd]
                eof = False
                while True:
                    try:
                        chunk = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    except OSError:
                        chunk = b""
                    if not chunk:
                        eof = True
                        break
                    buf += chunk
                self._emit_lines(buf, final=partial or eof)
                if eof:
                    del self._open[fd]

    def _emit_lines(self, buf: bytearray, *, final: bool) -> None:
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line = bytes(buf[: nl + 1])
            del buf[: nl + 1]
            self._on_line(line.decode("utf-8", errors="replace").replace("\r", "\n"))
        if final and buf:
            self._on_line(bytes(buf).decode("utf-8", errors="replace").replace("\r", "\n") + "\n")
            buf.clear()

    def close(self) -> None:
        """Read to EOF (the child has exited) and close the pipes."""
        self._thread.join(timeout=5)
        self.drain(partial=True)
        for pipe in self._pipes:
            pipe.close()
