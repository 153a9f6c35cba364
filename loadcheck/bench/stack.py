"""``POST /events`` end to end through the full local stack, with the CPU split per process.

Starts the local stack from a copy of the stack description whose table is PAY_PER_REQUEST and
whose stage throttle is 10,000 rps (so neither capacity nor a throttle setting is measured),
initialises the events function's environments, then drives signed ``POST /events`` with unique
keys from ``connections`` threads, each holding one keep-alive TLS connection. Reports
requests/s, p50/p90/p99 (HDR, from before signing to the last body byte), statuses, and the CPU
seconds each part used over the measured interval: the gateway, the Lambda service with its
execution environments, the aws endpoint (moto + governor), and this load-generating process.

Then, in the same run on the same stack, the same threads drive the same PutItems straight at the
aws endpoint (boto3, one keep-alive client per thread, no gateway or Lambda): that rate is the
denominator of "the full stack serves >= 0.85 of what its database alone serves".

:func:`run_soak` is the memory soak of ``loadcheck bench gateway --soak``: the same requests,
paced at a fixed rate for minutes, with the RSS of each service process over time.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from hdrh.histogram import HdrHistogram

from loadcheck.bench.client import PinnedHTTPSConnection, summarize
from loadcheck.bench.profiling import Profiles
from loadcheck.core.description import DEFAULT_DESCRIPTION, load_description
from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import Signer
from loadcheck.core.target import Target
from reference_stack.local import supervisor


def _cpu(procs: list[Any]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # noqa: BLE001, S112 - a process that exited has no more CPU to count
            continue
    return total


def _item(i: int, n: int) -> dict[str, str]:
    """The n-th event of thread i: a unique key per request, as a user's POST /events body."""
    ms = n % 86_400_000
    return {
        "date": f"{2000 + i:04d}-01-01",
        "time": f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}",
        "userId": f"bench-{i}",
        "eventType": "bench",
    }


def put_items_alone(target: Target, *, connections: int, duration_s: float, warmup_s: float = 1.0) -> dict[str, Any]:
    """PutItems of the same shape straight at the aws endpoint from ``connections`` threads."""
    hists = [HdrHistogram(1, 60_000_000, 3) for _ in range(connections)]
    statuses: list[Counter[int]] = [Counter() for _ in range(connections)]
    errors: list[str] = []
    clients = [target.client("dynamodb", "admin", max_pool_connections=1) for _ in range(connections)]
    start = time.monotonic()
    measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s

    def worker(i: int) -> None:
        n = 10_000_000  # other keys than the POST /events phase wrote
        while (t0 := time.monotonic()) < stop_at:
            n += 1
            item = {k: {"S": v} for k, v in _item(i, n).items()}
            try:
                clients[i].put_item(TableName=target.table_name, Item=item)
            except Exception as exc:  # noqa: BLE001 - a bench counts failures, it does not stop
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if t0 >= measure_from:
                hists[i].record_value(max(1, int((time.monotonic() - t0) * 1_000_000)))
                statuses[i][200] += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    while time.monotonic() < measure_from:
        time.sleep(0.05)  # waiting out the warm-up
    wall0 = time.monotonic()
    for t in threads:
        t.join()
    return {"route": "PutItem at the aws endpoint alone", "connections": connections} | summarize(
        hists, statuses, errors, time.monotonic() - wall0
    )


@contextlib.contextmanager
def bench_stack(connections: int) -> Iterator[tuple[Target, dict[str, Any]]]:
    """The local stack from a PAY_PER_REQUEST, 10,000 rps copy of the description, with
    ``connections`` events environments initialised; stopped on exit. Yields (target, stack.json)."""
    with tempfile.TemporaryDirectory(prefix="lc-bench-") as tmp:
        desc = json.loads(DEFAULT_DESCRIPTION.read_text())
        desc["table"]["billing_mode"] = "PAY_PER_REQUEST"
        desc["throttle"] = {"rate_limit": 10000, "burst_limit": 5000}
        # The copy lives elsewhere: its handlers are still the reference ones (handlers_dir is
        # relative to the description file unless absolute).
        desc["handlers_dir"] = str(load_description().handlers_dir)
        desc_path = Path(tmp) / "stack.auto.tfvars.json"
        desc_path.write_text(json.dumps(desc))
        state_dir = Path(tmp) / "state"
        stack = supervisor.start_detached(state_dir, description=str(desc_path))
        try:
            target = Target.from_stack_json(stack, state_dir)
            supervisor.prewarm(state_dir, {target.function_names["events"]: connections})
            yield target, stack
        finally:
            supervisor.stop_stack(state_dir)


class _EventPoster:
    """One keep-alive connection sending signed ``POST /events``; a failed request replaces it."""

    def __init__(self, target: Target, ctx: ssl.SSLContext, signer: Signer, creds: Any) -> None:
        self.target, self.ctx, self.signer, self.creds = target, ctx, signer, creds
        self.host = f"{target.domain}:{target.connect_port}"
        self.conn = self._connect()

    def _connect(self) -> PinnedHTTPSConnection:
        return PinnedHTTPSConnection(self.target.connect_port, self.ctx, 35, domain=self.target.domain)

    def post(self, item: dict[str, Any]) -> int | str:
        """The answer's status, or the failure as text (the connection is then replaced)."""
        body = json.dumps(item).encode()
        headers = self.signer.sign(
            self.creds, "POST", self.host, "/events", "", {"content-type": "application/json"}, body
        )
        headers["content-type"] = "application/json"
        try:
            self.conn.request("POST", "/events", body=body, headers=headers)
            resp = self.conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = self._connect()
            return f"{type(exc).__name__}: {exc}"
        return resp.status

    def close(self) -> None:
        self.conn.close()


def run_post_events_bench(
    *, connections: int = 8, duration_s: float = 10.0, warmup_s: float = 3.0, profile_dir: Path | None = None
) -> dict[str, Any]:
    with bench_stack(connections) as (target, stack):
        creds = target.credentials("requester")
        ctx = ssl.create_default_context(cafile=target.ca_bundle)
        signer = Signer("execute-api", target.region)
        pids = {name: svc["pid"] for name, svc in stack["services"].items()}
        start = time.monotonic()
        measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s
        hists = [HdrHistogram(1, 60_000_000, 3) for _ in range(connections)]
        statuses: list[Counter[int]] = [Counter() for _ in range(connections)]
        errors: list[str] = []

        def worker(i: int) -> None:
            poster = _EventPoster(target, ctx, signer, creds)
            n = 0
            while (t0 := time.monotonic()) < stop_at:
                n += 1
                answer = poster.post(_item(i, n))
                if isinstance(answer, str):
                    errors.append(answer)
                    continue
                if t0 >= measure_from:
                    hists[i].record_value(max(1, int((time.monotonic() - t0) * 1_000_000)))
                    statuses[i][answer] += 1
            poster.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
        for t in threads:
            t.start()
        while time.monotonic() < measure_from:
            time.sleep(0.05)
        lam = psutil.Process(pids["lambda"])
        groups = {
            "gateway": [psutil.Process(pids["gateway"])],
            "lambda service + environments": [lam, *lam.children(recursive=True)],
            "aws endpoint (moto + governor)": [psutil.Process(pids["aws"])],
            "search service": [psutil.Process(pids["search"])],
            "load generator (this process)": [psutil.Process()],
        }
        cpu0 = {k: _cpu(v) for k, v in groups.items()}
        envs = groups["lambda service + environments"][1:]  # prewarmed: they run all along
        envs_cpu0 = _cpu(envs)
        profiles = Profiles(profile_dir / "post-events") if profile_dir else None
        if profiles:
            profiles.start({k: pids[k] for k in ("gateway", "lambda", "aws")}, duration_s)
        wall0 = time.monotonic()
        for t in threads:
            t.join()
        wall = time.monotonic() - wall0
        groups["lambda service + environments"] = [lam, *lam.children(recursive=True)]
        cpu = {k: round(_cpu(v) - cpu0[k], 2) for k, v in groups.items()}
        envs_cpu = _cpu(envs) - envs_cpu0
        profiled = profiles.wait() if profiles else []
        alone = put_items_alone(target, connections=connections, duration_s=duration_s)
    result = summarize(hists, statuses, errors, wall)
    n = result["requests"]
    cpu_sum = sum(cpu.values()) or 1.0
    return (
        {"route": "POST /events", "connections": connections}
        | result
        | {
            "cpu_s": cpu,
            "cpu_share": {k: round(v / cpu_sum, 3) for k, v in cpu.items()},
            "cpu_ms_per_request": {k: round(1000 * v / n, 2) for k, v in cpu.items()} if n else {},
            # The Lambda group's split: the service process (Invoke API, Runtime APIs, log
            # shipping) and the awslambdaric environments (runtime client + handler + boto3).
            "lambda_cpu_ms_per_request": {
                "service process": round(1000 * (cpu["lambda service + environments"] - envs_cpu) / n, 2),
                "environments": round(1000 * envs_cpu / n, 2),
            }
            if n
            else {},
            "aws_alone": alone,
            "share_of_aws_alone": round(result["requests_per_s"] / alone["requests_per_s"], 3)
            if alone["requests_per_s"]
            else None,
            "profiles": profiled,
        }
    )


# The memory goal of the soak: each service's RSS at the end within 10 % of its RSS after the
# first minute (docs/load.md "Benchmarks").
SOAK_FIRST_S = 60.0
SOAK_GOAL_RATIO = 1.10
SERVICES = ("gateway", "lambda", "aws", "search")


def _rss(pids: dict[str, int], envs_of: psutil.Process | None) -> dict[str, int | None]:
    """RSS in bytes of each service process (None once it is gone), and of the environments together."""
    out: dict[str, int | None] = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            out[name] = None
    if envs_of is not None:
        total = 0
        with contextlib.suppress(psutil.Error):
            for child in envs_of.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
        out["lambda environments (together)"] = total
    return out


def run_soak(
    *,
    duration_s: float,
    rate: float,
    connections: int = 8,
    sample_s: float = 10.0,
    first_s: float = SOAK_FIRST_S,
) -> dict[str, Any]:
    """Signed ``POST /events`` through the full local stack at ``rate`` requests/s for ``duration_s``.

    Requests are paced open-loop (request k is due at start + k/rate; a request found late is
    sent at once and counted in ``late``), from ``connections`` threads with one keep-alive TLS
    connection each. Every ``sample_s`` the RSS of each service process is recorded; the figure is
    each service's RSS at the end over its RSS after ``first_s`` (a minute; goal <= 1.10). The aws
    endpoint keeps every item and log event written, so its RSS grows with the data it holds.
    """
    if duration_s <= first_s or rate <= 0 or connections < 1:
        raise ConfigError(
            f"bad soak options duration={duration_s:g} s rate={rate:g} connections={connections}",
            value=(duration_s, rate, connections),
            hint=f"use --soak longer than {first_s:g} s (e.g. 10m), --rate > 0, --connections >= 1",
        )
    with bench_stack(connections) as (target, stack):
        creds = target.credentials("requester")
        ctx = ssl.create_default_context(cafile=target.ca_bundle)
        signer = Signer("execute-api", target.region)
        pids = {name: stack["services"][name]["pid"] for name in SERVICES if name in stack["services"]}
        lam = psutil.Process(pids["lambda"])
        tickets = itertools.count()
        start = time.monotonic()
        stop_at = start + duration_s
        statuses: Counter[int] = Counter()
        errors: list[str] = []
        late = [0] * connections
        lock = threading.Lock()

        def worker(i: int) -> None:
            poster = _EventPoster(target, ctx, signer, creds)
            while True:
                k = next(tickets)
                due = start + k / rate
                if due >= stop_at:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(wait)  # pacing: the request is not due yet
                else:
                    late[i] += 1
                answer = poster.post(_item(i, k))
                with lock:
                    if isinstance(answer, str):
                        errors.append(answer)
                    else:
                        statuses[answer] += 1
            poster.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
        for t in threads:
            t.start()
        samples: list[dict[str, Any]] = []
        first: dict[str, int | None] | None = None
        next_sample = start
        while any(t.is_alive() for t in threads):
            now = time.monotonic()
            if now >= next_sample:
                rss = _rss(pids, lam)
                samples.append({"t_s": round(now - start, 1), "rss": rss})
                if first is None and now - start >= first_s:
                    first = rss
                next_sample += sample_s
            time.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))  # until the next sample
        for t in threads:
            t.join()
        wall = time.monotonic() - start
        end = _rss(pids, lam)
        samples.append({"t_s": round(wall, 1), "rss": end})
    first = first or samples[0]["rss"]
    done = sum(statuses.values())
    ratios: dict[str, float | None] = {}
    for name, last in end.items():
        base = first.get(name)
        ratios[name] = round(last / base, 3) if base and last is not None else None
    return {
        "bench": "soak",
        "route": "POST /events",
        "connections": connections,
        "rate_asked": rate,
        "duration_s": round(wall, 1),
        "requests": done,
        "rate_sustained": round(done / wall, 1) if wall else 0.0,
        "late": sum(late),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": len(errors),
        "first_errors": errors[:3],
        "rss_mb_first_minute": {k: _mb(v) for k, v in first.items()},
        "rss_mb_end": {k: _mb(v) for k, v in end.items()},
        "rss_ratio": ratios,
        "first_s": first_s,
        "goal_ratio": SOAK_GOAL_RATIO,
        "met": {k: (v <= SOAK_GOAL_RATIO if v is not None else None) for k, v in ratios.items()},
        "samples": [{"t_s": s["t_s"], "rss_mb": {k: _mb(v) for k, v in s["rss"].items()}} for s in samples],
    }


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 1048576, 1)
