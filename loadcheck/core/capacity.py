"""DynamoDB item sizes and capacity units, by AWS's published rules (pure functions).

Everything here works on the DynamoDB JSON wire format (``{"S": "..."}``, ``{"N": "12.5"}``,
``{"M": {...}}`` ...), so the local stack's capacity governor can size what it reads off the wire
or out of moto. It lives in the shared core because the checks and the capacity planner apply the
same rules to what the ledger recorded (``loadcheck.core.plain_items`` converts plain JSON first), on AWS as
well as locally: one set of rules, so the model the checks hold the governor to is the
governor's own.

Rules (docs/aws-behaviour.md §7.1, §7.2; AWS "Capacity unit consumption",
DDB:CapacityUnitCalculations and DDB:ProvisionedThroughput):

- item size = sum over attributes of (UTF-8 length of the name + size of the value);
- String: UTF-8 bytes. Binary: raw bytes (the wire carries base64; we decode). Boolean, Null: 1.
- Number: about 1 byte per 2 significant digits, plus 1 byte (leading and trailing zeros trimmed).
- List / Map: 3 bytes + 1 byte per element + the elements (a Map element counts its key too);
  an empty List or Map is 3 bytes.
- write: 1 WCU per 1 KB (1,024 bytes), rounded up; reads: 1 RCU per 4 KB, rounded up, halved
  for eventually consistent reads. A read of a missing item still costs the minimum.
- Query / Scan: the sizes of all items read on a page are summed and rounded up once, with a
  minimum of one unit (0.5 eventually consistent).

Departures (also in docs/fidelity.md, section aws):

- Number size: AWS says "approximately" 1 byte per 2 significant digits + 1; we use exactly
  ``ceil(digits / 2) + 1`` and ignore the sign. UNCONFIRMED beyond "approximately".
- Sets (SS, NS, BS): AWS documents no overhead for sets; we count the sum of their elements.
  UNCONFIRMED.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Iterable, Mapping
from typing import Any

BURST_SECONDS = 300.0  # §7.3: a provisioned table retains up to 5 minutes of unused capacity
WRITE_UNIT_BYTES = 1024  # §7.2: 1 WCU = one write of up to 1 KB
READ_UNIT_BYTES = 4096  # §7.2: 1 RCU = one strongly consistent read of up to 4 KB
CONTAINER_OVERHEAD = 3  # §7.1: List/Map: +3 bytes
ELEMENT_OVERHEAD = 1  # §7.1: +1 byte per List/Map element

AttributeValue = Mapping[str, Any]
Item = Mapping[str, AttributeValue]


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def number_size(text: str) -> int:
    """Bytes DynamoDB counts for a Number given as its wire string (e.g. ``"-0012.500"``).

    §7.1: ~1 byte per 2 significant digits + 1 byte; leading and trailing zeros are trimmed
    (so ``"1000"`` and ``"0.001"`` both have 1 significant digit). Exponent notation
    (``"1E+3"``) is accepted: only the mantissa digits count.
    """
    mantissa = text.strip().lstrip("+-").lower().split("e", 1)[0]
    digits = mantissa.replace(".", "").strip("0")
    if not digits:
        return 1  # zero: one byte of digits storage is the least a number takes
    return math.ceil(len(digits) / 2) + 1


def binary_size(value: str | bytes) -> int:
    """Raw byte length of a Binary value; the JSON wire carries it base64-encoded."""
    if isinstance(value, bytes | bytearray):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=False))
    except (binascii.Error, ValueError):
        return len(value)  # not valid base64: moto would reject it; size what we were given


def value_size(value: AttributeValue) -> int:
    """Size in bytes of one attribute value (without its name), §7.1."""
    if len(value) != 1:
        raise ValueError(f"an AttributeValue has exactly one type key, got {sorted(value)!r}")
    ((kind, payload),) = value.items()
    if kind == "S":
        return utf8_len(payload)
    if kind == "N":
        return number_size(payload)
    if kind == "B":
        return binary_size(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(utf8_len(s) for s in payload)
    if kind == "NS":
        return sum(number_size(n) for n in payload)
    if kind == "BS":
        return sum(binary_size(b) for b in payload)
    if kind == "L":
        return CONTAINER_OVERHEAD + sum(ELEMENT_OVERHEAD + value_size(v) for v in payload)
    if kind == "M":
        return CONTAINER_OVERHEAD + sum(ELEMENT_OVERHEAD + utf8_len(k) + value_size(v) for k, v in payload.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}; expected one of S N B BOOL NULL SS NS BS L M")


def item_size(item: Item | None) -> int:
    """Size in bytes of an item: attribute names plus values (§7.1). ``None`` (no item) is 0."""
    if not item:
        return 0
    return sum(utf8_len(name) + value_size(value) for name, value in item.items())


def write_units(size_bytes: int) -> float:
    """WCU for one write of an item of ``size_bytes``: 1 per started KB, at least 1 (§7.2)."""
    return float(max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES)))


def read_units(size_bytes: int, *, consistent: bool) -> float:
    """RCU for reading ``size_bytes`` as one unit of rounding (one item, or one Query/Scan page).

    At least 1 RCU (strong) / 0.5 RCU (eventual), also for a missing item or an empty page (§7.2).
    """
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def put_units(*, new_size: int, old_size: int) -> float:
    """PutItem / UpdateItem: the larger of the item before and after (§7.2)."""
    return write_units(max(new_size, old_size))


def page_read_units(sizes: Iterable[int], *, consistent: bool) -> float:
    """Query / Scan page: item sizes summed, then rounded up once (§7.2: 40.8 KB -> 44 KB -> 11 RCU)."""
    return read_units(sum(sizes), consistent=consistent)
