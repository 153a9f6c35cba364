"""CloudWatch metric math (reference_stack/local/aws/cloudwatch/metric_math.py), and GetMetricData
as the aws service answers it (cloudwatch/api.py) as WSGI middleware over moto's real app, in-process.

Expected values are the ones AWS's "Using metric math" page documents or follows from its rules
(missing values are 0 in arithmetic, a division by zero drops the point, comparisons give 1/0).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.test import Client

from reference_stack.local.aws.cloudwatch.api import MetricDataExtensions
from reference_stack.local.aws.cloudwatch.metric_math import (
    TS,
    Context,
    MetricMathError,
    TSArray,
    Value,
    evaluate,
    parse,
)

GRID = [0, 60, 120, 180, 240]
SERIES = {
    # AWS's example for comparisons: metric1 [30, 20, 0, 0], metric2 [20, -, 20, -]
    "metric1": {0: 30.0, 60: 20.0, 120: 0.0, 180: 0.0},
    "metric2": {0: 20.0, 120: 20.0},
    "errors_a": {0: 1.0, 60: 2.0},
    "errors_b": {0: 3.0, 120: 4.0},
    "sparse": {0: 10.0, 180: 40.0},
}


def run(expr: str, *, extra: dict[str, str] | None = None) -> Value:
    exprs = dict(extra or {})

    def resolve(ident: str) -> Value:
        if ident in SERIES:
            return TS(dict(SERIES[ident]), ident, ident)
        if ident in exprs:
            return evaluate(parse(exprs[ident]), ctx)
        raise MetricMathError(f"{ident} is not the Id of a query in this request")

    ctx = Context(resolve=resolve, metric_ids=list(SERIES), periods=dict.fromkeys(SERIES, 60), grid=GRID)
    return evaluate(parse(expr), ctx)


def points(expr: str, **kw: Any) -> list[float]:
    value = run(expr, **kw)
    assert isinstance(value, TS), value
    return [v for _, v in value.sorted()]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("metric1 < metric2", [0, 0, 1, 0]),  # AWS's table
        ("metric1 >= 30", [1, 0, 0, 0]),
        ("metric1 > 15 AND metric2 > 15", [1, 0, 0, 0]),
        ("metric1 > 15 && metric2 > 15 || metric1 == 0", [1, 0, 1, 1]),
        ("metric1 + metric2", [50, 20, 20, 0]),  # missing values are 0
        ("metric2 / metric1 * 100", [20 / 30 * 100, 0]),  # t=60: 0/20 = 0 kept; t=120,180: x/0 dropped
        ("-metric1 + 2 ^ 3 ^ 2", [-30 + 512, -20 + 512, 512, 512]),  # ^ is right-associative
        ("metric1 - AVG(metric1)", [17.5, 7.5, -12.5, -12.5]),
        ("metric1 / MAX(metric1)", [1, 20 / 30, 0, 0]),
        ('SUM(METRICS("errors"))', [4, 2, 4]),
        ("SUM([errors_a, errors_b]) / DATAPOINT_COUNT([errors_a, errors_b])", [2, 2, 4]),
        ("AVG([errors_a, errors_b])", [2, 1, 2]),
        ("MIN([metric1, metric2])", [20, 0, 0, 0]),
        ("FILL(sparse, 0)", [10, 0, 0, 40, 0]),
        ("FILL(sparse, REPEAT)", [10, 10, 10, 40, 40]),
        ("FILL(sparse, LINEAR)", [10, 20, 30, 40]),
        ("FILL(sparse, metric1)", [10, 20, 0, 40]),
        ("RATE(sparse)", [30 / 180]),
        ("DIFF(metric1)", [-10, -20, 0]),
        ("DIFF_TIME(sparse)", [180]),
        ("RUNNING_SUM(metric1)", [30, 50, 50, 50]),
        ("ABS(metric2 - metric1)", [10, 20, 20, 0]),
        ("metric1 / PERIOD(metric1)", [0.5, 20 / 60, 0, 0]),
        ("TIME_SERIES(MAX(metric1))", [30] * 5),
        ("IF(metric1 >= 20, metric1, 0)", [30, 20, 0, 0]),
        ("IF(metric1, metric2)", [20, 0]),  # true with no metric2 point: 0; false with no else: dropped
        ("FIRST(SORT(METRICS(), SUM, DESC))", [30, 20, 0, 0]),
        ('errors_a * METRIC_COUNT(METRICS("errors"))', [2, 4]),
        ("e1 - MIN(e1)", [30, 20, 0, 0]),  # an expression over another expression
    ],
)
def test_documented_expressions(expr: str, expected: list[float]) -> None:
    extra = {"e1": "metric1"} if "e1" in expr else None
    assert points(expr, extra=extra) == pytest.approx(expected)


def test_arrays_keep_their_members() -> None:
    value = run("METRICS() * 100")
    assert isinstance(value, TSArray)
    assert [m.ident for m in value.members] == list(SERIES)
    assert value.members[0].points == {t: v * 100 for t, v in SERIES["metric1"].items()}
    sliced = run("SLICE(SORT(METRICS(), MAX, ASC, 3), 1)")
    assert isinstance(sliced, TSArray) and [m.ident for m in sliced.members] == ["errors_b", "metric2"]
    assert isinstance(run("REMOVE_EMPTY([metric1, IF(metric1 > 99, metric1)])"), TSArray)
    assert len(run("REMOVE_EMPTY([metric1, IF(metric1 > 99, metric1)])").members) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("m1 +", "end of expression"),
        ("metric1 $ 2", "unexpected character '$'"),
        ("SEARCH('{AWS/EC2}', 'Sum', 300)", "unexpected character"),
        ("ANOMALY_DETECTION_BAND(metric1)", "unknown or unsupported function ANOMALY_DETECTION_BAND"),
        ("nope * 2", "nope is not the Id"),
        ("sum(metric1)", "upper case: SUM()"),
        ("SUM(2)", "not a scalar"),
        ("FILL(metric1, NEAREST)", "not NEAREST"),
        ("PERIOD(e1)", "PERIOD() takes the id of a metric"),
        ("[metric1, 2]", "time series only"),
        ("METRICS() + METRICS()", "two arrays"),
        ("SUM(metric1, metric2)", "takes 1 argument"),
        ("(metric1", "expected ')'"),
    ],
)
def test_unevaluable_expressions_are_refused(expr: str, fragment: str) -> None:
    with pytest.raises(MetricMathError) as exc:
        run(expr, extra={"e1": "metric1"})
    assert fragment in exc.value.message


# -- GetMetricData over moto ----------------------------------------------------------------------

T0 = 1_800_000_000 - 1_800_000_000 % 60  # a minute boundary


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws():
        client = Client(
            MetricDataExtensions(
                app=DomainDispatcherApplication(create_backend_app),
                account_id="123456789012",
                default_region="us-east-1",
            )
        )

        def call(op: str, body: dict[str, Any]) -> tuple[int, dict[str, Any], Any]:
            resp = client.post(
                "/",
                data=json.dumps(body),
                headers={
                    "X-Amz-Target": f"GraniteServiceVersion20100801.{op}",
                    "Content-Type": "application/x-amz-json-1.0",
                    "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/monitoring/aws4_request, "
                    "SignedHeaders=host, Signature=x",
                },
            )
            return resp.status_code, json.loads(resp.get_data() or b"{}"), resp.headers

        def put(ns: str, name: str, dims: dict[str, str], values: list[tuple[int, float]]) -> None:
            data = [
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()],
                    "Timestamp": T0 + t,
                    "Value": v,
                    "Unit": "Count",
                }
                for t, v in values
            ]
            assert call("PutMetricData", {"Namespace": ns, "MetricData": data})[0] == 200

        put("App", "Errors", {"Fn": "f"}, [(0, 1), (60, 3), (61, 1)])
        put("App", "Invocations", {"Fn": "f"}, [(0, 10), (60, 20), (120, 5)])
        put("Other", "Errors", {"Fn": "f"}, [(0, 100)])  # same name and dimensions, other namespace
        put("App", "Errors", {"Fn": "f", "Ver": "2"}, [(0, 1000)])  # another dimension set
        put("App", "Errors", {}, [(0, 5000)])  # no dimensions
        yield call


def stat(ident: str, name: str, dims: dict[str, str] | None = None, *, ns: str = "App", ret: bool = False) -> Any:
    metric = {
        "Namespace": ns,
        "MetricName": name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in (dims or {}).items()],
    }
    return {"Id": ident, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}, "ReturnData": ret}


def get(call: Any, *queries: Any, **extra: Any) -> tuple[int, dict[str, Any], Any]:
    return call("GetMetricData", {"StartTime": T0, "EndTime": T0 + 300, "MetricDataQueries": list(queries), **extra})


def test_metric_stat_matches_namespace_and_the_whole_dimension_set(cloudwatch: Any) -> None:
    code, body, _ = get(
        cloudwatch,
        stat("m1", "Errors", {"Fn": "f"}, ret=True),
        stat("m2", "Errors", ns="App", ret=True),
        stat("m3", "Errors", {"Fn": "f"}, ns="Other", ret=True),
        ScanBy="TimestampAscending",
    )
    assert code == 200, body
    by_id = {r["Id"]: r for r in body["MetricDataResults"]}
    assert by_id["m1"]["Values"] == [1.0, 4.0] and by_id["m1"]["Timestamps"] == [T0, T0 + 60]
    assert by_id["m1"]["Label"] == "Errors" and by_id["m1"]["StatusCode"] == "Complete"
    assert by_id["m2"]["Values"] == [5000.0]  # only the metric without dimensions
    assert by_id["m3"]["Values"] == [100.0]  # only the other namespace's


def test_expressions_over_metric_stats(cloudwatch: Any) -> None:
    code, body, _ = get(
        cloudwatch,
        {"Id": "rate", "Expression": "errors / invocations * 100", "Label": "ErrorRate"},
        {"Id": "total", "Expression": "SUM(METRICS())"},
        {"Id": "each", "Expression": "FILL(METRICS(), 0)", "Label": "Filled"},
        stat("errors", "Errors", {"Fn": "f"}),
        stat("invocations", "Invocations", {"Fn": "f"}),
    )
    assert code == 200, body
    rate, total, *each = body["MetricDataResults"]
    assert (rate["Id"], rate["Label"]) == ("rate", "ErrorRate")
    assert rate["Timestamps"] == [T0 + 120, T0 + 60, T0] and rate["Values"] == pytest.approx([0, 20, 10])
    assert dict(zip(total["Timestamps"], total["Values"], strict=True)) == {T0: 11, T0 + 60: 24, T0 + 120: 5}
    assert [(r["Id"], r["Label"]) for r in each] == [("each", "Filled Errors"), ("each", "Filled Invocations")]
    assert len(each[0]["Values"]) == 5 and sum(each[0]["Values"]) == 5


@pytest.mark.parametrize(
    ("queries", "fragment"),
    [
        ([{"Id": "e1", "Expression": "m1 +* 2"}, stat("m1", "Errors", {"Fn": "f"})], "Error in expression e1"),
        ([{"Id": "e1", "Expression": "AVG(m1)"}, stat("m1", "Errors", {"Fn": "f"})], "the result is a number"),
        ([{"Id": "e1", "Expression": "e2"}, {"Id": "e2", "Expression": "e1 * 2"}], "refers to itself"),
        ([{"Id": "E1", "Expression": "TIME_SERIES(1)"}], "Id is invalid"),
        ([{"Id": "e1", "Expression": "TIME_SERIES(1)"}, {"Id": "e1", "Expression": "TIME_SERIES(2)"}], "duplicate"),
        ([{"Id": "e1", "Expression": "TIME_SERIES(1)", **stat("x", "Errors")}], "Exactly one of"),
    ],
)
def test_unevaluable_requests_are_validation_errors(cloudwatch: Any, queries: list[Any], fragment: str) -> None:
    code, body, headers = get(cloudwatch, *queries)
    assert code == 400
    assert headers["x-amzn-query-error"] == "ValidationError;Sender"
    assert fragment in body["message"]


def test_other_operations_and_insights_queries_go_to_moto(cloudwatch: Any) -> None:
    code, body, _ = cloudwatch("ListMetrics", {"Namespace": "Other"})
    assert code == 200 and [m["MetricName"] for m in body["Metrics"]] == ["Errors"]
    code, body, _ = get(cloudwatch, {"Id": "q", "Expression": "SELECT SUM(Errors) FROM App", "Period": 60})
    assert code == 200 and body["MetricDataResults"][0]["Id"] == "q"
