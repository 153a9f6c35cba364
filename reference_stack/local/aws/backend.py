"""In-process access to moto's DynamoDB state, for what the wire does not tell the governor.

The governor needs the item as it is *before* a write (PutItem/UpdateItem/DeleteItem are charged
on the larger of the old and new item, §7.2), the full item behind a projected GetItem, and the
table's current capacity settings (so ``UpdateTable`` applies live). moto's state lives in this
process (``moto.dynamodb.models.dynamodb_backends[account][region]``), so we read it directly;
callers hold the table lock while they do (moto is not thread-safe, docs/emulator-notes.md §6).
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any

from moto.dynamodb.models import dynamodb_backends

from reference_stack.local.aws.accounting import TableSettings


def partition_value(value: Any, *, index: str = "") -> tuple[str, str] | None:
    """Hashable identity of a partition-key value (per index: a GSI has its own partitions)."""
    if not isinstance(value, dict) or len(value) != 1:
        return None
    ((kind, payload),) = value.items()
    return (index, f"{kind}:{payload}")


class MotoTables:
    def __init__(self, *, account_id: str) -> None:
        self.account_id = account_id

    def _backend(self, region: str) -> Any:
        return dynamodb_backends[self.account_id][region]

    def table(self, region: str, name: str) -> Any | None:
        """moto's Table for a name or ARN, or None (moto then answers ResourceNotFoundException)."""
        if not isinstance(name, str) or not name:
            return None
        backend = self._backend(region)
        table = backend.tables.get(name)
        if table is not None:
            return table
        try:
            return backend.get_table(name)
        except Exception:  # moto raises its own ResourceNotFoundException type
            return None

    def names(self, region: str) -> list[str]:
        return list(self._backend(region).tables)

    @staticmethod
    def settings(table: Any) -> TableSettings:
        throughput = table.throughput or {}
        on_demand = table.billing_mode == "PAY_PER_REQUEST"
        return TableSettings(
            name=table.name,
            arn=table.table_arn,
            on_demand=on_demand,
            read_capacity=float(throughput.get("ReadCapacityUnits") or 0),
            write_capacity=float(throughput.get("WriteCapacityUnits") or 0),
        )

    @staticmethod
    def key_of(table: Any, item: Any) -> dict[str, Any] | None:
        """The primary key attributes of ``item``, or None if one is missing (moto will reject it)."""
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        if not isinstance(item, dict) or any(n not in item for n in names):
            return None
        return {n: item[n] for n in names}

    @staticmethod
    def partition_of(table: Any, key: dict[str, Any] | None) -> tuple[str, str] | None:
        """A hashable partition identity for a table key (the hash key's type and value)."""
        if not key:
            return None
        return partition_value(key.get(table.hash_key_attr))

    def get_item(self, region: str, table: Any, key: Any) -> dict[str, Any] | None:
        """The stored item (wire format, all attributes) or None."""
        if key is None:
            return None
        try:
            item = self._backend(region).get_item(table.name, key)
        except Exception:  # a malformed key: moto answers the request with a ValidationException
            return None
        return item.to_json()["Attributes"] if item is not None else None

    def restore(self, region: str, table: Any, key: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Undo a write (the drop-writes fault): put the old item back, or delete the new one."""
        backend = self._backend(region)
        if old is None:
            backend.delete_item(table.name, key)
        else:
            backend.put_item(table.name, old)

    def put_phantom(self, region: str, table: Any, item: dict[str, Any], serial: int) -> dict[str, Any]:
        """Store a copy of ``item`` under a sort key no request wrote (phantom-writes fault); returns its key."""
        phantom = dict(item)
        attr = table.range_key_attr or table.hash_key_attr  # no sort key: only the hash key can differ
        ((kind, payload),) = item[attr].items()
        if kind == "S":
            phantom[attr] = {"S": f"{payload}#phantom-{serial}"}
        elif kind == "N":
            try:
                phantom[attr] = {"N": str(Decimal(payload) + Decimal(serial) / Decimal(1000000))}
            except InvalidOperation:
                phantom[attr] = {"N": str(serial)}
        else:  # B: base64 text; append bytes b"#p<serial>"
            raw = base64.b64decode(payload) + f"#p{serial}".encode()
            phantom[attr] = {"B": base64.b64encode(raw).decode()}
        self._backend(region).put_item(table.name, phantom)
        return self.key_of(table, phantom) or {}
