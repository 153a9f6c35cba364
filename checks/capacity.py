"""Item size and capacity units by DynamoDB's published rules (pure functions).

The checks predict what the table must have charged from the ledger alone, so they need the
rules themselves, not the local stack's governor: on AWS there is no governor to import.

Rules (aws-behaviour.md §7.1, §7.2; DDB:CapacityUnitCalculations, DDB:ProvisionedThroughput):
item size = sum of attribute-name UTF-8 lengths + value sizes; string = UTF-8 bytes; number =
1 byte per 2 significant digits + 1; binary = raw bytes; bool/null = 1; list/map = 3 + 1 per
element + the elements. A write costs 1 WCU per started KB (1,024 bytes); a failed conditional
write still costs. Reads cost 1 RCU per started 4 KB (strong), half eventually consistent; a
Query sums its page then rounds once, with a 0.5/1 RCU minimum.
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any

WRITE_UNIT = 1024
READ_UNIT = 4096


def _number_size(value: int | float | Decimal) -> int:
    text = format(Decimal(str(value)).normalize(), "f").lstrip("-").replace(".", "")
    digits = text.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def value_size(value: Any) -> int:
    """Size of a plain-JSON value as DynamoDB stores it (str as S, numbers as N, ...)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, (int, float, Decimal)):
        return _number_size(value)
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(str(k).encode()) + value_size(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return 3 + sum(1 + value_size(v) for v in value)
    raise TypeError(f"cannot size a {type(value).__name__}")


def item_size(item: dict[str, Any]) -> int:
    """Bytes DynamoDB counts for an item given as plain JSON (attribute name -> value)."""
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


def write_units(size_bytes: int) -> int:
    """WCU of one write of an item of ``size_bytes`` (minimum 1)."""
    return max(1, math.ceil(size_bytes / WRITE_UNIT))


def read_units(total_bytes: int, *, consistent: bool = False) -> float:
    """RCU of one GetItem/Query page returning ``total_bytes`` (minimum 0.5 / 1)."""
    units = max(1, math.ceil(total_bytes / READ_UNIT))
    return float(units) if consistent else units / 2.0


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
