"""Access logs: render the configured ``$context`` format and ship records to CloudWatch Logs.

Rendering (docs/aws-behaviour.md §2.1-§2.3): the format is a JSON object ``{field: template}``; each
``$context.<variable>`` in a template is replaced by its value, and a variable with no value
renders as ``-`` (§2.2), so every value is a string. One record per request that reached the
API (also 403/404/413/429 answers).

Delivery (§2.4: HTTP API access logs are a CloudWatch Logs log delivery with undocumented
latency): records wait ``delivery_delay_s`` (+ the ``log-delay`` fault), then go out every
``batch_interval_s`` through ``PutLogEvents`` on the local aws endpoint, sorted by time within
each batch (PutLogEvents requires chronological order), at most 10,000 events / 1 MB per call.
``flush()`` ships everything pending at once (``POST /_loadcheck/flush``, SIGTERM).

Departures and choices (UNCONFIRMED):
- The log stream is ``<apiId>_$default-<32 hex>``, one per gateway process (AWS names its
  delivery streams itself and may use several).
- Event timestamps are the request's arrival time (``requestTimeEpoch``).
- The log group must exist (the supervisor creates it); while it does not, records are kept
  and retried each interval (at most ``MAX_PENDING``; older ones are dropped with a warning).
- ``$context.customDomain.basePathMatched`` renders ``(none)`` for the custom domain's empty
  mapping, as a real log did (§2.2).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from reference_stack.local.gateway.config import AccessLogSettings
from reference_stack.local.gateway.faults import Faults

log = logging.getLogger("loadcheck.gateway.access_log")

UNSET = "-"
MAX_BATCH_EVENTS = 10_000  # PutLogEvents quota
MAX_BATCH_BYTES = 1_048_576  # PutLogEvents quota: sum of UTF-8 message bytes + 26 per event
MAX_PENDING = 1_000_000
_VARIABLE = re.compile(r"\$context\.([A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)*)")

# Every $context variable of docs/aws-behaviour.md §2.1 that the local gateway can set. Anything else
# (JWT claims, Cognito, mTLS, authorizer.principalId) is never set and renders "-".
VARIABLES = (
    "accountId",
    "apiId",
    "authorizer.error",
    "awsEndpointRequestId",
    "customDomain.basePathMatched",
    "dataProcessed",
    "domainName",
    "domainPrefix",
    "error.message",
    "error.messageString",
    "error.responseType",
    "extendedRequestId",
    "httpMethod",
    "identity.accountId",
    "identity.caller",
    "identity.sourceIp",
    "identity.user",
    "identity.userAgent",
    "identity.userArn",
    "integration.error",
    "integration.integrationStatus",
    "integration.latency",
    "integration.requestId",
    "integration.status",
    "integrationErrorMessage",
    "integrationLatency",
    "integrationStatus",
    "path",
    "protocol",
    "requestId",
    "requestTime",
    "requestTimeEpoch",
    "responseLatency",
    "responseLength",
    "routeKey",
    "stage",
    "status",
)


def render(fmt: dict[str, str], context: dict[str, str], *, blank: str | None = None) -> str:
    """One access-log line: the format with every ``$context`` variable substituted."""

    def value(m: re.Match[str]) -> str:
        v = context.get(m.group(1))
        return UNSET if v is None or v == "" else v

    record: dict[str, str] = {}
    for name, template in fmt.items():
        if name == blank:
            record[name] = UNSET
            continue
        only = _only_variable(template)
        if only is not None:  # the common "$context.x" template: a lookup, no regex
            v = context.get(only)
            record[name] = UNSET if v is None or v == "" else v
        else:
            record[name] = _VARIABLE.sub(value, template)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=256)
def _only_variable(template: str) -> str | None:
    m = _VARIABLE.fullmatch(template)
    return m.group(1) if m else None


@dataclass(order=True)
class _Pending:
    due: float  # monotonic time at which the record may be shipped
    timestamp_ms: int
    message: str


class AccessLogShipper:
    """Buffers rendered records and ships them to one log group in timed batches.

    ``client_factory`` builds the boto3 ``logs`` client lazily (injectable for tests);
    ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        *,
        settings: AccessLogSettings,
        api_id: str,
        faults: Faults,
        client_factory: Callable[[], Any],
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.stream_name = f"{api_id}_$default-{uuid.uuid4().hex}"
        self._faults = faults
        self._client_factory = client_factory
        self._client: Any = None
        self._clock = clock
        self._rng = rng
        self._pending: list[_Pending] = []
        self._lock = threading.Lock()  # guards _pending
        self._ship_lock = threading.Lock()  # one PutLogEvents caller at a time
        self._stream_ready = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.shipped = 0
        self.dropped = 0

    def submit(self, *, context: dict[str, str], timestamp_ms: int) -> None:
        rate = self._faults.get("drop-access-logs")
        if rate and self._rng() < float(rate):
            self.dropped += 1  # fault: the record is lost on its way to CloudWatch Logs
            return
        message = render(self.settings.format, context, blank=self._faults.get("blank-access-log-field"))
        delay = self.settings.delivery_delay_s + float(self._faults.get("log-delay") or 0)
        with self._lock:
            if len(self._pending) >= MAX_PENDING:
                self._pending.pop(0)
                log.warning("access-log buffer full (%d records): dropped the oldest", MAX_PENDING)
            self._pending.append(_Pending(self._clock() + delay, timestamp_ms, message))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- delivery --------------------------------------------------------------------------------

    def _ensure_stream(self) -> None:
        if self._stream_ready:
            return
        if self._client is None:
            self._client = self._client_factory()
        with contextlib.suppress(self._client.exceptions.ResourceAlreadyExistsException):
            self._client.create_log_stream(logGroupName=self.settings.log_group, logStreamName=self.stream_name)
        self._stream_ready = True

    def ship_due(self, *, everything: bool = False) -> int:
        """Ship the records whose delay has passed (all of them with ``everything``); returns
        the number shipped. Failed batches stay pending for the next call."""
        with self._ship_lock:
            now = self._clock()
            with self._lock:
                if everything:
                    due, self._pending = self._pending, []
                else:
                    due = [p for p in self._pending if p.due <= now]
                    self._pending = [p for p in self._pending if p.due > now]
            if not due:
                return 0
            due.sort(key=lambda p: p.timestamp_ms)
            sent = 0
            try:
                self._ensure_stream()
                for batch in _batches(due):
                    answer = self._client.put_log_events(
                        logGroupName=self.settings.log_group,
                        logStreamName=self.stream_name,
                        logEvents=[{"timestamp": p.timestamp_ms, "message": p.message} for p in batch],
                    )
                    if answer.get("rejectedLogEventsInfo"):
                        log.warning(
                            "CloudWatch Logs rejected some access-log events: %s", answer["rejectedLogEventsInfo"]
                        )
                    sent += len(batch)
            except Exception as exc:  # any delivery failure: keep the rest, retry next interval
                log.warning(
                    "shipping access logs to %s failed (%s); %d records kept for retry",
                    self.settings.log_group,
                    exc,
                    len(due) - sent,
                )
                with self._lock:
                    self._pending[:0] = due[sent:]
            self.shipped += sent
            return sent

    def flush(self) -> int:
        return self.ship_due(everything=True)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.settings.batch_interval_s):
                self.ship_due()

        self._thread = threading.Thread(target=loop, name="access-log-shipper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer and ship everything still pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()


def _batches(records: list[_Pending]) -> list[list[_Pending]]:
    out: list[list[_Pending]] = [[]]
    size = 0
    for rec in records:
        rec_size = len(rec.message.encode("utf-8")) + 26
        if len(out[-1]) >= MAX_BATCH_EVENTS or (out[-1] and size + rec_size > MAX_BATCH_BYTES):
            out.append([])
            size = 0
        out[-1].append(rec)
        size += rec_size
    return out
