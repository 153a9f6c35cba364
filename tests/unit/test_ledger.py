from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from loadcheck.core.errors import LedgerError
from loadcheck.core.ledger import LedgerWriter, item_digest, read_ledger


def rec(seq: int) -> dict[str, object]:
    return {
        "run_id": "r1",
        "worker": "local",
        "seq": seq,
        "t_start_ms": 1.0 + seq,
        "route": "POST /events",
        "method": "POST",
        "status": 201,
        "latency_ms": 3.5,
    }


def test_round_trip_and_rotation(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path / "ledger", "local", batch=7, rotate_records=20)
    for i in range(55):
        w.write(rec(i))
    w.close()
    assert len(list((tmp_path / "ledger").glob("*.jsonl.gz"))) == 3
    assert [r["seq"] for r in read_ledger(tmp_path)] == list(range(55))


def test_killed_writer_keeps_flushed_batches(tmp_path: Path) -> None:
    """A run killed without close(): every flushed batch is readable, the open tail is lost."""
    w = LedgerWriter(tmp_path / "ledger", "local", batch=10)
    for i in range(25):
        w.write(rec(i))
    # no close(): simulate SIGKILL by dropping the writer with its gzip stream unterminated
    assert [r["seq"] for r in read_ledger(tmp_path)] == list(range(20))


def test_line_cut_mid_record_is_skipped(tmp_path: Path) -> None:
    d = tmp_path / "ledger"
    d.mkdir()
    with gzip.open(d / "local-0000.jsonl.gz", "wb") as fh:
        fh.write(
            b'{"run_id":"r1","worker":"local","seq":0,"t_start_ms":1,"route":"GET /events","method":"GET","status":200,"latency_ms":1}\n{"run_id":"r1","wor'
        )
    assert len(list(read_ledger(tmp_path))) == 1


def test_corrupt_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    d = tmp_path / "ledger"
    d.mkdir()
    with gzip.open(d / "local-0000.jsonl.gz", "wb") as fh:
        fh.write(
            b'{"run_id":"r1","worker":"local","seq":0,"t_start_ms":1,"route":"GET /events","method":"GET","status":200,"latency_ms":1}\nnot json\n'
        )
    with pytest.raises(LedgerError, match=r"local-0000.jsonl.gz:2"):
        list(read_ledger(tmp_path))


def test_damaged_gzip_bytes_are_an_error(tmp_path: Path) -> None:
    w = LedgerWriter(tmp_path / "ledger", "local", batch=5)
    for i in range(50):
        w.write(rec(i))
    w.close()
    path = next((tmp_path / "ledger").glob("*.gz"))
    data = bytearray(path.read_bytes())
    for i in range(30, 60):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError):
        list(read_ledger(tmp_path))


def test_missing_fields_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="no ledger files"):
        list(read_ledger(tmp_path))
    d = tmp_path / "ledger"
    d.mkdir()
    with gzip.open(d / "w-0000.jsonl.gz", "wb") as fh:
        fh.write(b'{"run_id":"r1"}\n')
    with pytest.raises(LedgerError, match="lacks"):
        list(read_ledger(tmp_path))


def test_reopened_writer_appends_a_new_part(tmp_path: Path) -> None:
    for start in (0, 10):
        w = LedgerWriter(tmp_path / "ledger", "local", batch=3)
        for i in range(start, start + 10):
            w.write(rec(i))
        w.close()
    assert sorted(r["seq"] for r in read_ledger(tmp_path)) == list(range(20))
    assert len(os.listdir(tmp_path / "ledger")) == 2


def test_item_digest_is_key_order_independent() -> None:
    assert item_digest({"a": "1", "b": "2"}) == item_digest({"b": "2", "a": "1"})
    assert item_digest({"a": "1"}) != item_digest({"a": "2"})
