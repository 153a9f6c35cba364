"""TransactWriteItems and TransactGetItems through the governor: charged, never throttled.

DynamoDB charges transactional requests twice the normal units: 2 WCU per started KB of each
item written, 2 RCU per started 4 KB of each item read (always strongly consistent)
(DDB:transaction-apis, "Capacity management for transactions"; docs/aws-behaviour.md §7.2 for the
per-item rounding). Items are sized like single-item writes: the larger of the stored item and
the new one.

Departures (docs/fidelity.md, section aws): a transaction is never throttled (AWS cancels it
with ``TransactionCanceledException``; the cancellation codes are not modelled), it is charged
after it succeeded (possibly into debt), a cancelled transaction is not charged, and a
``ConditionCheck`` is charged like a write of the stored item (UNCONFIRMED).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from loadcheck.core import capacity as cap
from reference_stack.local.aws.calls import Call, GovernorSteps, Malformed, size_of
from reference_stack.local.aws.protocol import Reply, consumed_capacity

TRANSACTION_FACTOR = 2.0


def _actions(call: Call) -> list[tuple[str, dict[str, Any]]]:
    entries = call.request.get("TransactItems")
    if not isinstance(entries, list) or not entries:
        raise Malformed
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise Malformed
        ((kind, action),) = entry.items()
        if not isinstance(action, dict) or not isinstance(action.get("TableName"), str):
            raise Malformed
        out.append((kind, action))
    return out


def transact(gov: GovernorSteps, call: Call) -> Reply:
    actions = _actions(call)
    tables = {}
    for _, action in actions:
        table = gov.table_for(call.region, action["TableName"])
        if table is None:
            raise Malformed
        tables[action["TableName"]] = table
    writing = call.op == "TransactWriteItems"
    with gov.locked(t.name for t in tables.values()):
        planned = []  # (table, key, old size, new size or None)
        for kind, action in actions:
            table = tables[action["TableName"]]
            key = gov.tables.key_of(table, action.get("Item") if kind == "Put" else action.get("Key"))
            if key is None:
                raise Malformed
            old = gov.tables.get_item(call.region, table, key)
            planned.append((kind, table, key, cap.item_size(old), size_of(action["Item"]) if kind == "Put" else None))
        reply = gov.forward(call)
        units: dict[str, float] = defaultdict(float)
        if reply.code == 200:
            for kind, table, key, old_size, new_size in planned:
                if kind == "Update":
                    new_size = cap.item_size(gov.tables.get_item(call.region, table, key))
                if writing:
                    charge = TRANSACTION_FACTOR * cap.put_units(new_size=new_size or 0, old_size=old_size)
                else:
                    charge = TRANSACTION_FACTOR * cap.read_units(old_size, consistent=True)
                gov.accounting.charge(
                    table.name, "write" if writing else "read", gov.tables.partition_of(table, key), charge
                )
                units[table.name] += charge
    for name, total in units.items():
        gov.consumed(name, "write" if writing else "read", total)
    if reply.code != 200:
        return reply
    mode = call.capacity_mode
    if mode not in ("TOTAL", "INDEXES") and b'"ConsumedCapacity"' not in reply.body:
        return reply
    payload = reply.json()
    if mode in ("TOTAL", "INDEXES"):
        payload["ConsumedCapacity"] = [consumed_capacity(mode, name, total) for name, total in units.items()]
    else:
        payload.pop("ConsumedCapacity", None)
    return reply.with_json(payload)
