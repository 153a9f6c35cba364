"""``loadcheck bench aws``: what the DynamoDB capacity governor costs, against moto alone.

One run starts the aws service twice on 127.0.0.1 (``python -m reference_stack.local.aws``):
once with the governor (config ``governor: true``) and once serving moto unchanged
(``governor: false``). Against each, ``--threads`` client threads (one boto3 client and one
keep-alive connection pool each) drive a fixed count of PutItem / GetItem / Query calls in
turn on a PAY_PER_REQUEST table, each thread on its own partition key, so nothing throttles:
the figures are the governor's overhead, not its throttling. Reported per mode: requests/s,
latency p50/p99 (client side, milliseconds), and the ratio governed / direct throughput
(target >= 0.85).

The client threads share this process's GIL and the machine's cores with the service; both
modes pay that equally, so the ratio is the figure to read, not the absolute rate.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import click
import psutil
from botocore.config import Config

from loadcheck.core.errors import ConfigError
from loadcheck.params import output_options, write_figures
from reference_stack.local.common import configs
from reference_stack.local.common.launcher import ServiceProcess

REGION = "us-east-1"
TABLE = "BenchEvents"
OPS = ("PutItem", "GetItem", "Query")


@contextmanager
def aws_service(workdir: Path, *, governor: bool, keep_alive: bool) -> Iterator[tuple[str, int]]:
    """Run the aws service process (governor and keep-alive on or off); yields its URL and pid, stops it after."""
    ready = workdir / f"aws-{os.getpid()}-{time.monotonic_ns()}.ready"
    base = configs.ServiceBase(region=REGION, log_level="WARNING")
    proc = ServiceProcess.for_service(
        "aws",
        configs.aws_config(base, ready_file=ready, governor=governor, keep_alive=keep_alive),
        config_path=ready.with_suffix(".json"),
    )
    try:
        port = proc.launch(60)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.stop()


def _client(url: str, threads: int) -> Any:
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="AKIDBENCH",
        aws_secret_access_key="bench-not-a-secret",  # noqa: S106 (moto checks no signatures)
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=threads + 2),
    )


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def drive(url: str, *, threads: int, requests: int, pid: int | None = None) -> dict[str, Any]:
    """Create the table and drive ``requests`` calls from ``threads`` threads; return the figures.

    With ``pid`` (the service's), also the service's CPU time per request: on a shared machine
    that is steadier than throughput, which moves with everyone else's load.
    """
    setup = _client(url, 1)
    setup.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "date", "KeyType": "HASH"}, {"AttributeName": "time", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "date", "AttributeType": "S"},
            {"AttributeName": "time", "AttributeType": "S"},
        ],
    )
    per_thread = max(1, requests // threads)
    latencies: dict[str, list[float]] = {op: [] for op in OPS}
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(threads + 1)

    def worker(n: int) -> None:
        ddb = _client(url, 1)
        date = f"bench-{n}"
        for i in range(5):  # warm the connection and the partition
            ddb.put_item(TableName=TABLE, Item={"date": {"S": date}, "time": {"S": f"warm-{i}"}})
        mine: dict[str, list[float]] = {op: [] for op in OPS}
        start_gate.wait()
        for i in range(per_thread):
            op = OPS[i % len(OPS)]
            t0 = time.perf_counter()
            try:
                if op == "PutItem":
                    ddb.put_item(
                        TableName=TABLE, Item={"date": {"S": date}, "time": {"S": f"{i:08d}"}, "body": {"S": "x" * 200}}
                    )
                elif op == "GetItem":
                    ddb.get_item(TableName=TABLE, Key={"date": {"S": date}, "time": {"S": f"{i - 1:08d}"}})
                else:
                    ddb.query(
                        TableName=TABLE,
                        KeyConditionExpression="#d = :d",
                        Limit=10,
                        ExpressionAttributeNames={"#d": "date"},
                        ExpressionAttributeValues={":d": {"S": date}},
                    )
            except Exception as exc:  # a bench reports failures, it does not stop at the first
                with lock:
                    errors.append(f"{op}: {exc}")
                continue
            mine[op].append((time.perf_counter() - t0) * 1000)
        with lock:
            for op in OPS:
                latencies[op].extend(mine[op])

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for thread in pool:
        thread.start()
    server = psutil.Process(pid) if pid else None
    start_gate.wait()
    t0 = time.perf_counter()
    cpu0 = sum(server.cpu_times()[:2]) if server else 0.0
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - t0
    cpu = sum(server.cpu_times()[:2]) - cpu0 if server else None
    every = sorted(v for values in latencies.values() for v in values)
    out: dict[str, Any] = {
        "requests": len(every),
        "errors": len(errors),
        "error_examples": errors[:3],
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(every) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(_percentile(every, 0.50), 2),
        "p99_ms": round(_percentile(every, 0.99), 2),
        "ops": {},
        "server_cpu_ms_per_request": round(cpu * 1000 / len(every), 3) if cpu is not None and every else None,
    }
    for op, values in latencies.items():
        values.sort()
        out["ops"][op] = {
            "count": len(values),
            "p50_ms": round(_percentile(values, 0.5), 2),
            "p99_ms": round(_percentile(values, 0.99), 2),
        }
    return out


def run_bench(*, threads: int, requests: int, rounds: int = 3, keep_alive: bool = True) -> dict[str, Any]:
    """Direct moto and moto behind the governor, alternating for ``rounds`` rounds (a fresh process each).

    The machine is shared, so one pair of runs can differ by chance; alternating the modes and
    taking each mode's median round evens out load that comes and goes.
    """
    results: dict[str, Any] = {
        "threads": threads,
        "requests": requests,
        "rounds": rounds,
        "keep_alive": keep_alive,
        "modes": {},
        "ratios": [],
    }
    runs: dict[str, list[dict[str, Any]]] = {"direct": [], "governor": []}
    with tempfile.TemporaryDirectory(prefix="loadcheck-bench-aws-") as tmp:
        for _ in range(rounds):
            for mode, governor in (("direct", False), ("governor", True)):
                with aws_service(Path(tmp), governor=governor, keep_alive=keep_alive) as (url, pid):
                    runs[mode].append(drive(url, threads=threads, requests=requests, pid=pid))
            direct, governed = runs["direct"][-1]["requests_per_s"], runs["governor"][-1]["requests_per_s"]
            results["ratios"].append(round(governed / direct, 3) if direct else None)
    for mode, figures in runs.items():
        ordered = sorted(figures, key=lambda f: f["requests_per_s"])
        results["modes"][mode] = {
            **ordered[len(ordered) // 2],
            "rounds_requests_per_s": [f["requests_per_s"] for f in figures],
        }
    direct = results["modes"]["direct"]["requests_per_s"]
    governed = results["modes"]["governor"]["requests_per_s"]
    results["ratio"] = round(governed / direct, 3) if direct else None
    cpu = {mode: sorted(f["server_cpu_ms_per_request"] for f in figures) for mode, figures in runs.items()}
    results["cpu_ratio"] = round(cpu["direct"][len(cpu["direct"]) // 2] / cpu["governor"][len(cpu["governor"]) // 2], 3)
    results["target_ratio"] = 0.85
    return results


def render(result: dict[str, Any]) -> str:
    lines = [
        f"aws bench: {result['threads']} threads, {result['requests']} requests per mode and round, "
        f"median of {result['rounds']} alternating rounds "
        f"(PutItem/GetItem/Query in turn, PAY_PER_REQUEST, keep-alive {'on' if result['keep_alive'] else 'off'})",
        f"{'mode':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/req':>10} {'errors':>7}   per op p50/p99 ms",
    ]
    for mode, figures in result["modes"].items():
        per_op = "  ".join(f"{op} {v['p50_ms']}/{v['p99_ms']}" for op, v in figures["ops"].items())
        lines.append(
            f"{mode:<10} {figures['requests_per_s']:>8} {figures['p50_ms']:>8} {figures['p99_ms']:>8} "
            f"{figures['server_cpu_ms_per_request']!s:>10} {figures['errors']:>7}   {per_op}"
        )
    verdict = "meets" if (result["ratio"] or 0) >= result["target_ratio"] else "BELOW"
    lines.append(
        f"throughput ratio governor/direct (medians): {result['ratio']} ({verdict} target "
        f"{result['target_ratio']}); per round: {result['ratios']}"
    )
    lines.append(
        f"service CPU per request, direct/governor (medians): {result['cpu_ratio']} "
        "(the steadier figure on a shared machine: 1.0 = no overhead)"
    )
    return "\n".join(lines)


@click.command("aws")
@click.option("--threads", default=8, show_default=True, help="client threads (one boto3 client each)")
@click.option("--requests", "-n", default=1500, show_default=True, help="calls per mode, split over the threads")
@click.option("--rounds", default=3, show_default=True, help="alternating direct/governor rounds (medians reported)")
@click.option(
    "--no-keep-alive", is_flag=True, help="serve HTTP/1.0 (a new connection per request), as moto_server does"
)
@output_options("aws")
def command(threads: int, requests: int, rounds: int, no_keep_alive: bool, out_dir: str | None, as_json: bool) -> None:
    """Throughput and latency of moto behind the capacity governor vs moto alone."""
    if not 1 <= threads <= 256:
        raise ConfigError(f"--threads {threads} is out of range", value=threads, hint="use 1..256 threads")
    if not threads <= requests <= 1_000_000:
        raise ConfigError(
            f"--requests {requests} is out of range",
            value=requests,
            hint=f"use between --threads ({threads}) and 1,000,000 requests",
        )
    if not 1 <= rounds <= 20:
        raise ConfigError(f"--rounds {rounds} is out of range", value=rounds, hint="use 1..20 rounds")
    result = run_bench(threads=threads, requests=requests, rounds=rounds, keep_alive=not no_keep_alive)
    click.echo(render(result), err=as_json)
    write_figures(result, bench="aws", out_dir=out_dir, as_json=as_json)
