"""DynamoDB auto scaling (target tracking) simulated over a step load: capacity, throttling, cost.

    simulate(demand, config, burst_s=BURST_SECONDS, burst_start=0.0) -> Simulation
    step_demand(steps, step_s, units_per_request) -> per-second demand

The third table option beside fixed provisioned capacity and on-demand. The behaviour is AWS's
as docs/aws-behaviour.md §7.8 describes it; the model, per second of the load:

- the table admits up to its provisioned capacity plus what its burst bucket holds (300 s of
  unused capacity, §7.3, :func:`reports.data.simulate_burst`'s rule); the rest is throttled;
- each whole minute gives one CloudWatch datapoint: consumed units / 60 / provisioned =
  utilisation (a throttled request consumes nothing);
- **scale out** when two consecutive datapoints are above the target: at the end of the second
  minute the capacity becomes ``ceil(capacity x utilisation / target)``, at most ``max``, and takes
  effect at once (the table update's own delay is not modelled: the throttling is a lower bound);
  the next scale-out needs two more breaching minutes;
- **scale in** when fifteen consecutive datapoints are 20 percentage points or more below the
  target: the capacity becomes ``ceil(consumed / target)``, at least ``min``; at most 4 decreases
  in a UTC day, then one an hour (§7.8), which a step load of minutes never reaches;
- a load shorter than two minutes never scales: its throttling is what ``min`` lets through.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from loadcheck.core.capacity import BURST_SECONDS

SCALE_OUT_MINUTES = 2
SCALE_IN_MINUTES = 15
SCALE_IN_MARGIN = 0.20  # utilisation this far below the target, in fractions of capacity
DECREASES_FREE_PER_DAY = 4


@dataclass(frozen=True)
class TargetTracking:
    min_capacity: int
    max_capacity: int
    target: float  # utilisation, 0.2 .. 0.9 (Application Auto Scaling's DynamoDB range is 20-90 %)


@dataclass
class Simulation:
    capacity: list[float] = field(default_factory=list)  # provisioned, per second
    admitted: list[float] = field(default_factory=list)
    throttled: list[float] = field(default_factory=list)
    events: list[tuple[int, str, float]] = field(default_factory=list)  # (second, "out"/"in", new capacity)

    @property
    def throttled_units(self) -> float:
        return sum(self.throttled)

    @property
    def capacity_unit_hours(self) -> float:
        return sum(self.capacity) / 3600.0


def step_demand(steps: list[float], step_s: float, units_per_request: float) -> list[float]:
    """Units per second the step load offers: each step's rate x units per request, for its seconds."""
    out: list[float] = []
    for rate in steps:
        out += [rate * units_per_request] * max(1, round(step_s))
    return out


def simulate(
    demand: list[float], config: TargetTracking, *, burst_s: float = BURST_SECONDS, burst_start: float = 0.0
) -> Simulation:
    """Run target tracking over ``demand`` (units per second); see the module docstring."""
    sim = Simulation()
    capacity = float(config.min_capacity)
    level = burst_start
    minute_consumed = 0.0
    high = low = 0
    decreases = 0
    for second, want in enumerate(demand):
        burst = burst_s * capacity
        level = min(burst, level) + capacity
        admitted = min(want, level)
        level = max(0.0, level - admitted)
        sim.capacity.append(capacity)
        sim.admitted.append(admitted)
        sim.throttled.append(max(0.0, want - admitted))
        minute_consumed += admitted
        if (second + 1) % 60:
            continue
        utilisation = minute_consumed / 60.0 / capacity
        minute_consumed = 0.0
        high = high + 1 if utilisation > config.target else 0
        low = low + 1 if utilisation <= config.target - SCALE_IN_MARGIN else 0
        if high >= SCALE_OUT_MINUTES and capacity < config.max_capacity:
            capacity = float(min(config.max_capacity, math.ceil(capacity * utilisation / config.target - 1e-9)))
            sim.events.append((second + 1, "out", capacity))
            high = 0
        elif low >= SCALE_IN_MINUTES and capacity > config.min_capacity and decreases < DECREASES_FREE_PER_DAY:
            capacity = float(max(config.min_capacity, math.ceil(capacity * utilisation / config.target - 1e-9)))
            sim.events.append((second + 1, "in", capacity))
            decreases += 1
            low = 0
    return sim


def recommend(current_capacity: int, recommended: int) -> TargetTracking:
    """A starting configuration: the description's capacity as ``min``, twice the plan's
    recommendation as ``max`` (headroom for a peak above the target rate), 70 % target."""
    return TargetTracking(min_capacity=max(1, current_capacity), max_capacity=max(2, 2 * recommended), target=0.7)


def plan_autoscaling(
    *,
    steps: list[float],
    step_s: float,
    write_units_per_request: float,
    wcu_per_write: float,
    wcu_per_s_at_target: float,
    current_wcu: int,
    recommended_wcu: int,
    wcu_hour_price: float,
    hours: float,
) -> dict[str, object]:
    """The auto-scaling option of the plan: configuration, simulation over the step load, cost.

    ``write_units_per_request``: WCU per request of the mix (the step rates are of all requests);
    ``wcu_per_write``: WCU per write, to count the writes throttled."""
    config = recommend(current_wcu, recommended_wcu)
    demand = step_demand(steps, step_s, write_units_per_request)
    sim = simulate(demand, config)
    settled = min(config.max_capacity, max(config.min_capacity, math.ceil(wcu_per_s_at_target / config.target)))
    return {
        "config": {"min": config.min_capacity, "max": config.max_capacity, "target": config.target},
        "steps": steps,
        "step_s": step_s,
        "write_units_per_request": round(write_units_per_request, 3),
        "throttled_units": round(sim.throttled_units, 2),
        "throttled_writes": round(sim.throttled_units / wcu_per_write, 1) if wcu_per_write else 0,
        "events": [{"second": s, "direction": d, "capacity": c} for s, d, c in sim.events],
        "capacity": sim.capacity,
        "throttled": sim.throttled,
        "settled_wcu": settled,
        "monthly_writes": settled * wcu_hour_price * hours,
        "note": (
            "the load is shorter than the two minutes a scale-out needs: auto scaling would not have acted"
            if len(demand) < 60 * SCALE_OUT_MINUTES
            else f"{len(sim.events)} scaling action(s) over the step load"
        ),
    }
