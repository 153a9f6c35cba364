"""``loadcheck bench checks``: how fast the checks reconcile a large run.

Synthesizes a run of N requests (default 100,000: 70% writes over 10 partitions, 30% reads) as
a correct stack would leave it: the ledger (``LedgerWriter``), the table contents and the
access-log records in moto (``mock_aws``, in this process), then times:

- ledger pass: reading and validating the whole ledger (the runner does this first);
- reconcile: ``dynamodb_contents`` end to end (ledger + paginated Query of every partition +
  comparison), and the comparison alone;
- log join: ``access_logs`` end to end (ledger + paginated FilterLogEvents + join and field
  rules), and the join alone.

Figures are records per second of the ledger. Moto's own speed dominates the end-to-end
numbers; the "alone" figures are the checks' own cost.

- export reconcile (``export_reconcile.py``): ``dynamodb_contents``'s export path over a
  generated export of ``--export-items`` items (default 1,000,000; 0 skips it): items/s and
  peak RSS of the process that reconciles.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import click
from moto import mock_aws

from checks import access_logs, dynamodb_contents
from checks.framework import CheckContext
from checks.results_doc import ledger_stats
from loadcheck.bench.export_reconcile import run_export_bench
from loadcheck.bench.synthetic_checks import (
    REGION,
    create_table,
    make_records,
    put_access_logs,
    synthetic_target,
    write_run,
)
from loadcheck.core.description import load_description
from loadcheck.core.rundir import read_run
from loadcheck.params import output_options, write_figures


def _populate(n: int, run_dir: Path, clients: dict[str, Any], fmt: dict[str, str]) -> list[dict[str, Any]]:
    writes = int(n * 0.7)
    dates = [f"2031-02-{d:02d}" for d in range(1, 11)]
    records = make_records(run_id="bench", writes=writes, reads=n - writes, per_second=500.0, dates=dates)
    write_run(run_dir, records)
    create_table(clients["dynamodb"], rcu=100_000, wcu=100_000)
    items = [r["item"] for r in records if r.get("item") is not None and 200 <= int(r["status"]) < 300]
    for i in range(0, len(items), 25):
        clients["dynamodb"].batch_write_item(
            RequestItems={
                "EventLog": [{"PutRequest": {"Item": {k: {"S": v} for k, v in it.items()}}} for it in items[i : i + 25]]
            }
        )
    put_access_logs(clients["logs"], "/aws/apigateway/loadcheck-http-api", records, fmt)
    return records


class _Clock:
    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        raise AssertionError("the bench data is complete: nothing should wait")


def run_bench(n: int, *, say: Any = print) -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

    desc = load_description()
    fmt = desc.access_log.format
    out: dict[str, Any] = {"requests": n}
    with tempfile.TemporaryDirectory(prefix="lc-bench-checks-") as tmp, mock_aws():
        run_dir = Path(tmp)
        clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "logs", "cloudwatch")}
        t0 = time.perf_counter()
        records = _populate(n, run_dir, clients, fmt)
        out["synthesize_s"] = round(time.perf_counter() - t0, 2)
        say(
            f"synthesized {n} requests (ledger, {sum(1 for r in records if 'item' in r)} items, access logs) "
            f"in {out['synthesize_s']}s"
        )
        ctx = CheckContext(
            run_dir=run_dir,
            run=read_run(run_dir),
            target=synthetic_target(),
            description=desc,
            clients=lambda s: clients[s],
            budget_s=600.0,
            clock=_Clock(),
            options={"dynamodb_page_limit": 10_000},
        )  # moto's Query cost is per call

        t0 = time.perf_counter()
        _, ctx.window, _ = ledger_stats(run_dir)
        out["ledger_pass_rps"] = round(n / (time.perf_counter() - t0))

        t0 = time.perf_counter()
        res = dynamodb_contents.run(ctx)
        total = time.perf_counter() - t0
        assert res.status == "pass", res.summary
        t0 = time.perf_counter()
        writes = dynamodb_contents.collect_writes(ctx, "date")
        t_collect = time.perf_counter() - t0
        seen = dynamodb_contents.TableRead(items={k: a[0].digest for k, a in writes.attempts.items()})
        t0 = time.perf_counter()
        dynamodb_contents.reconcile(writes, seen, table="EventLog", budget=ctx.budget())
        t_compare = time.perf_counter() - t0
        out.update(
            reconcile_end_to_end_rps=round(n / total),
            reconcile_end_to_end_s=round(total, 2),
            reconcile_ledger_and_compare_rps=round(n / (t_collect + t_compare)),
            table_items=res.figures["items_read"],
            table_pages=res.figures["pages"],
        )

        t0 = time.perf_counter()
        res = access_logs.run(ctx)
        total = time.perf_counter() - t0
        assert res.status == "pass", res.summary
        expected, no_id, _ = access_logs._expected_requests(ctx)
        recs = ctx.cache["access_log_records"]
        t0 = time.perf_counter()
        access_logs.judge_records(ctx, recs, expected, no_id, fmt=fmt, group="g", complete=True, budget=ctx.budget())
        t_join = time.perf_counter() - t0
        out.update(
            log_join_end_to_end_rps=round(n / total),
            log_join_end_to_end_s=round(total, 2),
            log_join_alone_rps=round(n / t_join),
            log_records=len(recs),
        )
    return out


@click.command("checks")
@click.option(
    "--requests",
    "n",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=100),
    help="requests in the synthetic run",
)
@click.option(
    "--export-items",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(min=0),
    help="items in the generated table export for the export-reconcile measurement (0: skip it)",
)
@output_options("checks")
def command(n: int, export_items: int, out_dir: str | None, as_json: bool) -> None:
    """Reconcile and log-join throughput of the checks on a synthetic run (moto, in process), and
    reconcile throughput and peak memory from a table export."""
    say = lambda m: click.echo(m, err=True)  # noqa: E731 - a one-line progress printer
    figures = run_bench(n, say=say)
    if export_items:
        figures.update(run_export_bench(export_items, say=say))
    width = max(len(k) for k in figures)
    for k, v in figures.items():
        click.echo(f"{k:<{width}}  {v}", err=as_json)
    write_figures(figures, bench="checks", out_dir=out_dir, as_json=as_json)
