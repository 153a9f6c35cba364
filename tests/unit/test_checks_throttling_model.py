"""The capacity model the throttling check uses: the bounds it derives are AWS's (§7.2, §7.3)."""

from __future__ import annotations

from loadcheck.core import throttle_model as tm
from loadcheck.core.plain_items import item_size, read_units, write_units


def w(t: float, accepted: bool = True, refused: bool = False, units: float = 1.0) -> tm.Write:
    return tm.Write(t=t, units=units, accepted=accepted, refused=refused)


def test_worst_interval_finds_the_over_admitted_burst() -> None:
    consumed = [1, 1, 50, 60, 1, 0]
    iv = tm.worst_interval(consumed, rate=1.0, burst=100.0)
    assert iv is not None and (iv.start_s, iv.end_s) == (2, 3)
    assert iv.consumed == 110 and iv.allowed == 102  # 110 > 100 burst + 2 s x 1 WCU


def test_prediction_anchored_at_first_refusal() -> None:
    # 1 WCU/s table, burst exhausted at t=10: offered 4/s afterwards for 10 s -> ~3 of 4 refused per second
    writes = [w(i / 4, accepted=i < 40) for i in range(40)]
    later = [w(10 + i / 4, accepted=(i % 4 == 0), refused=(i % 4 != 0)) for i in range(40)]
    p = tm.predict_after_onset(writes + later, rate=1.0, burst=300.0)
    assert p.onset_s == 10.25 and p.observed_refused_after_onset == 30
    assert abs(p.predicted_refused_after_onset - p.observed_refused_after_onset) <= 2
    assert p.burst_used_before_onset is not None and abs(p.burst_used_before_onset - 30.0) < 1.0


def test_model_onset_full_vs_empty_bucket() -> None:
    writes = [w(i / 10) for i in range(100)]  # 10 writes/s for 10 s
    assert tm.model_onset(writes, rate=1.0, burst=300.0, start_level=300.0) is None
    assert tm.model_onset(writes, rate=1.0, burst=300.0, start_level=0.0) == 0.0


def test_capacity_rules_match_aws_examples() -> None:
    assert item_size({"date": "2031-01-01", "time": "00:00:00.000"}) == 4 + 10 + 4 + 12
    assert write_units(1024) == 1 and write_units(1025) == 2
    assert read_units(int(40.8 * 1024)) == 5.5 and read_units(int(40.8 * 1024), consistent=True) == 11
    assert read_units(1500 * 64, consistent=True) == 24  # 96 KB
    assert item_size({"n": 12345}) == 1 + 4  # 5 digits -> 3 bytes + 1
