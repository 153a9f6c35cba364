"""``loadcheck bench gateway``: signed requests per second and latency through the local gateway.

Self-contained: starts moto (CloudWatch Logs, for the access logs the gateway ships), a Lambda
backend with a no-op function, and the gateway (HTTPS, SigV4 + IAM, access logs on), all on
127.0.0.1, then drives ``GET /noop`` from ``--connections`` threads, each holding one keep-alive
TLS connection and signing every request with :class:`loadcheck.core.sigv4.Signer`.

Backends (``--backend``):

- ``lambda`` (default): the real local Lambda service (``reference_stack.local.lambda_``)
  running the no-op handler in awslambdaric environments, reserved concurrency = connections;
- ``seam``: an in-process HTTP server implementing the Invoke API, answering at once; it
  isolates the gateway's own cost (but shares this process's GIL with the load threads).

The stage throttle is off for the run (only the account bucket, 10,000 rps, applies), so the
numbers are capacity, not a throttle setting. Latency is client-side, from before signing to
the last body byte, recorded in an HDR histogram (microseconds, 3 significant digits); the
first ``--warmup`` seconds (cold starts) are not counted. The gateway's own CPU time over the
measured interval is reported, so the CPU split between gateway and the rest is visible.

``loadcheck bench gateway`` then measures, in the same run, ``POST /events`` through the full
local stack with the PutItem rate of its aws endpoint alone (:mod:`loadcheck.bench.stack`) and
the governor against raw moto (:mod:`loadcheck.bench.aws`, one round), and prints the figures
against their goals (:data:`GOALS`); ``--out DIR`` writes them all (``DIR/bench-gateway.json``,
``--json`` prints them on stdout), ``--py-spy-dir DIR`` saves a py-spy profile of each service
process over each measured interval.

``--soak [DURATION]`` (alone: 10 minutes) runs the memory soak instead of the table: POST
/events through the full stack at ``--rate`` requests/s with the RSS of each service process
after the first minute and at the end (:func:`loadcheck.bench.stack.run_soak`).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import ssl
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import click
import psutil
from hdrh.histogram import HdrHistogram
from moto.server import ThreadedMotoServer

from loadcheck.bench import aws as aws_bench
from loadcheck.bench.client import DOMAIN, PinnedHTTPSConnection, summarize
from loadcheck.bench.profiling import Profiles
from loadcheck.bench.stack import run_post_events_bench, run_soak
from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import Credentials, Signer
from loadcheck.params import DURATION, RATE, output_options, refuse_unless, write_figures
from reference_stack.local.common import configs
from reference_stack.local.common.launcher import ServiceProcess
from reference_stack.local.common.tls import issue_in
from reference_stack.local.gateway import harness

API_ID = "benchapi01"
REGION = "us-east-1"
FUNCTION = "loadcheck-noop"
NOOP_HANDLER = """def handler(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}
"""


def _drive(
    *,
    port: int,
    ca_file: str,
    creds: Credentials,
    connections: int,
    warmup_s: float,
    duration_s: float,
    gateway_pid: int | None,
    profiles: Profiles | None = None,
    profile_pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=ca_file)
    signer = Signer("execute-api", REGION)
    host = f"{DOMAIN}:{port}"
    start = time.monotonic()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s
    hists = [HdrHistogram(1, 60_000_000, 3) for _ in range(connections)]
    statuses: list[Counter[int]] = [Counter() for _ in range(connections)]
    errors: list[str] = []
    barrier = threading.Barrier(connections)

    def worker(i: int) -> None:
        conn = PinnedHTTPSConnection(port, ctx, timeout=35)
        barrier.wait()
        try:
            while True:
                t0 = time.monotonic()
                if t0 >= stop_at:
                    return
                headers = signer.sign(creds, "GET", host, "/noop")
                try:
                    conn.request("GET", "/noop", headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = PinnedHTTPSConnection(port, ctx, timeout=35)
                    continue
                t1 = time.monotonic()
                if t0 >= measure_from:
                    hists[i].record_value(max(1, int((t1 - t0) * 1_000_000)))
                    statuses[i][resp.status] += 1
        finally:
            conn.close()

    proc = psutil.Process(gateway_pid) if gateway_pid else None
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    # CPU of the gateway over the measured interval only.
    while time.monotonic() < measure_from:
        time.sleep(min(0.05, max(0.0, measure_from - time.monotonic())))  # waiting out the warm-up
    cpu0 = sum(proc.cpu_times()[:2]) if proc else 0.0
    if profiles is not None and profile_pids:
        profiles.start(profile_pids, duration_s)
    wall0 = time.monotonic()
    for t in threads:
        t.join()
    wall = time.monotonic() - wall0
    cpu1 = sum(proc.cpu_times()[:2]) if proc else 0.0
    profiled = profiles.wait() if profiles is not None else []
    return summarize(hists, statuses, errors, wall) | {
        "profiles": profiled,
        "gateway_cpu_s": round(cpu1 - cpu0, 2),
        "gateway_cpu_percent": round(100 * (cpu1 - cpu0) / wall, 1) if wall else 0.0,
    }


def run_bench(
    *,
    connections: int,
    duration_s: float,
    warmup_s: float,
    backend: str,
    work_dir: Path | None = None,
    profile_dir: Path | None = None,
) -> dict[str, Any]:
    """Start moto, the backend and the gateway; drive load; stop everything; return the figures."""
    if connections < 1 or duration_s <= 0 or warmup_s < 0:
        raise ConfigError(
            f"bad bench options connections={connections} duration={duration_s} warmup={warmup_s}",
            value=(connections, duration_s, warmup_s),
            hint="use --connections >= 1, --duration > 0, --warmup >= 0",
        )
    with ExitStack() as stack:
        tmp = (
            Path(work_dir)
            if work_dir
            else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="loadcheck-bench-gw-")))
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's per-request lines
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        mhost, mport = moto.get_host_and_port()
        aws = f"http://{mhost}:{mport}"
        logs = boto3.client(
            "logs", region_name=REGION, endpoint_url=aws, aws_access_key_id="bench", aws_secret_access_key="bench"
        )  # noqa: S106 - moto does not check keys
        for group in ("/aws/apigateway/bench", f"/aws/lambda/{FUNCTION}"):
            # moto's state is per process, shared by every ThreadedMotoServer in it
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=group)
        routes = {"GET /noop": FUNCTION}
        ids = harness.make_identities(
            tmp / "identities.json", region=REGION, api_id=API_ID, routes=list(routes), roles={"noop-role": FUNCTION}
        )
        tls = issue_in(tmp / "tls", [DOMAIN, "127.0.0.1"])
        if backend == "lambda":
            (tmp / "task").mkdir(exist_ok=True)
            (tmp / "task" / "noop.py").write_text(NOOP_HANDLER)
            base = configs.ServiceBase(region=REGION, identities_file=tmp / "identities.json", log_level="WARNING")
            function = configs.LambdaFunctionConfig(
                key="noop",
                handler="noop.handler",
                task_root=tmp / "task",
                memory_mb=128,
                timeout_s=10,
                reserved_concurrency=connections,
                environment={},
                role_identity="noop-role",
                log_group=f"/aws/lambda/{FUNCTION}",
            )
            lam = ServiceProcess.for_service(
                "lambda",
                configs.lambda_config(
                    base, ready_file=tmp / "lambda.ready", aws_endpoint_url=aws, functions={FUNCTION: function}
                ),
                config_path=tmp / "lambda.json",
            )
            stack.callback(lam.stop)
            lambda_endpoint = f"http://127.0.0.1:{lam.launch(60)}"
            lambda_pid = lam.pid
        elif backend == "seam":
            lambda_pid = None
            invoke = stack.enter_context(harness.InvokeServer({FUNCTION: harness.noop_function}))
            lambda_endpoint = invoke.endpoint
        else:
            raise ConfigError(
                f"unknown backend {backend!r}", value=backend, hint="use --backend lambda or --backend seam"
            )
        cfg = harness.gateway_config(
            directory=tmp,
            tls=tls,
            identities_file=tmp / "identities.json",
            lambda_endpoint=lambda_endpoint,
            routes=routes,
            aws_endpoint_url=aws,
            api_id=API_ID,
            domain=DOMAIN,
            region=REGION,
            log_group="/aws/apigateway/bench",
            access_log_batch_s=1.0,
            throttle=None,
            cors=None,
            log_level="WARNING",
        )
        gw = harness.start_gateway(cfg, tmp / "gateway.json")
        stack.callback(gw.stop)
        requester = ids["requester"]
        figures = _drive(
            port=gw.port,
            ca_file=tls.ca_file,
            creds=Credentials(requester.access_key_id, requester.secret_access_key),
            connections=connections,
            warmup_s=warmup_s,
            duration_s=duration_s,
            gateway_pid=gw.pid,
            profiles=Profiles(profile_dir / "noop") if profile_dir else None,
            profile_pids={"gateway": gw.pid, **({"lambda": lambda_pid} if lambda_pid else {})},
        )
        return {
            "bench": "gateway",
            "backend": backend,
            "connections": connections,
            "route": "GET /noop",
            "signed": "SigV4 execute-api (loadcheck.core.sigv4.Signer)",
            "tls": "TLS 1.2+/keep-alive",
            **figures,
        }


# The goals of the local stack's speed (docs/load.md "Benchmarks"): (figure, goal text, met?).
GOALS = {
    "noop_rps": ("signed GET through the gateway to a no-op Lambda, req/s", ">= 1500", lambda v: v >= 1500),
    "noop_p99_ms": ("  its p99, ms", "<= 15", lambda v: v <= 15),
    "post_share": (
        "signed POST /events, full stack: share of the aws endpoint alone's PutItem rate",
        ">= 0.85",
        lambda v: v >= 0.85,
    ),
    "lambda_cpu_ms": ("CPU per POST /events: lambda service + environments, ms", "<= 1.5", lambda v: v <= 1.5),
    "gateway_cpu_ms": ("CPU per POST /events: gateway, ms", "<= 0.5", lambda v: v <= 0.5),
    "governor_ratio": ("governor vs raw moto (throughput ratio)", ">= 0.9", lambda v: v >= 0.9),
}


def table(noop: dict[str, Any], post: dict[str, Any] | None, governor: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The figures against :data:`GOALS`: one row each, ``value`` None when not measured."""
    n = noop.get("requests") or 0
    values: dict[str, float | None] = {
        "noop_rps": noop["requests_per_s"],
        "noop_p99_ms": (noop["latency_ms"] or {}).get("p99") if n else None,
        "post_share": post["share_of_aws_alone"] if post else None,
        "lambda_cpu_ms": post["cpu_ms_per_request"].get("lambda service + environments") if post else None,
        "gateway_cpu_ms": post["cpu_ms_per_request"].get("gateway") if post else None,
        "governor_ratio": governor["ratio"] if governor else None,
    }
    rows = []
    for key, (figure, goal, met) in GOALS.items():
        value = values[key]
        rows.append({"figure": figure, "value": value, "goal": goal, "met": None if value is None else met(value)})
    return rows


def _renamed_profile(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise ConfigError(
            f"--profile {value!r}: the py-spy profiles' directory is --py-spy-dir (--profile is only ever an AWS profile)",
            value=value,
            hint=f"use --py-spy-dir {value}",
        )


@click.command("gateway")
@click.option(
    "--connections", "-c", default=8, show_default=True, help="client threads, one keep-alive connection each"
)
@click.option(
    "-t", "--duration", "--run-time", "duration", type=DURATION, default="10s", show_default=True, help="measured time"
)
@click.option(
    "--warmup", type=DURATION, default="2s", show_default=True, help="load before measuring (cold starts), e.g. 2s"
)
@click.option(
    "--backend",
    type=click.Choice(["lambda", "seam"]),
    default="lambda",
    show_default=True,
    help="lambda: the real local Lambda service; seam: an in-process Invoke API answering at once",
)
@click.option(
    "--post-events/--no-post-events",
    default=True,
    show_default=True,
    help="also measure POST /events through the full local stack (and its aws endpoint alone), with the CPU split",
)
@click.option(
    "--governor/--no-governor",
    default=True,
    show_default=True,
    help="also measure the governor against raw moto (one round of `loadcheck bench aws`)",
)
@output_options("gateway")
@click.option(
    "--py-spy-dir",
    "profile_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="save a py-spy profile (flame graph + raw stacks) of each service process per measured interval into DIR",
)
@click.option("--profile", hidden=True, expose_value=False, callback=_renamed_profile, help="renamed --py-spy-dir")
@click.option(
    "--soak",
    "soak",
    type=DURATION,
    is_flag=False,
    flag_value="10m",
    default=None,
    help="instead of the table: a memory soak, POST /events through the full stack at --rate for DURATION "
    "(--soak alone: 10m), RSS of each service after the first minute and at the end",
)
@click.option("--rate", type=RATE, default="200", show_default=True, help="the soak's requests per second")
def command(
    connections: int,
    duration: float,
    warmup: float,
    backend: str,
    post_events: bool,
    governor: bool,
    out_dir: str | None,
    as_json: bool,
    profile_dir: Path | None,
    soak: float | None,
    rate: float,
) -> None:
    """Signed requests/s and p50/p99 through the gateway: a no-op handler, then POST /events end to end."""
    refuse_unless(
        click.get_current_context(),
        ["rate"],
        applies=soak is not None,
        why="without --soak: only the soak sends at a fixed rate",
        hint="drop {option}, or add --soak DURATION",
    )
    if soak is not None:
        _soak(float(soak), rate, connections, as_json, out_dir)
        return
    result = run_bench(
        connections=connections, duration_s=duration, warmup_s=warmup, backend=backend, profile_dir=profile_dir
    )
    stack_result = None
    if post_events:
        stack_result = run_post_events_bench(
            connections=connections, duration_s=duration, warmup_s=warmup + 1, profile_dir=profile_dir
        )
    governor_result = None
    if governor:
        governor_result = aws_bench.run_bench(threads=connections, requests=1500 * connections // 8 or 300, rounds=1)
    rows = table(result, stack_result, governor_result)
    doc: dict[str, Any] = {
        "noop": result,
        "post_events": stack_result,
        "governor": governor_result,
        "table": rows,
    }
    write_figures(doc, bench="gateway", out_dir=out_dir, as_json=as_json)
    if as_json:
        return
    lat = result["latency_ms"]
    click.echo(f"gateway bench ({backend} backend, {connections} connections, {result['duration_s']} s measured)")
    click.echo(f"  {result['requests']} signed GET /noop -> {result['requests_per_s']} req/s")
    if lat:
        click.echo(f"  latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}")
    click.echo(f"  statuses {result['statuses']}  errors {result['errors']}")
    click.echo(f"  gateway CPU {result['gateway_cpu_s']} s ({result['gateway_cpu_percent']}% of one core)")
    if stack_result:
        r = stack_result
        lat = r["latency_ms"]
        click.echo(f"full stack, PAY_PER_REQUEST table ({connections} connections, {r['duration_s']} s measured)")
        click.echo(f"  {r['requests']} signed POST /events -> {r['requests_per_s']} req/s")
        if lat:
            click.echo(f"  latency ms: p50 {lat['p50']}  p90 {lat['p90']}  p99 {lat['p99']}  max {lat['max']}")
        click.echo(f"  statuses {r['statuses']}  errors {r['errors']}")
        alone = r["aws_alone"]
        click.echo(f"  the same PutItems at the aws endpoint alone -> {alone['requests_per_s']} req/s")
        click.echo("  CPU over the measured interval (seconds, share, ms per request):")
        for part, secs in r["cpu_s"].items():
            click.echo(
                f"    {part:<32} {secs:7.2f} s  {100 * r['cpu_share'][part]:5.1f}%  {r['cpu_ms_per_request'].get(part, 0):6.2f} ms"
            )
        for part, ms in r.get("lambda_cpu_ms_per_request", {}).items():
            click.echo(f"      of which {part:<23} {ms:6.2f} ms")
    click.echo("figures against their goals (one run; on a shared machine read the ratios):")
    for row in rows:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[row["met"]]
        value = "-" if row["value"] is None else row["value"]
        click.echo(f"  {row['figure']:<82} {value!s:>8}  goal {row['goal']:<7} {verdict}")
    for path in result.get("profiles", []) + (stack_result or {}).get("profiles", []):
        click.echo(f"  profile: {path}")


def _soak(duration_s: float, rate: float, connections: int, as_json: bool, out_dir: str | None) -> None:
    doc = run_soak(duration_s=duration_s, rate=rate, connections=connections)
    write_figures(doc, bench="gateway-soak", out_dir=out_dir, as_json=as_json)
    if as_json:
        return
    click.echo(
        f"soak: signed POST /events, full stack, {doc['rate_asked']:g} req/s asked for {doc['duration_s']} s "
        f"({connections} connections)"
    )
    click.echo(
        f"  {doc['requests']} requests -> {doc['rate_sustained']} req/s sustained ({doc['late']} sent late)"
        f"  statuses {doc['statuses']}  errors {doc['errors']}"
    )
    click.echo(f"  RSS, MB: after the first minute -> at the end (goal: end <= {doc['goal_ratio']} x first minute)")
    for name, ratio in doc["rss_ratio"].items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[doc["met"][name]]
        click.echo(
            f"    {name:<32} {doc['rss_mb_first_minute'][name]!s:>8} -> {doc['rss_mb_end'][name]!s:>8}"
            f"  x{ratio}  {verdict}"
        )


if __name__ == "__main__":
    command()
