"""How a workload is wired into a loadcheck run: command-line options, signing, the ledger, the
open-model schedule. Importing :mod:`locustfiles.api` (as every workload does) imports this
module, whose Locust event listeners then do the wiring; workloads never call it themselves.

Options come from ``--loadcheck-config runs/<id>/loadconfig.json`` (``loadcheck run``) or from
plain ``locust -f`` arguments (``--host``, ``--aws-profile``, ``--region``, ``--mix`` ...). The
per-process state every user shares is :class:`LoadContext` (``environment.loadcheck``).
"""

from __future__ import annotations

from locust import events
from locust.runners import MasterRunner, WorkerRunner

import datetime as _dt
import gc
import hashlib
import json
import logging
import os
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import gevent

from loadcheck.core.errors import ConfigError
from loadcheck.core.runconfig import LoadConfig, RunOptions, parse_duration, parse_fraction, parse_mix, parse_think_time
from loadcheck.core.rundir import RunConditions, RunRecord, iso_utc, write_run
from loadcheck.core.target import Target
from locustfiles import ledgerhooks
from locustfiles.ledger_aggregator import Aggregator
from locustfiles.ledger_collector import Collector
from locustfiles.resolve import Resolve, parse_resolve
from locustfiles.shapes import ArrivalScheduler, KindPicker
from locustfiles.signing import CredentialSource, SigningContext

log = logging.getLogger("loadcheck.load")


@dataclass(kw_only=True)
class LoadContext:
    """Per-process state every user of the workload shares (``environment.loadcheck``)."""

    run_id: str
    worker: str
    worker_index: int
    options: RunOptions
    seed: int
    mix: dict[str, int]  # the weights in force: --mix, else the workload's own
    scheduler: ArrivalScheduler | None = None
    users_started: int = 0
    shared: dict[str, Any] = field(default_factory=dict)  # the workload's per-process objects


def workload_mix(environment: Any, options: RunOptions) -> dict[str, int]:
    """``--mix`` checked against the kinds the workload's user classes declare, or their own weights."""
    declared: dict[str, int] = {}
    for cls in environment.user_classes or []:
        declared.update(getattr(cls, "default_mix", lambda: {})())
    if not declared:
        raise ConfigError(
            "the workload declares no request kinds",
            hint="decorate the user's actions with @kind(weight=N) (locustfiles.api), see docs/extending.md",
        )
    if not options.mix:
        return declared
    unknown = sorted(set(options.mix) - set(declared))
    if unknown:
        raise ConfigError(
            f"--mix: the workload has no request kind {unknown[0]!r}",
            value=options.mix,
            hint=f"its kinds are {', '.join(declared)}, e.g. --mix {','.join(f'{k}={w}' for k, w in declared.items())}",
        )
    return {k: options.mix.get(k, 0) for k in declared}


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("loadcheck")
    group.add_argument("--loadcheck-config", default=None, help="run config written by `loadcheck run`")
    group.add_argument("--run-dir", default=None, help="run directory for the ledger (default runs/<run-id>)")
    group.add_argument("--run-id", default=None, help="run id (default: generated)")
    group.add_argument(
        "--resolve",
        action="append",
        default=None,
        help="DOMAIN:PORT:ADDR: connect to ADDR for DOMAIN:PORT (curl --resolve); repeatable",
    )
    group.add_argument("--aws-profile", default=None, help="AWS profile for signing (default: the credential chain)")
    group.add_argument("--region", default=None, help="region to sign for (default: AWS_REGION / the profile's)")
    group.add_argument("--ca-bundle", default=None, help="CA bundle to verify the API's certificate")
    group.add_argument(
        "--mix", default=None, help="request mix over the workload's kinds, e.g. writes=6,reads=3 (default: its own)"
    )
    # --rate, as `loadcheck run` names it; --arrival-rate is its older name (Locust has no --rate of its own)
    group.add_argument(
        "--rate",
        "--arrival-rate",
        dest="arrival_rate",
        type=float,
        default=None,
        help="open model: requests/s over all workers",
    )
    group.add_argument("--collisions", default="0", help="fraction of writes that reuse an earlier key (0..1)")
    group.add_argument(
        "--think-time", default="0.5-1.5", help="closed model: seconds between a user's actions, MIN-MAX"
    )
    group.add_argument("--seed", type=int, default=None, help="seed for the request mix and keys")


def _opt(environment: Any, name: str) -> Any:
    return getattr(environment.parsed_options, name, None) if environment.parsed_options is not None else None


def _new_run_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def _plain_options(environment: Any) -> RunOptions:
    """RunOptions from plain ``locust -f`` arguments."""
    rate = _opt(environment, "arrival_rate")
    return RunOptions(
        shape="constant-rate" if rate else "ramp",
        rate=rate,
        users=_opt(environment, "num_users") or 1,
        spawn_rate=_opt(environment, "spawn_rate") or 1,
        duration_s=parse_duration(_opt(environment, "run_time") or 3600 * 24 * 365, option="--run-time"),
        mix=parse_mix(_opt(environment, "mix")) if _opt(environment, "mix") else {},
        collisions=parse_fraction(_opt(environment, "collisions") or 0, option="--collisions"),
        think_time_s=parse_think_time(_opt(environment, "think_time") or "0.5-1.5"),
        workers=int(_opt(environment, "expect_workers") or 1)
        if _opt(environment, "master") or _opt(environment, "worker")
        else 0,
        seed=_opt(environment, "seed"),
    )


def _setup(environment: Any) -> tuple[str, Path, RunOptions, SigningContext | None]:
    """(run id, run dir, options, signing) from --loadcheck-config or the plain arguments."""
    cfg_path = _opt(environment, "loadcheck_config")
    if cfg_path:
        cfg = LoadConfig.read(cfg_path)
        target = Target.from_public(cfg.target)
        resolves: dict[tuple[str, int], Resolve] = {}
        if target.connect_address:
            port = _url_port(target.url)
            r = Resolve(target.domain, port, target.connect_address, target.connect_port)
            resolves[r.key] = r
        # The requester role, assumed by the target's caller and assumed again before it expires;
        # a target without roles (the load generator's test server) signs with the caller's keys.
        if "requester" in target.role_arns:
            creds = CredentialSource(botocore_credentials=target.role_credentials("requester"))
        else:
            creds = CredentialSource(static=target.credentials("caller"))
        signing = SigningContext(
            url=target.url,
            region=target.region,
            credentials=creds,
            ca_bundle=target.ca_bundle,
            resolves=resolves,
            timeout_s=cfg.options.request_timeout_s,
        )
        return cfg.run_id, Path(cfg.run_dir), cfg.options, signing
    run_id = _opt(environment, "run_id") or _new_run_id()
    run_dir = Path(_opt(environment, "run_dir") or Path("runs") / run_id)
    return run_id, run_dir, _plain_options(environment), None


def _url_port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _plain_signing(environment: Any) -> SigningContext:
    host = environment.host or _opt(environment, "host")
    if not host:
        raise ConfigError("no --host given", hint="pass the API's URL, e.g. --host https://events.example.com")
    profile = _opt(environment, "aws_profile")
    creds = CredentialSource.from_profile(profile)
    region = _opt(environment, "region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        region = botocore.session.Session(profile=profile).get_config_variable("region")
    if not region:
        raise ConfigError("no region to sign for", hint="pass --region us-east-1 (or set AWS_REGION)")
    resolves = {r.key: r for r in (parse_resolve(v) for v in (_opt(environment, "resolve") or []))}
    return SigningContext(
        url=host, region=region, credentials=creds, ca_bundle=_opt(environment, "ca_bundle"), resolves=resolves
    )


@events.init.add_listener
def _on_init(environment: Any, runner: Any = None, **_: Any) -> None:
    if runner is None or environment.parsed_options is None:
        return  # imported by a tool (e.g. `locust --list`), not running
    run_id, run_dir, options, signing = _setup(environment)
    environment.loadcheck_options = options
    # Refuse a --mix the workload cannot send before any user starts.
    workload_mix(environment, options)

    if isinstance(runner, MasterRunner):
        # Custom attributes of the master's parsed options travel to workers with every spawn
        # message: workers on other machines use the master's run id and options.
        environment.parsed_options.loadcheck_run_id = run_id
        environment.parsed_options.loadcheck_options_json = json.dumps(options.to_dict())
        aggregator = Aggregator(run_dir=run_dir, run_id=run_id, duration_s=options.total_duration_s)
        ledgerhooks.wire_master(environment, aggregator)
        environment.events.test_stop.add_listener(
            lambda **_: _write_plain_run_json(environment, run_dir, run_id, options)
        )
        log.info("loadcheck run %s: master writing %s", run_id, run_dir)
        return

    is_worker = isinstance(runner, WorkerRunner)
    collector = Collector(run_id=run_id, worker="local")
    state: dict[str, Any] = {}

    def on_test_start(**_: Any) -> None:
        # Workers learn their index and the master's options only now (with the spawn message).
        rid = _opt(environment, "loadcheck_run_id") or run_id
        index = max(0, int(getattr(runner, "worker_index", 0))) if is_worker else 0
        worker = f"w{index}" if is_worker else "local"
        sent = _opt(environment, "loadcheck_options_json")
        if sent:
            opts = RunOptions.from_dict(json.loads(sent))
        elif _opt(environment, "loadcheck_config"):
            opts = options
        else:
            opts = _plain_options(environment)
        seed = opts.seed if opts.seed is not None else int(hashlib.sha256(rid.encode()).hexdigest()[:8], 16)
        collector.run_id, collector.worker = rid, worker
        if "signing" not in state:
            state["signing"] = signing or _plain_signing(environment)
        environment.loadcheck_signing = state["signing"]
        mix = workload_mix(environment, opts)
        ctx = LoadContext(run_id=rid, worker=worker, worker_index=index, options=opts, seed=seed, mix=mix)
        if opts.open_model:
            n = max(1, opts.workers) if is_worker else 1
            picker = KindPicker(mix, random.Random(f"{seed}:{worker}:arrivals"))
            ctx.scheduler = ArrivalScheduler(options=opts, share=1.0 / n, picker=picker, on_done=schedule_done)
            ctx.scheduler.start()
        environment.loadcheck = ctx
        # Everything alive now (Locust, gevent, botocore, our modules) lives for the whole run:
        # keep it out of the garbage collector's scans.
        gc.freeze()
        # Each request leaves a few container objects until the ledger drain a second later;
        # young-generation scans every 10,000 allocations instead of 700 (about 0.5 % of a
        # load generator's CPU at thousands of requests/s, measured with gc.callbacks).
        gc.set_threshold(10_000, 10, 10)
        log.info("loadcheck %s %s: %s, mix %s", rid, worker, opts.shape, mix)

    def schedule_done() -> None:
        # The schedule decides when an open-model run ends (see locustfiles/shapes.py).
        if is_worker:
            runner.send_message(ledgerhooks.MSG_DONE, None)
        else:
            log.info("the arrival schedule is over: stopping the run")
            gevent.spawn(runner.quit)

    def on_tick() -> None:
        ctx = getattr(environment, "loadcheck", None)
        if ctx is not None and ctx.scheduler is not None:
            collector.add_dropped(ctx.scheduler.take_dropped())
        if ctx is not None:
            idle = ctx.scheduler.idle if ctx.scheduler is not None else None
            collector.set_users(runner.user_count, idle)

    def on_stop() -> None:
        ctx = getattr(environment, "loadcheck", None)
        if ctx is not None and ctx.scheduler is not None:
            ctx.scheduler.stop()

    environment.events.test_start.add_listener(on_test_start)  # first: the wiring below relies on it
    if is_worker:
        ledgerhooks.wire_worker(environment, collector, on_tick=on_tick, on_stop=on_stop)
    else:
        aggregator = Aggregator(run_dir=run_dir, run_id=run_id, duration_s=options.total_duration_s)

        def tick_and_stop() -> None:
            on_tick()

        ledgerhooks.wire_local(environment, collector, aggregator, on_tick=tick_and_stop)
        environment.events.test_stopping.add_listener(lambda **_: on_stop())
        environment.events.test_stop.add_listener(
            lambda **_: _write_plain_run_json(environment, run_dir, run_id, options)
        )


def _write_plain_run_json(environment: Any, run_dir: Path, run_id: str, options: RunOptions) -> None:
    """Plain ``locust -f`` runs get a minimal run.json; ``loadcheck run`` writes its own."""
    if _opt(environment, "loadcheck_config") or (run_dir / "run.json").exists():
        return
    loadgen = json.loads((run_dir / "loadgen.json").read_text()) if (run_dir / "loadgen.json").exists() else {}
    write_run(
        run_dir,
        RunRecord(
            run_id=run_id,
            status="complete",
            target={"kind": "external", "url": environment.host},
            options=options.to_dict(),
            conditions=RunConditions(
                faults=dict(options.faults), collisions=options.collisions, shape=options.shape, mix=dict(options.mix)
            ),
            started_at=iso_utc(loadgen.get("started_at")),
            ended_at=iso_utc(loadgen.get("ended_at")),
            dropped_arrivals=int(loadgen.get("dropped_arrivals", 0)),
            ledger_records=loadgen.get("ledger_records"),
            locust=loadgen.get("locust", {}),
            workers=loadgen.get("workers", {}),
        ),
    )
