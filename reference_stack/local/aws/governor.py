"""The DynamoDB capacity governor: WSGI middleware in front of moto's server app.

For every DynamoDB data call (``X-Amz-Target: DynamoDB_20120810.<Op>``) the governor

1. reads the table's capacity from moto's state (so ``UpdateTable`` applies at once),
2. works out the cost by AWS's rules (``capacity.py``): for writes before forwarding, from the
   request's item and the stored item (looked up in moto, in-process); for reads after,
   from what was read,
3. admits or throttles (``accounting.py``): a throttled request never reaches moto and gets
   DynamoDB's ``ProvisionedThroughputExceededException`` (``protocol.throttle_reply``); batch
   calls get the items that do not fit back in ``UnprocessedItems`` / ``UnprocessedKeys``, and
   an exception only if none fit (DDB:BatchWriteItem, DDB:BatchGetItem),
4. rewrites ``ConsumedCapacity`` with its own figures (moto answers constants, docs/emulator-notes.md
   §3) when ``ReturnConsumedCapacity`` is TOTAL or INDEXES, and removes the one moto adds to
   UpdateItem when it was not asked for,
5. records ``AWS/DynamoDB`` metrics (``metrics.py``) and applies faults (``faults.py``).

It also answers DynamoDB's export to S3 itself (``exports.py``), consuming no capacity.

Everything else (other AWS services, table management, ``/moto-api``) passes through.

Thread safety: moto is not thread-safe (docs/emulator-notes.md §6). Each table's data calls run
under that table's lock (which also makes "look up the old item, write, look up the new item"
atomic); table management takes a catalog lock; all other services share one lock (also taken
by the metrics publisher when it writes into moto's CloudWatch).

Departures (docs/fidelity.md, section aws): GSIs and LSIs have no capacity of their own (index
reads and writes are charged to the table; writes do not add index write costs);
``TransactWriteItems`` / ``TransactGetItems`` are charged (twice the units) but never throttled
(``transactions.py``); PartiQL passes through uncharged and unthrottled;
``ConsumedCapacity`` for INDEXES carries only the ``Table`` entry; a failed conditional
UpdateItem/DeleteItem is charged the stored item's size (min 1 WCU), a failed conditional PutItem
the larger of the stored and the new item.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from loadcheck.core import capacity as cap
from reference_stack.local.aws.accounting import Accounting, Kind, TableSettings
from reference_stack.local.aws.backend import MotoTables, partition_value
from reference_stack.local.aws.batches import batch_get, batch_write
from reference_stack.local.aws.calls import CCF, Call, Malformed, size_of
from reference_stack.local.aws.exports import EXPORT_OPS, Exports
from reference_stack.local.aws.faults import Faults
from reference_stack.local.aws.metrics import MetricsRecorder
from reference_stack.local.aws.protocol import (
    TARGET_PREFIX,
    Reply,
    WsgiApp,
    call_app,
    consumed_capacity,
    hash_key_condition,
    read_body,
    region_of,
    throttle_reply,
)
from reference_stack.local.aws.transactions import transact

log = logging.getLogger("loadcheck.aws.governor")

CATALOG_OPS = frozenset(
    {"CreateTable", "UpdateTable", "DeleteTable", "RestoreTableFromBackup", "RestoreTableToPointInTime", "ImportTable"}
)
PARTIQL_OPS = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})
# Request keys that narrow what a Query/Scan returns but not what it reads (and so costs, §7.2).
_NARROWING = (
    "FilterExpression",
    "QueryFilter",
    "ScanFilter",
    "ConditionalOperator",
    "ProjectionExpression",
    "AttributesToGet",
    "Select",
)


class Governor:
    def __init__(
        self,
        *,
        app: WsgiApp,
        accounting: Accounting,
        recorder: MetricsRecorder,
        faults: Faults,
        tables: MotoTables,
        default_region: str,
        enabled: bool = True,
        admin: WsgiApp | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.app = app
        self.accounting = accounting
        self.recorder = recorder
        self.faults = faults
        self.tables = tables
        self.default_region = default_region
        self.enabled = enabled
        self.admin = admin
        self.sleep = sleep
        self.other_lock = threading.Lock()  # non-DynamoDB services in moto; shared with the metrics sink
        self.catalog_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.exports = Exports(
            account_id=tables.account_id,
            tables=tables,
            clock=accounting.clock,
            table_lock=self.locked,
            s3_lock=self.other_lock,
        )
        self._handlers: dict[str, Callable[[Call], Reply]] = {
            "PutItem": self._put_item,
            "UpdateItem": self._update_item,
            "DeleteItem": self._delete_item,
            "GetItem": self._get_item,
            "Query": self._read_page,
            "Scan": self._read_page,
            "BatchGetItem": lambda call: batch_get(self, call),
            "BatchWriteItem": lambda call: batch_write(self, call),
            "TransactWriteItems": lambda call: transact(self, call),
            "TransactGetItems": lambda call: transact(self, call),
        }

    # -- dispatch ---------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.admin is not None and environ.get("PATH_INFO", "").startswith("/_loadcheck/"):
            return self.admin(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(TARGET_PREFIX):
            if not self.enabled:
                return self.app(environ, start_response)
            with self.other_lock:
                return call_app(self.app, environ).send(start_response)
        op = target[len(TARGET_PREFIX) :]
        body = read_body(environ)
        delay = self.faults.latency_s
        if delay:
            self.sleep(delay)  # ddb-latency fault: outside every lock, like a slow network
        if not self.enabled:
            return call_app(self.app, environ, body).send(start_response)
        return self.handle(environ, op, body).send(start_response)

    def handle(self, environ: dict[str, Any], op: str, body: bytes) -> Reply:
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            request = None
        region = region_of(environ, self.default_region)
        if op in EXPORT_OPS and isinstance(request, dict):
            return self.exports.handle(op, request, region)  # exports.py: moto's export departs too far
        handler = self._handlers.get(op)
        if not isinstance(request, dict) or handler is None:
            if op in CATALOG_OPS:
                with self.catalog_lock:
                    reply = call_app(self.app, environ, body)
                if reply.code == 200 and isinstance(request, dict):
                    if op != "UpdateTable":
                        # A new table gets fresh buckets (also after moto's /moto-api/reset).
                        self.accounting.forget_table(str(request.get("TableName") or request.get("TargetTableName")))
                    if op != "DeleteTable":
                        # Buckets start when the table does (burst_start), and UpdateTable takes
                        # effect from this moment: both are synced now, not at the next data call.
                        self.table_for(region, request.get("TableName") or request.get("TargetTableName"))
                return reply
            if op in PARTIQL_OPS:
                # A statement names its tables in PartiQL text: hold every table's lock instead.
                with self.locked(self.tables.names(region)):
                    return call_app(self.app, environ, body)
            return call_app(self.app, environ, body)
        call = Call(environ, body, request, op, region)
        if op not in ("BatchGetItem", "BatchWriteItem", "TransactWriteItems", "TransactGetItems"):
            call.table = self.table_for(region, request.get("TableName"))
            if call.table is None:
                return call_app(self.app, environ, body)  # moto answers ResourceNotFound / validation
            call.settings = self.accounting.settings(call.table.name)
        try:
            return handler(call)
        except Malformed:
            # Something we cannot size: let moto answer it (it validates like DynamoDB), uncharged.
            return call_app(self.app, environ, body)

    def table_for(self, region: str, name: Any) -> Any | None:
        table = self.tables.table(region, name)
        if table is not None:
            settings = self.tables.settings(table)
            self.accounting.sync_table(settings)
            if not settings.on_demand:
                self.recorder.provisioned(table=table.name, read=settings.read_capacity, write=settings.write_capacity)
        return table

    @contextlib.contextmanager
    def locked(self, names: Iterable[str]) -> Iterator[None]:
        """Hold the locks of ``names`` (sorted, so two batches never deadlock)."""
        with contextlib.ExitStack() as stack:
            for name in sorted(set(names)):
                with self._locks_guard:
                    lock = self._locks.setdefault(name, threading.Lock())
                stack.enter_context(lock)
            yield

    # -- common steps -----------------------------------------------------------------------------

    def forward(self, call: Call, request: dict[str, Any] | None = None) -> Reply:
        body = call.body if request is None else json.dumps(request).encode()
        return call_app(self.app, call.environ, body)

    def count_throttles(
        self, call: Call, kind: Kind, throttled: dict[str, tuple[TableSettings, list[str], int]], *, whole: bool
    ) -> None:
        """Count throttle events per table; ThrottledRequests only when the whole request failed (§7.6)."""
        metric = "ReadThrottleEvents" if kind == "read" else "WriteThrottleEvents"
        for name, (_, _, events) in throttled.items():
            self.recorder.add(metric, events, table=name)
            if whole:
                self.recorder.add("ThrottledRequests", 1, table=name, operation=call.op)

    def _throttled_reply(self, call: Call, kind: Kind, reasons: list[str]) -> Reply:
        settings = call.settings
        assert settings is not None
        self.count_throttles(call, kind, {settings.name: (settings, reasons, 1)}, whole=True)
        return throttle_reply((r, settings.arn) for r in reasons)

    def consumed(self, table: str, kind: Kind, units: float) -> None:
        if units:
            metric = "ConsumedReadCapacityUnits" if kind == "read" else "ConsumedWriteCapacityUnits"
            self.recorder.add(metric, units, table=table)

    def _finish(self, call: Call, reply: Reply, units: float) -> Reply:
        """Put our ConsumedCapacity in a successful reply (and drop moto's unasked one)."""
        if reply.code != 200:
            return reply
        entry = consumed_capacity(call.capacity_mode, call.table.name, units) if call.table else None
        if entry is None and b'"ConsumedCapacity"' not in reply.body:
            return reply
        payload = reply.json()
        if entry is None:
            payload.pop("ConsumedCapacity", None)
        else:
            payload["ConsumedCapacity"] = entry
        return reply.with_json(payload)

    def _stored(self, call: Call, key: Any) -> tuple[dict[str, Any] | None, int]:
        item = self.tables.get_item(call.region, call.table, key)
        return item, cap.item_size(item)

    # -- single-item writes -------------------------------------------------------------------------

    def _put_item(self, call: Call) -> Reply:
        table, item = call.table, call.request.get("Item")
        key = self.tables.key_of(table, item)
        if key is None:
            raise Malformed
        part = self.tables.partition_of(table, key)
        new_size = size_of(item)
        with self.locked([table.name]):
            old, old_size = self._stored(call, key)
            cost = cap.put_units(new_size=new_size, old_size=old_size)
            admission = self.accounting.admit_writes(table.name, [(part, cost)])[0]
            if not admission.admitted:
                return self._throttled_reply(call, "write", admission.reasons)
            reply = self.forward(call)
            error = reply.error_type()
            if error is None:
                self._put_faults(call, key, item, old)
            elif error != CCF:  # failed conditional writes are charged (§7.2); other errors are not
                self.accounting.charge(table.name, "write", part, -cost)
                cost = 0.0
        self.consumed(table.name, "write", cost)
        return self._finish(call, reply, cost)

    def _put_faults(self, call: Call, key: dict[str, Any], item: Any, old: dict[str, Any] | None) -> None:
        if self.faults.should_drop():
            self.tables.restore(call.region, call.table, key, old)
            log.info("fault drop-writes: acknowledged PutItem %s on %s not stored", key, call.table.name)
        serial = self.faults.take_phantom()
        if serial is not None:
            phantom = self.tables.put_phantom(call.region, call.table, item, serial)
            log.info("fault phantom-writes: stored phantom item %s on %s", phantom, call.table.name)

    def _update_item(self, call: Call) -> Reply:
        table, key = call.table, call.request.get("Key")
        if self.tables.key_of(table, key) is None:
            raise Malformed
        part = self.tables.partition_of(table, key)
        # The new item is unknown until moto has applied the update: admit on an estimate
        # (old item + every value the update carries), then settle on the actual figure.
        added = sum(size_of(v) if isinstance(v, dict) else 0 for v in _update_values(call.request))
        with self.locked([table.name]):
            _, old_size = self._stored(call, key)
            estimate = cap.write_units(old_size + added)
            admission = self.accounting.admit_writes(table.name, [(part, estimate)])[0]
            if not admission.admitted:
                return self._throttled_reply(call, "write", admission.reasons)
            reply = self.forward(call)
            error = reply.error_type()
            if error is None:
                _, new_size = self._stored(call, key)
                actual = cap.put_units(new_size=new_size, old_size=old_size)
            elif error == CCF:
                actual = cap.write_units(old_size)
            else:
                actual = 0.0
            self.accounting.charge(table.name, "write", part, actual - estimate)
        self.consumed(table.name, "write", actual)
        return self._finish(call, reply, actual)

    def _delete_item(self, call: Call) -> Reply:
        table, key = call.table, call.request.get("Key")
        if self.tables.key_of(table, key) is None:
            raise Malformed
        part = self.tables.partition_of(table, key)
        with self.locked([table.name]):
            _, old_size = self._stored(call, key)
            cost = cap.write_units(old_size)  # §7.2: the deleted item's size, at least 1 WCU
            admission = self.accounting.admit_writes(table.name, [(part, cost)])[0]
            if not admission.admitted:
                return self._throttled_reply(call, "write", admission.reasons)
            reply = self.forward(call)
            error = reply.error_type()
            if error is not None and error != CCF:
                self.accounting.charge(table.name, "write", part, -cost)
                cost = 0.0
        self.consumed(table.name, "write", cost)
        return self._finish(call, reply, cost)

    # -- reads ------------------------------------------------------------------------------------

    def _get_item(self, call: Call) -> Reply:
        table, key = call.table, call.request.get("Key")
        if self.tables.key_of(table, key) is None:
            raise Malformed
        part = self.tables.partition_of(table, key)
        consistent = bool(call.request.get("ConsistentRead"))
        with self.locked([table.name]):
            admission = self.accounting.admit_reads(table.name, [part])[0]
            if not admission.admitted:
                return self._throttled_reply(call, "read", admission.reasons)
            reply = self.forward(call)
            units = 0.0
            if reply.code == 200:
                # The whole stored item counts, whatever ProjectionExpression returned (§7.2).
                _, size = self._stored(call, key)
                units = cap.read_units(size, consistent=consistent)
            self.accounting.charge(table.name, "read", part, units)
        self.consumed(table.name, "read", units)
        return self._finish(call, reply, units)

    def _read_page(self, call: Call) -> Reply:
        """Query and Scan: one page, charged on the items read (evaluated), summed and rounded once."""
        table, request = call.table, call.request
        consistent = bool(request.get("ConsistentRead"))
        part = None
        if call.op == "Query":
            index = request.get("IndexName") or ""
            hash_attr = _index_hash_attr(table, index) if index else table.hash_key_attr
            part = partition_value(hash_key_condition(request, hash_attr), index=str(index))
        with self.locked([table.name]):
            admission = self.accounting.admit_reads(table.name, [part])[0]
            if not admission.admitted:
                return self._throttled_reply(call, "read", admission.reasons)
            reply = self.forward(call)
            units = 0.0
            if reply.code == 200:
                units = cap.page_read_units(self._evaluated_sizes(call, reply), consistent=consistent)
            self.accounting.charge(table.name, "read", part, units)
        self.consumed(table.name, "read", units)
        return self._finish(call, reply, units)

    def _evaluated_sizes(self, call: Call, reply: Reply) -> list[int]:
        """Sizes of the items the page read, before filters and projections (which cost nothing less)."""
        request = call.request
        narrowing = [k for k in _NARROWING if k in request and not (k == "Select" and request[k] == "ALL_ATTRIBUTES")]
        if narrowing:
            # Ask moto the same page without what narrows it: those are the items DynamoDB read.
            shadow = {k: v for k, v in request.items() if k not in _NARROWING and k != "ReturnConsumedCapacity"}
            _prune_placeholders(shadow)
            shadow_reply = self.forward(call, shadow)
            if shadow_reply.code == 200:
                reply = shadow_reply
            else:
                log.warning("could not size %s without %s: %s", call.op, narrowing, shadow_reply.body[:200])
        return [size_of(item) for item in reply.json().get("Items") or []]


def _update_values(request: dict[str, Any]) -> list[Any]:
    values = list((request.get("ExpressionAttributeValues") or {}).values())
    for update in (request.get("AttributeUpdates") or {}).values():
        if isinstance(update, dict) and isinstance(update.get("Value"), dict):
            values.append(update["Value"])
    return [{"v": v} for v in values if isinstance(v, dict)]


def _index_hash_attr(table: Any, index: str) -> str | None:
    for idx in list(table.global_indexes or []) + list(table.indexes or []):
        if idx.name == index:
            for key in idx.schema:
                if key.get("KeyType") == "HASH":
                    return str(key["AttributeName"])
    return None


def _prune_placeholders(request: dict[str, Any]) -> None:
    """Drop expression names/values no remaining expression uses (DynamoDB and moto reject unused ones)."""
    text = " ".join(str(request.get(k, "")) for k in ("KeyConditionExpression",))
    for field, prefix in (("ExpressionAttributeNames", "#"), ("ExpressionAttributeValues", ":")):
        mapping = request.get(field)
        if isinstance(mapping, dict):
            kept = {k: v for k, v in mapping.items() if k.startswith(prefix) and _mentions(text, k)}
            if kept:
                request[field] = kept
            else:
                request.pop(field, None)


def _mentions(text: str, token: str) -> bool:
    return re.search(re.escape(token) + r"(?![\w])", text) is not None
