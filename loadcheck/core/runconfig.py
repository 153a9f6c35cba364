"""The options of one load run, parsed and validated in one place.

``RunOptions`` is built once (by ``loadcheck run``, or from the JSON config file the locustfile
reads) and passed down; nothing reads options from globals. Every parse error is a
:class:`~loadcheck.core.errors.ConfigError` that names the option, the bad value and the fix, e.g.::

    --duration: '60 sec' is not a duration
      fix: write a number with a unit: 45s, 2m, 1m30s, 1h (a bare number means seconds)

Defaults are what ``make run`` (plain ``loadcheck run``) uses: a 45 s open-model run at 16
arrivals/s with the workload's own mix (the reference workload's is writes-heavy, so that writes
outrun the default table's 1 WCU plus its full 300 s burst bucket within the run: see
locustfiles/eventlog.py). Nothing here knows the API: route keys are checked against the stack
description's routes (:func:`check_routes`), request kinds against the workload's (at load start).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core import faults as fault_registry
from loadcheck.core.description import ROUTE_KEY
from loadcheck.core.errors import ConfigError

SHAPES = ("constant-rate", "step", "ramp")
TARGETS = ("local", "aws")
# A request kind's name in --mix: the workload declares its kinds (locustfiles/api.py ``kind``).
KIND_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
DEFAULT_MAX_SERVER_ERROR_RATE = 0.01
DEFAULT_SERVER_ERROR_THRESHOLD = "server_error_rate<=1%"  # loadcheck.core.thresholds.DEFAULT_SERVER_ERROR
DEFAULT_RATE = 16.0
DEFAULT_DURATION_S = 45.0
ALL_ROUTES = "all"  # a threshold's route that stands for every request together

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | float | int, *, option: str = "--duration") -> float:
    """``45s``, ``2m``, ``1m30s``, ``1h``, ``250ms`` or a bare number of seconds -> seconds (> 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION_PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT_S[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise ConfigError(
                    f"{option}: {value!r} is not a duration",
                    value=value,
                    hint="write a number with a unit: 45s, 2m, 1m30s, 1h (a bare number means seconds)",
                ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{option}: {value!r} must be longer than zero", value=value, hint="e.g. 45s or 2m")
    return seconds


def parse_mix(value: str | dict[str, Any]) -> dict[str, int]:
    """``writes=6,reads=3,search=1`` -> weights; the workload's kinds not named get weight 0.

    The names are checked against the workload's kinds when the load starts (the workload, not
    loadcheck, declares them)."""
    if isinstance(value, dict):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        pairs = []
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, weight = part.partition("=")
            if not sep:
                raise ConfigError(
                    f"--mix: {part!r} has no weight",
                    value=value,
                    hint="write KIND=WEIGHT pairs, e.g. --mix writes=6,reads=3,search=1",
                )
            pairs.append((name.strip(), weight.strip()))
    mix: dict[str, int] = {}
    for name, weight in pairs:
        if not KIND_NAME.fullmatch(name):
            raise ConfigError(
                f"--mix: {name!r} is not a request kind name",
                value=value,
                hint="kinds are the names the workload declares (letters, digits, '_', '-'), e.g. --mix writes=6,reads=3",
            )
        try:
            w = int(weight)
        except (TypeError, ValueError):
            raise ConfigError(
                f"--mix: weight of {name} is {weight!r}, not a whole number",
                value=value,
                hint="weights are whole numbers >= 0, e.g. writes=6",
            ) from None
        if w < 0:
            raise ConfigError(f"--mix: weight of {name} is {w}, below zero", value=value, hint="weights are >= 0")
        mix[name] = w
    if sum(mix.values()) == 0:
        raise ConfigError(
            f"--mix: {value!r} gives every kind weight 0",
            value=value,
            hint="give at least one kind a weight above 0, e.g. --mix writes=1",
        )
    return mix


def parse_fault(value: str) -> tuple[str, Any]:
    """``NAME=VALUE`` (``drop-writes=0.1``, ``ddb-latency=200ms``) -> (name, canonical value).

    The fault registry parses and validates it, so ``loadcheck run`` refuses a bad value before
    it starts a stack or any load.
    """
    return fault_registry.parse_fault(value, option="--fault")


def parse_route_ms(value: str, *, option: str = "--max-p95-ms") -> tuple[str, float]:
    """``'POST /events=500'`` or ``all=800`` -> (route, ms)."""
    route, sep, ms = str(value).rpartition("=")
    route = " ".join(route.split())
    if not sep or not route:
        raise ConfigError(
            f"{option}: {value!r} is not ROUTE=MS",
            value=value,
            hint=f"e.g. {option} 'POST /events=500' or {option} all=800",
        )
    if route.lower() == ALL_ROUTES:
        route = ALL_ROUTES
    elif not ROUTE_KEY.fullmatch(route):
        raise ConfigError(
            f"{option}: {route!r} is not a route key",
            value=value,
            hint=f"write METHOD /path as in the stack description, or {ALL_ROUTES!r}; quote it: 'POST /events=500'",
        )
    try:
        limit = float(ms)
    except ValueError:
        raise ConfigError(
            f"{option}: {ms!r} is not a number of milliseconds", value=value, hint="e.g. 'POST /events=500'"
        ) from None
    if not math.isfinite(limit) or limit <= 0:
        raise ConfigError(f"{option}: {ms!r} must be above 0", value=value, hint="e.g. 'POST /events=500'")
    return route, limit


def check_routes(named: Iterable[str], routes: tuple[str, ...] | list[str], *, option: str = "--threshold") -> None:
    """Every route a threshold names (``named``) is one of the stack description's ``routes`` (or ``all``)."""
    for route in named:
        if route != ALL_ROUTES and route not in routes:
            raise ConfigError(
                f"{option}: {route!r} is not a route of the stack description",
                value=route,
                hint=f"routes are {', '.join(routes)} or {ALL_ROUTES!r}; add the route to the description first",
            )


def parse_steps(value: str) -> tuple[float, ...]:
    """``1,2,5,10`` -> arrival rates (req/s), each > 0."""
    steps = []
    for part in str(value).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            rate = float(part)
        except ValueError:
            raise ConfigError(
                f"--steps: {part!r} is not a rate",
                value=value,
                hint="list arrival rates in requests/s, e.g. --steps 1,2,5,10",
            ) from None
        if not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"--steps: {part!r} must be above 0", value=value, hint="e.g. --steps 1,2,5,10")
        steps.append(rate)
    if not steps:
        raise ConfigError(f"--steps: {value!r} lists no rate", value=value, hint="e.g. --steps 1,2,5,10")
    return tuple(steps)


def parse_fraction(value: str | float, *, option: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{option}: {value!r} is not a number", value=value, hint=f"a fraction from 0 to 1, e.g. {option} 0.05"
        ) from None
    if not (0.0 <= x <= 1.0):
        raise ConfigError(
            f"{option}: {value!r} is outside 0..1", value=value, hint=f"a fraction from 0 to 1, e.g. {option} 0.05"
        )
    return x


def parse_think_time(value: str) -> tuple[float, float]:
    """``0.5-2`` or ``1`` (seconds) -> (min, max) wait between a closed-model user's requests."""
    low, sep, high = str(value).partition("-")
    try:
        lo = float(low)
        hi = float(high) if sep else lo
    except ValueError:
        raise ConfigError(
            f"--think-time: {value!r} is not MIN-MAX seconds", value=value, hint="e.g. --think-time 0.5-2"
        ) from None
    if lo < 0 or hi < lo:
        raise ConfigError(f"--think-time: {value!r} needs 0 <= MIN <= MAX", value=value, hint="e.g. --think-time 0.5-2")
    return lo, hi


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Everything that decides what a run sends. Recorded in run.json as ``options``."""

    target: str = "local"
    duration_s: float = DEFAULT_DURATION_S
    shape: str = "constant-rate"
    rate: float | None = DEFAULT_RATE  # constant-rate: arrivals/s over all workers
    users: int | None = None  # ramp: users; open model: the pool of users arrivals go to
    spawn_rate: float | None = None  # ramp: users started per second
    steps: tuple[float, ...] = ()  # step: arrival rates
    step_duration_s: float | None = None
    mix: dict[str, int] = field(default_factory=dict)  # empty: the workload's own weights
    think_time_s: tuple[float, float] = (0.5, 1.5)  # closed model (ramp) only
    workers: int = 0  # 0: one process; N: a master and N local worker processes
    seed: int | None = None
    collisions: float = 0.0  # fraction of writes that reuse an earlier key on purpose (expect 409)
    faults: dict[str, Any] = field(default_factory=dict)
    # The run's thresholds as loadcheck.core.thresholds writes them ("POST /events:p99<300ms").
    # The default judges 5xx and requests that got no response at all: a load test of this
    # stack expects 429s (judged by the throttling check) and 409s, never server errors.
    thresholds: tuple[str, ...] = (DEFAULT_SERVER_ERROR_THRESHOLD,)
    abort_on_fail: bool = False  # stop the load once a threshold can no longer pass
    request_timeout_s: float = 35.0  # above the API's 30 s integration timeout
    # The stack description the run is judged by (None: the reference stack's) and the workload
    # that sends the load (None: the reference workload, locustfiles/eventlog.py); absolute paths.
    description: str | None = None
    locustfile: str | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ConfigError(
                f"--target: {self.target!r} is not a target", value=self.target, hint=f"use one of {', '.join(TARGETS)}"
            )
        if self.shape not in SHAPES:
            raise ConfigError(
                f"--shape: {self.shape!r} is not a shape", value=self.shape, hint=f"use one of {', '.join(SHAPES)}"
            )
        if self.shape == "constant-rate" and (self.rate is None or not self.rate > 0):
            raise ConfigError(
                f"--rate: {self.rate!r} must be above 0 for --shape constant-rate",
                value=self.rate,
                hint="e.g. --rate 16 (requests per second over all workers)",
            )
        if self.shape == "ramp" and (self.users is None or self.users < 1):
            raise ConfigError(
                f"--users: {self.users!r} must be at least 1 for --shape ramp",
                value=self.users,
                hint="e.g. --shape ramp --users 20 --spawn-rate 2",
            )
        if self.users is not None and self.users < 1:
            raise ConfigError(f"--users: {self.users} must be at least 1", value=self.users, hint="e.g. --users 20")
        if self.spawn_rate is not None and not self.spawn_rate > 0:
            raise ConfigError(
                f"--spawn-rate: {self.spawn_rate} must be above 0", value=self.spawn_rate, hint="e.g. --spawn-rate 2"
            )
        if self.shape == "step" and (not self.steps or not self.step_duration_s):
            raise ConfigError(
                "--shape step needs --steps and --step-duration",
                value=self.steps,
                hint="e.g. --shape step --steps 1,2,5,10 --step-duration 10s",
            )
        if self.workers < 0:
            raise ConfigError(
                f"--workers: {self.workers} is below 0",
                value=self.workers,
                hint="0 runs in one process; N starts a master and N workers",
            )
        # A run config file may carry faults too: same registry, same canonical values.
        object.__setattr__(
            self, "faults", {name: fault_registry.validate(name, value) for name, value in self.faults.items()}
        )
        if not 0.0 <= self.collisions <= 1.0:
            raise ConfigError(
                f"--collisions: {self.collisions} is outside 0..1", value=self.collisions, hint="e.g. --collisions 0.05"
            )

    # ----------------------------------------------------------------------------------------
    @property
    def open_model(self) -> bool:
        return self.shape in ("constant-rate", "step")

    @property
    def total_duration_s(self) -> float:
        """How long the load runs: the step plan decides for ``step``, ``--duration`` otherwise."""
        if self.shape == "step" and self.step_duration_s:
            return self.step_duration_s * len(self.steps)
        return self.duration_s

    @property
    def peak_rate(self) -> float:
        if self.shape == "step":
            return max(self.steps)
        return float(self.rate or 0.0)

    def pool_size(self) -> int:
        """Users an open-model run keeps ready for arrivals (all workers together).

        Enough for each arrival to wait up to 4 s for its response at the peak rate before an
        arrival finds no free user and counts as dropped; ``--users`` overrides it.
        """
        if self.users:
            return self.users
        return max(8, math.ceil(self.peak_rate * 4))

    def segments(self) -> list[tuple[float, float, float]]:
        """The schedule as (start s, end s, rate) pieces of constant rate."""
        if self.shape == "step" and self.step_duration_s:
            d = self.step_duration_s
            return [(i * d, (i + 1) * d, float(r)) for i, r in enumerate(self.steps)]
        return [(0.0, self.total_duration_s, float(self.rate or 0.0))]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["steps"] = list(self.steps)
        data["think_time_s"] = list(self.think_time_s)
        data["thresholds"] = list(self.thresholds)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(
                f"run options have unknown keys: {', '.join(sorted(unknown))}",
                value=sorted(unknown),
                hint="the config file was written by another version of loadcheck; rerun `loadcheck run`",
            )
        kw = dict(data)
        if "steps" in kw:
            kw["steps"] = tuple(float(s) for s in kw["steps"])
        if "think_time_s" in kw:
            kw["think_time_s"] = tuple(float(s) for s in kw["think_time_s"])
        if "thresholds" in kw:
            kw["thresholds"] = tuple(str(t) for t in kw["thresholds"])
        return cls(**kw)


@dataclass(frozen=True, kw_only=True)
class LoadConfig:
    """What the locustfile needs from ``loadcheck run``: written as JSON, read with ``--loadcheck-config``.

    ``target`` is ``Target.to_public()`` (no secrets: credentials are read from the named file
    or the AWS credential chain in the load process itself).
    """

    run_id: str
    run_dir: str
    options: RunOptions
    target: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(
            {"run_id": self.run_id, "run_dir": self.run_dir, "options": self.options.to_dict(), "target": self.target},
            indent=2,
            sort_keys=True,
        )

    @classmethod
    def read(cls, path: str | Path) -> LoadConfig:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            return cls(
                run_id=data["run_id"],
                run_dir=data["run_dir"],
                options=RunOptions.from_dict(data["options"]),
                target=data["target"],
            )
        except FileNotFoundError:
            raise ConfigError(
                f"--loadcheck-config: {p} does not exist",
                value=str(p),
                hint="pass the file `loadcheck run` wrote (runs/<id>/loadconfig.json)",
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"--loadcheck-config: {p} is not a loadcheck load config ({exc})",
                value=str(p),
                hint="pass the file `loadcheck run` wrote (runs/<id>/loadconfig.json)",
            ) from None
