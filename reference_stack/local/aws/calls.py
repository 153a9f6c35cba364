"""One DynamoDB request on its way through the governor, and what the handlers share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadcheck.core import capacity as cap
from reference_stack.local.aws.accounting import TableSettings

CCF = "ConditionalCheckFailedException"


@dataclass
class Call:
    """One DynamoDB request on its way through the governor."""

    environ: dict[str, Any]
    body: bytes
    request: dict[str, Any]
    op: str
    region: str
    table: Any = None  # moto's Table (single-table operations)
    settings: TableSettings | None = None

    @property
    def capacity_mode(self) -> str | None:
        return self.request.get("ReturnConsumedCapacity")


class Malformed(Exception):
    """A request the governor cannot size; moto gets it as is and answers it."""


def size_of(item: Any) -> int:
    try:
        return cap.item_size(item)
    except (ValueError, AttributeError, TypeError):
        raise Malformed from None
