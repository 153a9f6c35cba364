"""HDR histograms: exact merges across workers, intervals by completion second, the file format."""

from __future__ import annotations

import json
import random

import pytest

from loadcheck.core import histograms
from loadcheck.core.errors import RunDirError


def test_merging_workers_equals_one_process_that_saw_everything(tmp_path):
    rng = random.Random(1)
    samples = [
        (rng.choice(["GET /events", "POST /events"]), 1000 + rng.random() * 30, rng.lognormvariate(3, 1))
        for _ in range(5000)
    ]
    single = histograms.IntervalRecorder()
    workers = [histograms.IntervalRecorder() for _ in range(3)]
    for i, (route, t, ms) in enumerate(samples):
        single.record(route, t, ms)
        workers[i % 3].record(route, t, ms)
    one = histograms.RunHistograms()
    one.add_intervals(single.take())
    merged = histograms.RunHistograms()
    for w in workers:  # shipped in pieces, as a worker does every second
        merged.add_intervals(w.take(before_s=1015))
        merged.add_intervals(w.take())
    for route in one.routes:
        a, b = one.routes[route], merged.routes[route]
        assert a.get_total_count() == b.get_total_count()
        for p in (50, 90, 95, 99, 99.9, 100):
            assert a.get_value_at_percentile(p) == b.get_value_at_percentile(p)
    assert one.to_json() == merged.to_json()


def test_values_within_three_significant_digits():
    rec = histograms.IntervalRecorder()
    for ms in (0.0004, 1.234, 56.789, 1234.5, 99_999.0):
        rec.record("r", 10.0, ms)
    h = histograms.RunHistograms()
    h.add_intervals(rec.take())
    hist = h.routes["r"]
    assert hist.get_min_value() == 1  # clamped to 1 us
    assert hist.get_max_value() == pytest.approx(99_999_000, rel=1e-3)
    assert hist.get_value_at_percentile(50) == pytest.approx(56_789, rel=1e-3)


def test_intervals_close_by_completion_second():
    rec = histograms.IntervalRecorder()
    rec.record("r", 100.2, 5)
    rec.record("r", 101.9, 5)
    assert list(rec.take(before_s=101.5)) == [100]  # second 101 is still open
    assert list(rec.take(before_s=102)) == [101]
    assert rec.take() == {}


def test_save_load_and_version_check(tmp_path):
    rec = histograms.IntervalRecorder()
    rec.record("GET /search", 5.5, 12.0)
    h = histograms.RunHistograms()
    h.add_intervals(rec.take())
    h.save(tmp_path)
    data = json.loads((tmp_path / "histograms.json").read_text())
    assert data["version"] == 1 and data["unit"] == "us"
    assert data["intervals"][0]["t"] == 5 and "GET /search" in data["intervals"][0]["routes"]
    loaded = histograms.load(tmp_path)
    assert histograms.summary(loaded.routes["GET /search"])["p50"] == pytest.approx(12.0, rel=1e-3)
    data["version"] = 9
    (tmp_path / "histograms.json").write_text(json.dumps(data))
    with pytest.raises(RunDirError, match="version 9"):
        histograms.load(tmp_path)
    with pytest.raises(RunDirError, match="does not exist"):
        histograms.load(tmp_path / "nope")
