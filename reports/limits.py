"""Every limit of the stack, planned for a target rate: need, limit, verdict and the smallest fix.

    plan_limits(desc, needs, latency_s, table_wcu, account_concurrency) -> list of limit rows

Each row is ``{"limit", "need", "have", "verdict", "fix", "basis"}`` with verdict ``fits`` (the
need is at most :data:`AT_RISK` of the limit), ``at risk`` (above that, not above the limit) or
``exceeded``. The fix is the smallest change that brings the need back under :data:`AT_RISK`.

- **Lambda concurrency** per function (docs/aws-behaviour.md §8.4, §8.6): Little's law, arrival
  rate x duration, with the duration the function's routes' measured latency at :data:`PERCENTILE`
  (client-side: an upper bound, it includes the gateway and network). The limit is the
  function's reserved concurrency, or with none (``null``) the account's unreserved pool: the
  account quota less every reservation of the description. Mean concurrency: arrivals are not
  evenly spaced, which is what the margin below :data:`AT_RISK` is for.
- **API stage throttle** (§4): the target rate against the stage's ``rate_limit`` and each
  route's own ``route_throttle``.
- **DynamoDB per-key limits** (§7.3) for the workload's key distribution: every write of a day
  lands on today's ``date`` key, so the whole write rate is one key's; Queries of one date
  likewise. The table's provisioned WCU/RCU against the need is planned too.
"""

from __future__ import annotations

import math
from typing import Any

from loadcheck.core.description import StackDescription
from reports.capacity import KEY_RCU_LIMIT, KEY_WCU_LIMIT, Needs

AT_RISK = 0.8  # above this share of a limit the verdict is "at risk"
PERCENTILE = "p95"  # the latency a function's duration is taken as
DEFAULT_ACCOUNT_CONCURRENCY = 1000  # Lambda's default Region quota (§8.4)
UNRESERVED_MINIMUM = 100  # what reservations must leave unreserved on a 1,000 quota (§8.6)


def verdict(need: float, have: float) -> str:
    if need > have:
        return "exceeded"
    return "at risk" if need > AT_RISK * have else "fits"


def _row(
    limit: str, need: float, have: float, fix: str, basis: str, change: tuple[list[str], int] | None = None
) -> dict[str, Any]:
    """A limit row; ``change`` (description path, value) is the fix as an edit of the stack
    description, kept only when a fix is needed (``loadcheck capacity --write-description``)."""
    v = verdict(need, have)
    return {
        "limit": limit,
        "need": round(need, 3),
        "have": have,
        "verdict": v,
        "fix": "none needed" if v == "fits" else fix,
        "basis": basis,
        "change": None if v == "fits" or change is None else {"path": change[0], "value": change[1]},
    }


def _enough(need: float) -> int:
    """The smallest whole limit that keeps ``need`` at or under :data:`AT_RISK` of it."""
    return max(1, math.ceil(need / AT_RISK - 1e-9))


def plan_limits(
    desc: StackDescription,
    n: Needs,
    latency_s: dict[str, float],
    *,
    table_wcu: float | None = None,
    table_rcu: float | None = None,
    account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY,
) -> list[dict[str, Any]]:
    """The limit rows for ``n`` (module docstring); ``latency_s``: route -> seconds at :data:`PERCENTILE`."""
    rows: list[dict[str, Any]] = []
    reserved_total = sum(f.reserved_concurrency or 0 for f in desc.functions.values())
    pool = account_concurrency - reserved_total
    for key, fn in desc.functions.items():
        routes = [(rk, n.route_rps.get(rk, 0.0)) for rk, f in desc.routes.items() if f == key]
        need = sum(rps * latency_s.get(rk, 0.1) for rk, rps in routes)
        basis = " + ".join(
            f"{rk} {rps:.2f}/s x {latency_s.get(rk, 0.1) * 1000:.0f} ms" for rk, rps in routes if rps > 0
        )
        basis = f"arrival rate x {PERCENTILE} latency: {basis or 'no traffic'}"
        if fn.reserved_concurrency is not None:
            fix = f"functions.{key}.reserved_concurrency = {_enough(need)}"
            change = (["functions", key, "reserved_concurrency"], _enough(need))
            rows.append(_row(f"Lambda {key}: reserved concurrency", need, fn.reserved_concurrency, fix, basis, change))
        else:
            fix = f"request a Lambda concurrency quota of {_enough(need) + reserved_total + UNRESERVED_MINIMUM}"
            rows.append(
                _row(
                    f"Lambda {key}: account unreserved pool (shared)",
                    need,
                    pool,
                    fix,
                    basis + f"; {account_concurrency} account quota - {reserved_total} reserved",
                )
            )
    rows.append(
        _row(
            "API stage throttle rate",
            n.target_rate,
            desc.throttle.rate_limit,
            f"throttle.rate_limit = {_enough(n.target_rate)}",
            "the target rate, steady (requests/s over all routes)",
            (["throttle", "rate_limit"], _enough(n.target_rate)),
        )
    )
    for rk, t in desc.route_throttle.items():
        need = n.route_rps.get(rk, 0.0)
        rows.append(
            _row(
                f"API route throttle {rk}",
                need,
                t.rate_limit,
                f'route_throttle."{rk}".rate_limit = {_enough(need)}',
                "the route's share of the target rate",
                (["route_throttle", rk, "rate_limit"], _enough(need)),
            )
        )
    hk = desc.table.hash_key
    rows.append(
        _row(
            f"DynamoDB per-key writes (one `{hk}` per day)",
            n.wcu_per_s,
            KEY_WCU_LIMIT,
            f"shard the hash key ({hk}#N over N >= {math.ceil(n.wcu_per_s / (AT_RISK * KEY_WCU_LIMIT))} keys)",
            "every write lands on today's key (docs/aws-behaviour.md §7.3)",
        )
    )
    query_rcu = n.reads_per_s * (1 - n.scan_share) * n.query_rcu_per_request
    rows.append(
        _row(
            f"DynamoDB per-key reads (Queries of one `{hk}`)",
            query_rcu,
            KEY_RCU_LIMIT,
            "cache reads of today's key or shard it",
            "Queries all ask one date (docs/aws-behaviour.md §7.3)",
        )
    )
    if table_wcu is not None:
        rows.append(
            _row(
                "DynamoDB table write capacity",
                n.wcu_per_s,
                table_wcu,
                f"table.write_capacity = {n.recommended_wcu} (the recommendation; or PAY_PER_REQUEST)",
                "WCU/s at the target rate against provisioned WCU",
                (["table", "write_capacity"], n.recommended_wcu),
            )
        )
    if table_rcu is not None:
        rows.append(
            _row(
                "DynamoDB table read capacity",
                n.rcu_per_s,
                table_rcu,
                f"table.read_capacity = {n.recommended_rcu} (the recommendation; or PAY_PER_REQUEST)",
                "RCU/s at the target rate against provisioned RCU",
                (["table", "read_capacity"], n.recommended_rcu),
            )
        )
    return rows
