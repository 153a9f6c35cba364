"""One DynamoDB request on its way through the governor, and what the handlers share.

:class:`GovernorSteps` is what an operation handler kept outside ``governor.py``
(``batches.py``, ``transactions.py``) may ask of the governor; the governor implements it, so
those modules never import the governor.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from loadcheck.core import capacity as cap
from reference_stack.local.aws.accounting import Accounting, Kind, TableSettings
from reference_stack.local.aws.backend import MotoTables
from reference_stack.local.aws.protocol import Reply

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


class GovernorSteps(Protocol):
    """The governor's common steps, as the batch and transaction handlers use them."""

    tables: MotoTables
    accounting: Accounting

    def table_for(self, region: str, name: Any) -> Any | None:
        """moto's table ``name`` in ``region`` (None if absent), its capacity synced to the buckets."""
        ...

    def locked(self, names: Iterable[str]) -> AbstractContextManager[None]:
        """Hold the locks of the tables ``names`` for the whole call."""
        ...

    def forward(self, call: Call, request: dict[str, Any] | None = None) -> Reply:
        """Send the call (or a narrowed ``request``) to moto."""
        ...

    def count_throttles(
        self, call: Call, kind: Kind, throttled: dict[str, tuple[TableSettings, list[str], int]], *, whole: bool
    ) -> None:
        """Record throttle events per table (and ThrottledRequests when ``whole``)."""
        ...

    def consumed(self, table: str, kind: Kind, units: float) -> None:
        """Record consumed capacity units for the table's metrics."""
        ...
