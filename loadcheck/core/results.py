"""What a check returns, and the statuses a run can end in.

``CheckResult`` is the unit every check produces and every report renders:

- ``status``: ``pass``, ``fail``, ``error`` (the check could not gather its inputs; never a
  pass), or ``skipped`` (with ``reason``);
- ``summary``: one line a release manager can read;
- ``figures``: named numbers (counts, rates, capacity units);
- ``evidence``: a bounded list of concrete examples (keys, request ids, log lines).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "error", "skipped"]
STATUSES: tuple[str, ...] = ("pass", "fail", "error", "skipped")
MAX_EVIDENCE = 20


@dataclass
class CheckResult:
    name: str
    status: Status
    summary: str
    figures: dict[str, float | int | str | None] = field(default_factory=dict)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None  # for skipped / error
    duration_s: float | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        if len(self.evidence) > MAX_EVIDENCE:
            self.figures.setdefault("evidence_total", len(self.evidence))
            self.evidence = self.evidence[:MAX_EVIDENCE]

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(
            name=data["name"],
            status=data["status"],
            summary=data.get("summary", ""),
            figures=data.get("figures") or {},
            evidence=data.get("evidence") or [],
            reason=data.get("reason"),
            duration_s=data.get("duration_s"),
        )
