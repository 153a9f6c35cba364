"""The capacity plan (``capacity.json``): knees, needs at a target rate, warnings and cost.

    build_plan(run_dir=..., knees=..., target_rate=..., mix=..., region=...) -> dict
    provisioned_of(run_dir) -> {"wcu", "rcu", "billing_mode", "table"}

The math lives in :mod:`reports.capacity` (units, knee) and :mod:`reports.costs` (prices);
this module puts them together for ``loadcheck capacity`` and the report's "Capacity plan".
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadcheck.core import rundir
from loadcheck.core.description import StackDescription, load_description
from reports.autoscaling import plan_autoscaling
from reports.bill import EXCLUDED, Usage, record_bytes_of, stack_bill
from reports.capacity import (
    DEFAULT_UTILISATION,
    RouteKnee,
    hot_key_warnings,
    knees_to_dict,
    needs,
    step_plan,
    workload_profile,
)
from reports.costs import load_prices, monthly_costs, unconfirmed_of
from reports.data import _table_capacity, route_summaries
from reports.limits import DEFAULT_ACCOUNT_CONCURRENCY, PERCENTILE, plan_limits

PLAN_VERSION = 1


def _description(run_dir: Path | None) -> StackDescription:
    """The stack description the run was made with (``run.json`` options), else the reference one."""
    options = (rundir.read_run(run_dir).get("options") or {}) if run_dir is not None else {}
    return load_description(options.get("description"), aws=(options.get("target") == "aws"))


def _lambda_inputs(
    rates: dict[str, float], run_dir: Path | None
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Invocations/s, billed seconds (p50 of the run's routes, else 0.1 s) and memory per function."""
    desc = _description(run_dir)
    p50: dict[str, float] = {}
    if run_dir is not None:
        for r in route_summaries(run_dir):
            if r.latency_ms.get("p50") is not None:
                p50[r.route] = float(r.latency_ms["p50"]) / 1000.0
    inv: dict[str, float] = defaultdict(float)
    secs: dict[str, list[float]] = defaultdict(list)
    for route, rps in rates.items():
        fn = desc.routes.get(route)
        if fn is None:
            continue
        inv[fn] += rps
        secs[fn].append(p50.get(route, 0.1))
    memory = {k: f.memory_mb for k, f in desc.functions.items()}
    return dict(inv), {k: max(v) for k, v in secs.items()}, memory


def _latencies(run_dir: Path | None) -> dict[str, float]:
    """Seconds per route at the planner's percentile, from the run's ledger."""
    out: dict[str, float] = {}
    if run_dir is not None:
        for r in route_summaries(run_dir):
            if r.latency_ms.get(PERCENTILE) is not None:
                out[r.route] = float(r.latency_ms[PERCENTILE]) / 1000.0
    return out


def build_plan(
    *,
    run_dir: str | Path | None,
    knees: list[RouteKnee],
    target_rate: float,
    mix: dict[str, int],
    region: str,
    prices_path: str | Path | None = None,
    utilisation: float = DEFAULT_UTILISATION,
    table_items: int | None = None,
    provisioned: dict[str, Any] | None = None,
    account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY,
) -> dict[str, Any]:
    """Everything ``capacity.json`` holds and the report's "Capacity plan" section shows."""
    rd = rundir.run_dir_of(run_dir) if run_dir is not None else None
    profile = workload_profile(rd, _description(rd))
    n = needs(profile, target_rate=target_rate, mix=mix, utilisation=utilisation, table_items=table_items)
    prices = load_prices(prices_path, region)
    inv, secs, mem = _lambda_inputs(n.route_rps, rd)
    desc = _description(rd)
    record_bytes, record_source = record_bytes_of(rundir.read_results(rd) if rd is not None else None, desc)
    usage = Usage(
        requests_per_s=target_rate,
        lambda_invocations_per_s=inv,
        writes_per_s=n.writes_per_s,
        item_bytes=profile.write_item_bytes,
        record_bytes=record_bytes,
        record_bytes_source=record_source,
    )
    cost = monthly_costs(
        prices=prices,
        wcu=n.recommended_wcu,
        rcu=n.recommended_rcu,
        wcu_per_s=n.wcu_per_s,
        rcu_per_s=n.rcu_per_s,
        requests_per_s=target_rate,
        lambda_invocations_per_s=inv,
        lambda_seconds=secs,
        lambda_memory_mb=mem,
        stack_lines=stack_bill(prices, desc, usage),
        excluded=EXCLUDED,
    )
    provisioned_table = desc.table.billing_mode == "PROVISIONED"
    limits = plan_limits(
        desc,
        n,
        _latencies(rd),
        table_wcu=float(desc.table.write_capacity) if provisioned_table else None,
        table_rcu=float(desc.table.read_capacity) if provisioned_table else None,
        account_concurrency=account_concurrency,
    )
    autoscaling = None
    run_options = (rundir.read_run(rd).get("options") or {}) if rd is not None else {}
    if rd is not None and run_options.get("shape") == "step" and n.target_rate > 0:
        steps, step_s = step_plan(rundir.read_run(rd))
        autoscaling = plan_autoscaling(
            steps=steps,
            step_s=step_s,
            write_units_per_request=n.wcu_per_s / n.target_rate,
            wcu_per_write=profile.write_wcu,
            wcu_per_s_at_target=n.wcu_per_s,
            current_wcu=desc.table.write_capacity,
            recommended_wcu=n.recommended_wcu,
            wcu_hour_price=prices["dynamodb"]["provisioned_wcu_hour"],
            hours=prices["hours"],
        )
        autoscaling["unconfirmed"] = unconfirmed_of(prices, ["dynamodb.provisioned_wcu_hour"])
    warnings = hot_key_warnings(n)
    prov = provisioned or {}
    if prov.get("billing_mode") == "PROVISIONED" and prov.get("wcu") is not None and n.wcu_per_s > float(prov["wcu"]):
        warnings.insert(
            0,
            f"the table is provisioned with {prov['wcu']:g} WCU; {target_rate:g} req/s needs "
            f"{n.wcu_per_s:.2f} WCU/s: it would throttle once its 300 s burst is spent",
        )
    rows = [
        [
            "target rate",
            f"{target_rate:g} req/s ("
            + ", ".join(f"{r} {v:.2f}/s" for r, v in sorted(n.route_rps.items()) if v > 0)
            + ")",
        ],
        ["writes", f"{n.writes_per_s:.2f}/s x {profile.write_wcu:g} WCU = {n.wcu_per_s:.2f} WCU/s"],
        ["reads", f"{n.reads_per_s:.2f}/s -> {n.rcu_per_s:.2f} RCU/s"],
        [
            "recommended provisioned",
            f"{n.recommended_wcu} WCU, {n.recommended_rcu} RCU ({100 * utilisation:.0f}% target utilisation)",
        ],
        ["cheaper table mode at this rate", cost["cheaper_table_mode"]],
        ["inputs", profile.source],
    ] + [["capacity rule", note] for note in n.notes]
    knee_text = ", ".join(
        f"{k.route} {k.knee_rate:g} req/s" if k.knee_rate is not None else f"{k.route} none" for k in knees
    )
    summary = (
        f"Knee per route (highest good step): {knee_text or 'no step run analysed'}. "
        f"For {target_rate:g} req/s: {n.wcu_per_s:.2f} WCU/s and {n.rcu_per_s:.2f} RCU/s; provision "
        f"{n.recommended_wcu} WCU / {n.recommended_rcu} RCU, or on demand "
        f"({cost['cheaper_table_mode']} is cheaper; {region}, price table of {cost['as_of']})."
    )
    return {
        "version": PLAN_VERSION,
        "run_id": rd.name if rd else None,
        "summary": summary,
        "routes": knees_to_dict(knees),
        "provisioned": prov,
        "limits": limits,
        "autoscaling": autoscaling,
        "recommendation": {
            "target_rate": target_rate,
            "mix": mix,
            "rows": rows,
            "warnings": warnings,
            "cost": cost,
            "needs": asdict(n),
        },
    }


def provisioned_of(run_dir: Path | None) -> dict[str, Any]:
    """The table's capacity: the throttling check's DescribeTable figures, else the stack description."""
    results = rundir.read_results(run_dir) if run_dir is not None else None
    wcu, mode = _table_capacity(results)

    table = load_description().table
    return {"wcu": wcu, "rcu": float(table.read_capacity), "billing_mode": mode, "table": table.name}
