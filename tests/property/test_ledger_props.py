"""The load generator's deferred ledger encoding equals the plain record.

``Collector.on_request`` keeps raw values and ``Collector.drain`` encodes them once a second
with orjson (a fast path on every request's way). These properties hold that fast path to
the obvious one: build the record as a dict field by field from Locust's request event and
encode it with the standard library; and batch histogram recording to recording each sample.
"""

from __future__ import annotations

import json
import ssl
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from loadcheck.core import histograms
from loadcheck.core.ledger import item_digest
from locustfiles.ledger_collector import Collector, error_kind

TEXT = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FFF, exclude_categories=("Cs",)), max_size=12)
statuses = st.sampled_from([0, 200, 201, 400, 403, 409, 429, 500, 503])
errors = st.sampled_from([None, TimeoutError("timed out"), ssl.SSLError("bad"), ConnectionResetError("reset")])
times = st.floats(min_value=1.6e9, max_value=2.0e9, allow_nan=False)
items = st.fixed_dictionaries({"date": TEXT, "time": TEXT, "userId": TEXT, "eventType": TEXT})


class Resp:
    def __init__(self, status: int, headers: dict[str, str], error: BaseException | None) -> None:
        self.status_code = status
        self.headers = headers
        self.error = error


def reference(c: Collector, seq: int, kw: dict) -> dict:
    """The record as a dict, built field by field from what Locust's request event passes."""
    meta = (kw["context"] or {}).get("loadcheck") or {}
    t_start = float(kw["start_time"])
    t_intended = float(meta.get("t_intended", t_start))
    latency_ms = (t_start - t_intended) * 1000.0 + float(kw["response_time"] or 0.0)
    resp = kw["response"]
    status = int(resp.status_code or 0)
    error = None if status else (error_kind(resp.error or kw["exception"]) or "connection")
    path = meta.get("path")
    if path is None and kw["url"]:
        rest = kw["url"].split("://", 1)[-1]
        path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
    rec = {
        "run_id": c.run_id,
        "worker": c.worker,
        "seq": seq,
        "t_start_ms": round(t_start * 1e6) / 1000,  # ms with microsecond precision
        "t_intended_ms": round(t_intended * 1e6) / 1000,
        "route": meta.get("route", kw["name"]),
        "method": kw["request_type"],
        "path": path,
        "status": status,
        "error": error,
        "latency_ms": round(latency_ms * 1000) / 1000,
        "response_length": int(kw["response_length"] or 0),
        "request_id": resp.headers.get("apigw-requestid"),
    }
    if status == 429:
        rec["retry_after"] = resp.headers.get("retry-after")
    if "item" in meta:
        rec["item_key"] = meta["item_key"]
        rec["item"] = meta["item"]
        rec["item_digest"] = item_digest(meta["item"])
        if meta.get("collision"):
            rec["collision"] = True
    return rec


@st.composite
def request_events(draw: st.DrawFn) -> dict:
    status = draw(statuses)
    headers = {}
    if draw(st.booleans()):
        headers["apigw-requestid"] = draw(TEXT)
    if status == 429 and draw(st.booleans()):
        headers["retry-after"] = draw(st.sampled_from(["1", "2"]))
    start = draw(times)
    meta: dict | None = None
    if draw(st.booleans()):
        meta = {"route": draw(TEXT), "path": draw(st.one_of(st.none(), TEXT))}
        if meta["path"] is None:
            del meta["path"]
        if draw(st.booleans()):
            meta["t_intended"] = start - draw(st.floats(min_value=0, max_value=5))
        if draw(st.booleans()):
            item = draw(items)
            meta.update(item=item, item_key={"date": item["date"], "time": item["time"]})
            if draw(st.booleans()):
                meta["collision"] = True
    return {
        "request_type": draw(st.sampled_from(["GET", "POST"])),
        "name": draw(TEXT),
        "response_time": draw(st.one_of(st.integers(0, 60_000), st.floats(0, 60_000, allow_nan=False))),
        "response_length": draw(st.integers(0, 10_000)),
        "response": Resp(status, headers, draw(errors) if status == 0 else None),
        "context": {"loadcheck": meta} if meta is not None else draw(st.sampled_from([None, {}])),
        "exception": None,
        "start_time": start,
        "url": draw(st.sampled_from([None, "https://events.loadcheck.test:8443/events?date=x", "http://h"])),
    }


@settings(max_examples=300)
@given(st.lists(request_events(), min_size=1, max_size=8), TEXT, TEXT)
def test_deferred_lines_equal_the_encoded_record(events, run_id, worker):
    c = Collector(run_id=run_id, worker=worker)
    for kw in events:
        c.on_request(**kw)
    lines, stats, _ = c.records(c.pending)
    expected = [json.dumps(reference(c, seq, kw)) for seq, kw in enumerate(events)]
    assert all(line.endswith(b"}\n") and line.count(b"\n") == 1 for line in lines)
    recs = [json.loads(line) for line in lines]
    # Same fields, same order, same values.
    assert [list(r.items()) for r in recs] == [list(json.loads(e).items()) for e in expected]
    assert stats["throttled"] == sum(r["status"] == 429 for r in recs)
    assert stats["errors"] == sum(not 200 <= r["status"] < 300 for r in recs)


samples = st.lists(
    st.tuples(
        st.sampled_from(["GET /events", "POST /events"]),
        st.floats(min_value=1000, max_value=1010, allow_nan=False),
        st.one_of(
            st.floats(min_value=0, max_value=5e6, allow_nan=False),
            st.sampled_from([0.0004, 1.0, 1.0005, 2.5, float("inf")]),
        ),
    ),
    max_size=300,
)


@given(samples)
def test_batch_recording_equals_recording_each_sample(batch):
    one, many = histograms.IntervalRecorder(), histograms.IntervalRecorder()
    for route, t, ms in batch:
        one.record(route, t, ms)
    many.record_counts(Counter((int(t), route, histograms.to_us(ms)) for route, t, ms in batch))
    assert one.take() == many.take()
