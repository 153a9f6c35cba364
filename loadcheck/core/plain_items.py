"""Item size and capacity units of plain-JSON items, for the checks and the capacity planner.

The checks predict what the table must have charged from the ledger alone. The rules live once,
in :mod:`loadcheck.core.capacity` (which the local stack's governor applies too); this module only
turns the ledger's plain JSON into DynamoDB JSON for them, and back (:func:`plain_item`).

Rules (docs/aws-behaviour.md §7.1, §7.2; DDB:CapacityUnitCalculations, DDB:ProvisionedThroughput):
item size = sum of attribute-name UTF-8 lengths + value sizes; string = UTF-8 bytes; number =
1 byte per 2 significant digits + 1; binary = raw bytes; bool/null = 1; list/map = 3 + 1 per
element + the elements. A write costs 1 WCU per started KB (1,024 bytes); a failed conditional
write still costs. Reads cost 1 RCU per started 4 KB (strong), half eventually consistent; a
Query sums its page then rounds once, with a 0.5/1 RCU minimum.
"""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from loadcheck.core import capacity

WRITE_UNIT = capacity.WRITE_UNIT_BYTES
READ_UNIT = capacity.READ_UNIT_BYTES


def attribute_value(value: Any) -> dict[str, Any]:
    """A plain-JSON value as DynamoDB JSON, the form :mod:`loadcheck.core.capacity` sizes."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, dict):
        return {"M": {str(k): attribute_value(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple, set, frozenset)):
        return {"L": [attribute_value(v) for v in value]}
    raise TypeError(f"cannot size a {type(value).__name__}")


def value_size(value: Any) -> int:
    """Size of a plain-JSON value as DynamoDB stores it (str as S, numbers as N, ...)."""
    return capacity.value_size(attribute_value(value))


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for an item given as plain JSON (attribute name -> value)."""
    return capacity.item_size({name: attribute_value(v) for name, v in item.items()})


def write_units(size_bytes: int) -> int:
    """WCU of one write of an item of ``size_bytes`` (minimum 1)."""
    return int(capacity.write_units(size_bytes))


def read_units(total_bytes: int, *, consistent: bool = False) -> float:
    """RCU of one GetItem/Query page returning ``total_bytes`` (minimum 0.5 / 1)."""
    return capacity.read_units(total_bytes, consistent=consistent)


def plain_item(ddb_item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB-JSON item as plain JSON: S as str, N as int/float, B as base64 text, sets as
    sorted lists; this is the form the ledger's ``item_digest`` is computed over."""
    return {k: _plain(v) for k, v in ddb_item.items()}


def _plain(av: dict[str, Any]) -> Any:
    ((kind, value),) = av.items()
    if kind == "S":
        return value
    if kind == "N":
        d = Decimal(value)
        return int(d) if d == d.to_integral_value() else float(d)
    if kind == "B":
        return base64.b64encode(value if isinstance(value, (bytes, bytearray)) else bytes(value)).decode()
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    if kind == "L":
        return [_plain(v) for v in value]
    if kind == "SS":
        return sorted(value)
    if kind == "NS":
        return sorted(_plain({"N": v}) for v in value)
    if kind == "BS":
        return sorted(_plain({"B": v}) for v in value)
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")
