"""BatchGetItem and BatchWriteItem through the governor (part of governor.py, split for size).

Each item is sized and admitted on its own (§7.2: BatchGetItem rounds every item up to 4 KB,
BatchWriteItem every item up to 1 KB). Items that do not fit are not forwarded and come back in
``UnprocessedKeys`` / ``UnprocessedItems``; only if none fits does the call fail with
``ProvisionedThroughputExceededException`` (DDB:BatchWriteItem, DDB:BatchGetItem). Throttle
events count per item; ``ThrottledRequests`` only when every item was throttled (§7.6).
"""

from __future__ import annotations

from typing import Any

from loadcheck.core import capacity as cap
from reference_stack.local.aws.accounting import TableSettings
from reference_stack.local.aws.calls import Call, GovernorSteps, Malformed, size_of
from reference_stack.local.aws.protocol import Reply, consumed_capacity, throttle_reply


def batch_tables(gov: GovernorSteps, call: Call) -> dict[str, Any]:
    items = call.request.get("RequestItems")
    if not isinstance(items, dict) or not items:
        raise Malformed
    tables = {}
    for name in items:
        table = gov.table_for(call.region, name)
        if table is None:
            raise Malformed
        tables[name] = table
    return tables


def batch_get(gov: GovernorSteps, call: Call) -> Reply:
    tables = batch_tables(gov, call)
    request_items: dict[str, Any] = call.request["RequestItems"]
    with gov.locked(t.name for t in tables.values()):
        admitted: dict[str, list[Any]] = {}
        unprocessed: dict[str, Any] = {}
        throttled: dict[str, tuple[TableSettings, list[str], int]] = {}
        for name, spec in request_items.items():
            table, keys = tables[name], (spec or {}).get("Keys") or []
            if any(gov.tables.key_of(table, k) is None for k in keys):
                raise Malformed
            parts = [gov.tables.partition_of(table, k) for k in keys]
            decisions = gov.accounting.admit_reads(table.name, parts)
            ok = [(k, p) for k, p, d in zip(keys, parts, decisions, strict=True) if d.admitted]
            bad = [k for k, d in zip(keys, decisions, strict=True) if not d.admitted]
            if ok:
                admitted[name] = ok
            if bad:
                unprocessed[name] = {**spec, "Keys": bad}
                reasons = [r for d in decisions for r in d.reasons]
                throttled[table.name] = (gov.tables.settings(table), reasons, len(bad))
        if not admitted:
            gov.count_throttles(call, "read", throttled, whole=True)
            return throttle_reply((r, s.arn) for s, reasons, _ in throttled.values() for r in reasons)
        gov.count_throttles(call, "read", throttled, whole=False)
        forwarded = {
            **call.request,
            "RequestItems": {
                name: {**request_items[name], "Keys": [k for k, _ in pairs]} for name, pairs in admitted.items()
            },
        }
        reply = gov.forward(call, forwarded)
        units: dict[str, float] = {}
        if reply.code == 200:
            for name, pairs in admitted.items():
                table = tables[name]
                consistent = bool(request_items[name].get("ConsistentRead"))
                units[table.name] = 0.0
                for key, part in pairs:
                    _, size = sized(gov, call, table, key)
                    charge = cap.read_units(size, consistent=consistent)  # each item on its own (§7.2)
                    gov.accounting.charge(table.name, "read", part, charge)
                    units[table.name] += charge
    for name, total in units.items():
        gov.consumed(name, "read", total)
    return finish_batch(call, reply, units, "UnprocessedKeys", unprocessed)


def batch_write(gov: GovernorSteps, call: Call) -> Reply:
    tables = batch_tables(gov, call)
    request_items: dict[str, Any] = call.request["RequestItems"]
    with gov.locked(t.name for t in tables.values()):
        admitted: dict[str, list[tuple[Any, Any, float]]] = {}
        unprocessed: dict[str, list[Any]] = {}
        throttled: dict[str, tuple[TableSettings, list[str], int]] = {}
        # Size every write first: a malformed entry must leave no table charged.
        planned: dict[str, list[tuple[Any, Any, float]]] = {}
        for name, writes in request_items.items():
            table = tables[name]
            costs = planned[name] = []
            for write in writes or []:
                if not isinstance(write, dict):
                    raise Malformed
                if "PutRequest" in write:
                    item = (write["PutRequest"] or {}).get("Item")
                    key = gov.tables.key_of(table, item)
                    if key is None:
                        raise Malformed
                    _, old_size = sized(gov, call, table, key)
                    cost = cap.put_units(new_size=size_of(item), old_size=old_size)
                elif "DeleteRequest" in write:
                    key = (write["DeleteRequest"] or {}).get("Key")
                    if gov.tables.key_of(table, key) is None:
                        raise Malformed
                    _, old_size = sized(gov, call, table, key)
                    cost = cap.write_units(old_size)
                else:
                    raise Malformed
                costs.append((write, gov.tables.partition_of(table, key), cost))
        for name, costs in planned.items():
            table = tables[name]
            decisions = gov.accounting.admit_writes(table.name, [(p, c) for _, p, c in costs])
            ok = [entry for entry, d in zip(costs, decisions, strict=True) if d.admitted]
            bad = [entry[0] for entry, d in zip(costs, decisions, strict=True) if not d.admitted]
            if ok:
                admitted[name] = ok
            if bad:
                unprocessed[name] = bad
                reasons = [r for d in decisions for r in d.reasons]
                throttled[table.name] = (gov.tables.settings(table), reasons, len(bad))
        if not admitted:
            gov.count_throttles(call, "write", throttled, whole=True)
            return throttle_reply((r, s.arn) for s, reasons, _ in throttled.values() for r in reasons)
        gov.count_throttles(call, "write", throttled, whole=False)
        forwarded = {
            **call.request,
            "RequestItems": {name: [w for w, _, _ in entries] for name, entries in admitted.items()},
        }
        reply = gov.forward(call, forwarded)
        units = {tables[name].name: sum(c for _, _, c in entries) for name, entries in admitted.items()}
        if reply.code != 200:  # nothing was written: give everything back
            for name, entries in admitted.items():
                for _, part, cost in entries:
                    gov.accounting.charge(tables[name].name, "write", part, -cost)
            units = {}
    for name, total in units.items():
        gov.consumed(name, "write", total)
    return finish_batch(call, reply, units, "UnprocessedItems", unprocessed)


def sized(gov: GovernorSteps, call: Call, table: Any, key: Any) -> tuple[dict[str, Any] | None, int]:
    item = gov.tables.get_item(call.region, table, key)
    return item, cap.item_size(item)


def finish_batch(call: Call, reply: Reply, units: dict[str, float], field: str, unprocessed: dict[str, Any]) -> Reply:
    if reply.code != 200:
        return reply
    mode = call.capacity_mode
    if not unprocessed and mode not in ("TOTAL", "INDEXES") and b'"ConsumedCapacity"' not in reply.body:
        return reply
    payload = reply.json()
    if unprocessed:
        merged = dict(payload.get(field) or {})
        for name, value in unprocessed.items():
            if field == "UnprocessedKeys" and name in merged:
                merged[name] = {**merged[name], "Keys": list(merged[name].get("Keys", [])) + value["Keys"]}
            elif name in merged:
                merged[name] = list(merged[name]) + value
            else:
                merged[name] = value
        payload[field] = merged
    entries = [consumed_capacity(mode, name, total) for name, total in units.items()]
    if mode in ("TOTAL", "INDEXES"):
        payload["ConsumedCapacity"] = entries
    else:
        payload.pop("ConsumedCapacity", None)
    return reply.with_json(payload)
