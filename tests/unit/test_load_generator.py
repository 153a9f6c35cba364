"""The load generator's parts without processes: arrival schedule, keys, ledger records, aggregation."""

from __future__ import annotations

import datetime as _dt
import json
import random
import ssl
from types import SimpleNamespace

import pytest

from loadcheck.core import histograms, ledger
from loadcheck.core.errors import ConfigError
from loadcheck.core.ledger import item_digest, read_ledger, status_class
from loadcheck.core.runconfig import RunOptions
from locustfiles import ledger_collector
from locustfiles.ledger_aggregator import Aggregator
from locustfiles.ledger_collector import Collector, error_kind
from locustfiles.resolve import parse_resolve
from locustfiles.shapes import Arrival, ArrivalScheduler, KindPicker
from locustfiles.workload import DATES_PER_WORKER, KeyMaker, encode_query, load_terms


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def scheduler(
    opts: RunOptions, *, share: float = 1.0, idle: int = 0, on_done=None
) -> tuple[ArrivalScheduler, FakeClock]:
    clock = FakeClock()
    s = ArrivalScheduler(
        options=opts,
        share=share,
        picker=KindPicker(opts.mix or {"writes": 8, "reads": 1, "search": 1}, random.Random(1)),
        clock=clock,
        sleep=clock.sleep,
        on_done=on_done,
    )
    s._idle = idle
    s._first_idle.set()
    return s, clock


def test_schedule_emits_the_rate_for_the_duration_evenly_spaced():
    done = []
    s, _ = scheduler(RunOptions(rate=10, duration_s=2), idle=1000, on_done=lambda: done.append(1))
    s._run()
    arrivals = [s._queue.get_nowait() for _ in range(s._queue.qsize()) if s._queue.peek() is not None]
    arrivals = [a for a in arrivals if a is not None]
    assert len(arrivals) == 20 and s.dropped == 0 and done == [1]
    gaps = {round(b.t_intended - a.t_intended, 9) for a, b in zip(arrivals, arrivals[1:], strict=False)}
    assert gaps == {0.1}
    assert arrivals[0].t_intended == s.started_at


def test_share_divides_the_rate_between_workers():
    s, _ = scheduler(RunOptions(rate=10, duration_s=2), share=0.5, idle=1000)
    s._run()
    assert s.emitted == 10


def test_arrival_without_an_idle_user_is_dropped_not_delayed():
    s, _ = scheduler(RunOptions(rate=10, duration_s=1), idle=3)
    s._run()
    assert (s.emitted, s.dropped) == (10, 7)
    assert s.take_dropped() == 7 and s.take_dropped() == 0


def test_steps_change_the_rate():
    s, _ = scheduler(RunOptions(shape="step", rate=None, steps=(2, 4), step_duration_s=3), idle=10_000)
    s._run()
    assert s.emitted == 2 * 3 + 4 * 3


def test_an_early_stop_is_not_done():
    done = []
    s, _ = scheduler(RunOptions(rate=10, duration_s=5), idle=10, on_done=lambda: done.append(1))
    s.stop()
    s._run()
    assert done == [] and s.emitted == 0
    assert s.take() is None


def test_mix_weights_are_followed():
    picker = KindPicker({"writes": 6, "reads": 3, "search": 1}, random.Random(4))
    kinds = [picker.pick() for _ in range(10_000)]
    assert kinds.count("writes") / 10_000 == pytest.approx(0.6, abs=0.03)
    assert KindPicker({"writes": 0, "reads": 1, "search": 0}, random.Random(1)).pick() == "reads"


@pytest.mark.parametrize("mix", [{"writes": 6, "reads": 3, "search": 1}, {"writes": 1, "search": 5}, {"reads": 2}])
def test_picker_draws_what_random_choices_draws(mix):
    picker, rng = KindPicker(mix, random.Random(9)), random.Random(9)
    kinds = [k for k in ("writes", "reads", "search") if mix.get(k, 0) > 0]
    weights = [mix[k] for k in kinds]
    assert [picker.pick() for _ in range(2_000)] == [rng.choices(kinds, weights)[0] for _ in range(2_000)]


def test_keys_are_unique_valid_and_scoped_to_run_and_worker():
    a = KeyMaker(run_id="run-a", worker_index=0, collisions=0, rng=random.Random(1))
    keys = [a.next_key()[0] for _ in range(20_000)]
    assert len({(k["date"], k["time"]) for k in keys}) == 20_000
    for k in keys[:10] + keys[-10:]:
        _dt.date.fromisoformat(k["date"])
        _dt.datetime.strptime(k["time"], "%H:%M:%S.%f")
        assert len(k["time"]) == 12
    b = KeyMaker(run_id="run-a", worker_index=1, collisions=0, rng=random.Random(1))
    assert not set(a.dates) & set(b.dates) and len(a.dates) == DATES_PER_WORKER
    assert set(KeyMaker(run_id="run-b", worker_index=0, collisions=0, rng=random.Random(1)).dates) != set(a.dates)


def test_collisions_reuse_earlier_keys():
    km = KeyMaker(run_id="r", worker_index=0, collisions=0.5, rng=random.Random(2))
    seen, collided = set(), 0
    for _ in range(1000):
        key, collision = km.next_key()
        k = (key["date"], key["time"])
        if collision:
            collided += 1
            assert k in seen
        else:
            assert k not in seen
        seen.add(k)
    assert 400 < collided < 600


def test_corpus_falls_back_to_builtin_list_and_says_so(tmp_path):
    terms, source = load_terms(tmp_path)
    assert terms and "built-in" in source
    (tmp_path / "c.jsonl").write_text('{"term": "alpha"}\n{"term": "beta"}\nnot json\n')
    assert load_terms(tmp_path) == (["alpha", "beta"], f"2 terms from {tmp_path}")


def test_query_encoding_is_rfc3986():
    assert encode_query([("q", "a b/ü"), ("size", "5")]) == "q=a%20b%2F%C3%BC&size=5"
    assert encode_query([]) == encode_query(None) == ""


def test_resolve_parsing():
    r = parse_resolve("events.loadcheck.test:8443:127.0.0.1")
    assert (r.domain, r.port, r.address, r.connect_port) == ("events.loadcheck.test", 8443, "127.0.0.1", None)
    assert parse_resolve("d:443:[::1]:9443").address == "::1"
    assert parse_resolve("d:443:[::1]:9443").connect_port == 9443
    for bad in ("events.loadcheck.test", "d:http:1.2.3.4", "d:443:"):
        with pytest.raises(ConfigError, match="--resolve"):
            parse_resolve(bad)


# --------------------------------------------------------------------------------------------
# Ledger records


class Resp:
    def __init__(self, status: int, headers: dict | None = None, error: Exception | None = None) -> None:
        self.status_code = status
        self.headers = headers or {}
        self.error = error


def fire(
    c: Collector,
    status: int,
    *,
    meta: dict | None = None,
    exc: Exception | None = None,
    headers=None,
    start: float = 1000.0,
    rt: float = 20.0,
    name: str = "POST /events",
) -> dict:
    c.on_request(
        request_type=name.split()[0],
        name=name,
        response_time=rt,
        response_length=7,
        response=Resp(status, headers, exc),
        context={"loadcheck": meta} if meta else {},
        exception=exc,
        start_time=start,
        url="https://events.loadcheck.test:8443/events?x=1",
    )
    lines, _, _ = c.records(c.pending[-1:])
    return json.loads(lines[0])


def test_record_fields_and_latency_from_intended_start():
    c = Collector(run_id="r", worker="local", clock=FakeClock(1001))
    item = {"date": "2100-01-01", "time": "00:00:00.000", "userId": "u", "eventType": "view"}
    rec = fire(
        c,
        201,
        meta={
            "route": "POST /events",
            "path": "/events",
            "t_intended": 999.9,
            "item": item,
            "item_key": {"date": "2100-01-01", "time": "00:00:00.000"},
        },
        headers={"apigw-requestid": "Mc7UVioPPHcEKPA="},
    )
    assert rec["latency_ms"] == pytest.approx(120.0) and rec["t_intended_ms"] == pytest.approx(999_900.0)
    assert rec["request_id"] == "Mc7UVioPPHcEKPA=" and rec["item_digest"] == item_digest(item)
    assert rec["status"] == 201 and rec["error"] is None and rec["seq"] == 0
    throttled = fire(c, 429, headers={"Retry-After": "1", "retry-after": "1"})
    assert throttled["retry_after"] == "1" and throttled["path"] == "/events?x=1"
    assert throttled["latency_ms"] == pytest.approx(20.0)  # closed model: intended = sent


@pytest.mark.parametrize(
    "exc,kind",
    [
        (TimeoutError("timed out"), "timeout"),
        (TimeoutError(), "timeout"),
        (ssl.SSLCertVerificationError("certificate verify failed"), "tls"),
        (ConnectionRefusedError(111, "refused"), "connection"),
    ],
)
def test_requests_without_status_are_recorded_with_their_error_kind(exc, kind):
    c = Collector(run_id="r", worker="local")
    rec = fire(c, 0, exc=exc)
    assert rec["status"] == 0 and rec["error"] == kind and rec["request_id"] is None
    assert error_kind(None) is None


def test_drain_is_bounded_and_marks_final(monkeypatch):
    monkeypatch.setattr(ledger_collector, "BATCH_RECORDS", 4)
    clock = FakeClock(2000.0)
    c = Collector(run_id="r", worker="w0", clock=clock)
    for i in range(10):
        fire(c, 200, start=1990.0 + i * 0.1, name="GET /events")
    c.add_dropped(3)
    payloads = c.drain()
    assert [len(p["lines"]) for p in payloads] == [4, 4, 2]
    assert payloads[-1]["stats"]["errors"] == 0 and sum(payloads[-1]["stats"]["per_second"].values()) == 10
    assert json.loads(payloads[0]["lines"][0])["seq"] == 0 and payloads[0]["lines"][0].endswith(b"\n")
    assert payloads[-1]["dropped"] == 3 and not any(p["final"] for p in payloads)
    assert sum(len(p["intervals"]) for p in payloads) == 1  # second 1990 is closed
    final = c.drain(final=True)
    assert final[-1]["final"] and final[-1]["lines"] == [] and final[-1]["intervals"] == {}


def test_aggregator_writes_ledger_histograms_and_summary(tmp_path):
    clock = FakeClock(5000.0)
    agg = Aggregator(run_dir=tmp_path, run_id="r", duration_s=10, clock=clock)
    agg.start()
    for w in ("w0", "w1"):
        c = Collector(run_id="r", worker=w, clock=clock)
        for i in range(5):
            fire(c, 429 if i == 0 else 201, start=4990.0 + i, name="POST /events")
        for p in c.drain(final=True):
            agg.accept(p)
    progress = agg.progress()
    assert progress["requests"] == 10 and progress["throttled"] == 2 and progress["errors"] == 2
    route = progress["routes"]["POST /events"]
    assert route["requests"] == 10 and route["status"] == {"2xx": 8, "429": 2}
    assert histograms.decode(route["hdr"]).get_total_count() == 10
    stats = SimpleNamespace(entries={}, errors={}, total=SimpleNamespace(num_requests=10, num_failures=2))
    agg.finish(locust_stats=stats)
    assert len(list(read_ledger(tmp_path))) == 10
    assert histograms.load(tmp_path).routes["POST /events"].get_total_count() == 10
    loadgen = json.loads((tmp_path / "loadgen.json").read_text())
    assert loadgen["workers"]["w0"]["complete"] and loadgen["ledger_records"] == 10


def test_progress_counts_users_busy_of_the_pool_over_workers(tmp_path):
    clock = FakeClock(5000.0)
    agg = Aggregator(run_dir=tmp_path, run_id="r", duration_s=10, clock=clock)
    agg.start()
    assert agg.progress()["users"] is None  # no worker has reported yet
    for worker, pool, idle in (("w0", 32, 30), ("w1", 32, 27)):
        c = Collector(run_id="r", worker=worker, clock=clock)
        c.set_users(pool, idle)
        for p in c.drain():
            agg.accept(p)
    assert agg.progress()["users"] == {"pool": 64, "busy": 7}
    c = Collector(run_id="r", worker="w0", clock=clock)
    c.set_users(20, 20)  # a worker's newer report replaces its older one
    for p in c.drain():
        agg.accept(p)
    assert agg.progress()["users"] == {"pool": 52, "busy": 5}
    closed = Collector(run_id="r", worker="w2", clock=clock)
    closed.set_users(5, None)  # closed model: no idle pool, busy unknown
    for p in closed.drain():
        agg.accept(p)
    assert agg.progress()["users"] == {"pool": 57, "busy": None}


def test_scheduler_counts_idle_users():
    s, _ = scheduler(RunOptions(rate=10, duration_s=1), idle=3)
    assert s.idle == 3
    s.offer(Arrival(0.0, "writes"))
    assert s.idle == 2


@pytest.mark.parametrize(
    ("status", "cls"),
    [(0, "none"), (None, "none"), (200, "2xx"), (302, "3xx"), (404, "4xx"), (429, "429"), (503, "5xx")],
)
def test_status_class(status, cls):
    assert status_class(status) == cls


def test_arrival_is_a_value():
    assert Arrival(1.0, "writes") == Arrival(1.0, "writes")


def test_refreshable_credentials_are_re_read():
    from loadcheck.core.sigv4 import Credentials
    from locustfiles.signing import CredentialSource

    def frozen(*values: str) -> SimpleNamespace:  # botocore's ReadOnlyCredentials shape
        return SimpleNamespace(**dict(zip(("access_key", "secret_key", "token"), values, strict=True)))

    class Refreshing:
        def __init__(self) -> None:
            self.frozen = frozen("AKID1", "s1", "t1")

        def get_frozen_credentials(self):
            return self.frozen

    boto = Refreshing()
    source = CredentialSource(botocore_credentials=boto)
    first = source.get()
    assert first == Credentials("AKID1", "s1", "t1") and source.get() is first  # unchanged: same object
    boto.frozen = frozen("AKID2", "s2", "t2")
    assert source.get() == Credentials("AKID2", "s2", "t2")
    static = Credentials("A", "B")
    assert CredentialSource(static=static).get() is static
    with pytest.raises(ValueError):
        CredentialSource()


def test_thresholds_from_ledger_and_histograms(tmp_path):
    from loadcheck.commands.run_steps import evaluate_thresholds, ledger_summary

    clock = FakeClock(5000.0)
    agg = Aggregator(run_dir=tmp_path, run_id="r", duration_s=10, clock=clock)
    c = Collector(run_id="r", worker="local", clock=clock)
    for i in range(90):
        fire(c, 201, start=4990.0 + i / 10, rt=10.0 + i)  # 10..99 ms
    for _ in range(5):
        fire(c, 409, meta={"route": "POST /events", "collision": True, "item": {"a": "b"}, "item_key": {}})
    for _ in range(5):
        fire(c, 500, rt=5.0)
    for p in c.drain(final=True):
        agg.accept(p)
    agg.finish(locust_stats=None)
    summary = ledger_summary(tmp_path)
    assert summary["requests"] == 100 and summary["errors"] == 5  # forced-collision 409s are expected answers
    assert summary["routes"]["POST /events"]["status"] == {"201": 90, "409": 5, "500": 5}
    opts = RunOptions(thresholds=("error_rate<=4%", "POST /events:p95<200ms", "p95<50ms", "throttle_rate<1%"))
    results = {t["name"]: t for t in evaluate_thresholds(opts, tmp_path, summary)}
    assert results["error_rate<=4%"]["actual"] == 0.05 and not results["error_rate<=4%"]["passed"]
    assert results["POST /events:p95<200ms"]["passed"] and not results["p95<50ms"]["passed"]
    assert results["p95<50ms"]["actual"] == pytest.approx(95.0, abs=1.0)
    assert results["throttle_rate<1%"] == {
        "name": "throttle_rate<1%",
        "route": "all",
        "metric": "throttle_rate",
        "unit": "fraction",
        "limit": 0.01,
        "actual": 0.0,
        "passed": True,
    }


def test_ledger_writer_appends_encoded_lines(tmp_path):
    from loadcheck.core.ledger import LedgerWriter

    w = LedgerWriter(tmp_path / "ledger", "w0", rotate_records=3)
    w.write(
        {
            "run_id": "r",
            "worker": "w0",
            "seq": 0,
            "t_start_ms": 1,
            "route": "x",
            "method": "GET",
            "status": 200,
            "latency_ms": 1,
        }
    )  # buffered: the next write_lines flushes it first
    lines = [
        json.dumps(
            {
                "run_id": "r",
                "worker": "w0",
                "seq": i,
                "t_start_ms": 1,
                "route": "x",
                "method": "GET",
                "status": 200,
                "latency_ms": 1,
            }
        ).encode()
        + b"\n"
        for i in (1, 2, 3)
    ]
    w.write_lines(lines[:2])
    w.write_lines(lines[2:])  # the part is full after 3 records: this one starts the next part
    w.close()
    assert [r["seq"] for r in read_ledger(tmp_path)] == [0, 1, 2, 3] and w.count == 4
    assert len(list((tmp_path / "ledger").glob("w0-*.jsonl.gz"))) == 2  # rotated after 3 records


def test_a_record_orjson_refuses_is_still_written():
    from decimal import Decimal

    c = Collector(run_id="r", worker="local")
    item = {"date": "2100-01-01", "time": "00:00:00.000", "amount": Decimal("1.5"), "big": 2**70}
    rec = fire(c, 201, meta={"route": "POST /events", "path": "/events", "item": item, "item_key": {"date": "d"}})
    assert rec["item"]["amount"] == "1.5" and rec["item"]["big"] == 2**70 and rec["status"] == 201


def test_a_record_with_odd_meta_is_written_as_text_and_the_batch_survives():
    c = Collector(run_id="r", worker="local")
    fire(c, 200, meta={"route": "GET /events", "path": "/events"}, name="GET /events")
    fire(c, 200, meta={"route": "GET /x", "t_intended": "not a time"}, name="GET /x")  # a user's mistake
    fire(c, 429, meta={"route": "GET /events", "path": "/events"}, name="GET /events")
    lines, stats, _ = c.records(c.pending)
    recs = [json.loads(line) for line in lines]
    assert [r["seq"] for r in recs] == [0, 1, 2] and stats["throttled"] == 1
    assert "encoding_error" in recs[1] and recs[1]["meta"]["t_intended"] == "not a time"
    assert "encoding_error" not in recs[0] and "encoding_error" not in recs[2]
    assert all(f in recs[1] for f in ledger.REQUIRED_FIELDS)  # the ledger stays readable


@pytest.mark.parametrize(
    "url,signed,client",
    [
        ("https://events.loadcheck.test:8443", "events.loadcheck.test:8443", "events.loadcheck.test:8443"),
        ("https://events.example.com", "events.example.com", "events.example.com"),
        ("http://127.0.0.1:8080", "127.0.0.1:8080", "127.0.0.1:8080"),
        ("https://events.example.com:80", "events.example.com:80", "events.example.com"),  # Host sent by us
        ("http://[::1]:8080", "[::1]:8080", "[::1]:8080"),
    ],
)
def test_host_header_is_left_to_the_client_only_where_it_writes_the_signed_one(url, signed, client):
    from locustfiles.signing import CredentialSource, SigningContext

    ctx = SigningContext(url=url, region="us-east-1", credentials=CredentialSource(static=_creds()))
    assert ctx.host_header == signed and ctx.client_host_header == client


def _creds():
    from loadcheck.core.sigv4 import Credentials

    return Credentials("AKIDEXAMPLE", "secret")
