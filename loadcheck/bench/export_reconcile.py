"""The export-reconcile measurement of ``loadcheck bench checks``: items/s and peak RSS.

Writes a run of N acknowledged writes over 10 partitions (the ledger, streamed through
``LedgerWriter``) and the export DynamoDB would make of the table they leave: gzip DynamoDB JSON
lines in data files of 100,000 items, ``manifest-files.json`` and ``manifest-summary.json`` laid
out as under ``s3://<bucket>/<prefix>/AWSDynamoDB/<ExportId>/`` (``checks.table_export``). Then,
in a fresh process (so its peak RSS is the reconcile's own, plus the interpreter and the checks'
imports, reported apart), it reconciles exactly as ``dynamodb_contents`` does on the export path:
read the ledger's writes, stream every data file the manifest lists, keep the run's partitions,
compare. Files are read from disk: S3's transfer is not measured.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from checks import dynamodb_contents, table_export
from checks.framework import CheckContext
from loadcheck.bench.synthetic_checks import request_id, synthetic_target
from loadcheck.core.description import load_description
from loadcheck.core.ledger import LedgerWriter, item_digest
from loadcheck.core.rundir import RunRecord, iso_utc, read_run
from loadcheck.core.rundir import write_run as write_run_record

PER_FILE = 100_000
ROOT = "loadcheck-exports/bench/AWSDynamoDB/01700000000000-bench0001"


def write_run_and_export(n: int, run_dir: Path, bucket_dir: Path) -> str:
    """The ledger of ``n`` acknowledged writes and the export of the table they leave; the
    manifest key (relative to ``bucket_dir``)."""
    start_ms = float(int(time.time()) - 3600) * 1000.0
    writer = LedgerWriter(run_dir / "ledger", "local", batch=5_000)
    data_dir = bucket_dir / ROOT / "data"
    data_dir.mkdir(parents=True)
    files: list[dict[str, Any]] = []
    out: gzip.GzipFile | None = None
    for i in range(n):
        if i % PER_FILE == 0:
            if out is not None:
                out.close()
            key = f"{ROOT}/data/part-{i // PER_FILE:05d}.json.gz"
            out = gzip.GzipFile(bucket_dir / key, "wb", compresslevel=6)
            files.append({"itemCount": min(PER_FILE, n - i), "dataFileS3Key": key})
        date = f"2031-02-{i % 10 + 1:02d}"
        item = {
            "date": date,
            "time": f"{i // 3_600_000:02d}:{i // 60_000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}",
            "userId": f"bench-u{i % 5}",
            "eventType": "click",
        }
        t = start_ms + i
        writer.write(
            {
                "run_id": "bench",
                "worker": "local",
                "seq": i,
                "t_start_ms": t,
                "t_intended_ms": t,
                "route": "POST /events",
                "method": "POST",
                "path": "/events",
                "status": 201,
                "error": None,
                "latency_ms": 12.5,
                "response_length": 100,
                "request_id": request_id(i, "bench"),
                "item_key": {"date": date, "time": item["time"]},
                "item": item,
                "item_digest": item_digest(item),
            }
        )
        assert out is not None
        out.write(json.dumps({"Item": {k: {"S": v} for k, v in item.items()}}).encode() + b"\n")
    if out is not None:
        out.close()
    writer.close()
    write_run_record(
        run_dir,
        RunRecord(
            run_id="bench",
            status="complete",
            target=synthetic_target().to_public(),
            started_at=iso_utc(start_ms / 1000.0 - 1),
            ended_at=iso_utc((start_ms + n) / 1000.0 + 1),
            ledger_records=n,
        ),
    )
    (bucket_dir / ROOT / "manifest-files.json").write_text("".join(json.dumps(f) + "\n" for f in files))
    summary = {"manifestFilesS3Key": f"{ROOT}/manifest-files.json", "itemCount": n, "outputFormat": "DYNAMODB_JSON"}
    (bucket_dir / ROOT / "manifest-summary.json").write_text(json.dumps(summary))
    return f"{ROOT}/manifest-summary.json"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def _reconcile(run_dir: str, bucket_dir: str, manifest_key: str) -> dict[str, Any]:
    """In the child process: the export path of dynamodb_contents, timed."""
    before = _rss_mb()
    ctx = CheckContext(
        run_dir=Path(run_dir),
        run=read_run(Path(run_dir)),
        target=synthetic_target(),
        description=load_description(),
        clients=lambda s: None,
        budget_s=3600.0,
    )

    def open_object(key: str) -> IO[bytes]:
        return (Path(bucket_dir) / key).open("rb")

    t0 = time.perf_counter()
    writes = dynamodb_contents.collect_writes(ctx, "date")
    t_ledger = time.perf_counter() - t0
    files = table_export.export_files(open_object, manifest_key)
    seen = dynamodb_contents.TableRead(source="export", keep_keys=False, pages=len(files))
    dynamodb_contents.read_export(
        table_export.export_items(open_object, files),
        "date",
        "time",
        writes.partitions,
        expected=writes.expected(),
        out=seen,
    )
    t_read = time.perf_counter() - t0 - t_ledger
    res = dynamodb_contents.reconcile(writes, seen, table="EventLog", budget=ctx.budget())
    total = time.perf_counter() - t0
    return {
        "status": res.status,
        "items": len(seen.items),
        "seconds": total,
        "ledger_s": t_ledger,
        "export_read_s": t_read,
        "rss_before_mb": before,
        "peak_rss_mb": _rss_mb(),
    }


def run_export_bench(n: int, *, say: Any = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lc-bench-export-") as tmp:
        run_dir, bucket_dir = Path(tmp) / "run", Path(tmp) / "bucket"
        t0 = time.perf_counter()
        manifest = write_run_and_export(n, run_dir, bucket_dir)
        size = sum(p.stat().st_size for p in (bucket_dir / ROOT / "data").iterdir())
        say(
            f"wrote a ledger of {n} writes and their export ({size / 1e6:.1f} MB gzip) in {time.perf_counter() - t0:.1f}s"
        )
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            got = pool.apply(_reconcile, (str(run_dir), str(bucket_dir), manifest))
    if got["status"] != "pass" or got["items"] != n:
        raise AssertionError(f"export reconcile of a clean run: {got}")
    return {
        "export_items": n,
        "export_gzip_mb": round(size / 1e6, 1),
        "export_reconcile_items_per_s": round(n / got["seconds"]),
        "export_reconcile_s": round(got["seconds"], 2),
        "export_reconcile_ledger_s": round(got["ledger_s"], 2),
        "export_reconcile_read_s": round(got["export_read_s"], 2),
        "export_reconcile_peak_rss_mb": round(got["peak_rss_mb"]),
        "export_reconcile_rss_before_mb": round(got["rss_before_mb"]),
    }
