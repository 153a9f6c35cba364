"""Conformance: CloudWatch ``GetMetricData`` with metric math, through boto3 and the aws CLI.

Custom metrics are put into a namespace of the test's own, next to a decoy with the same metric
name and dimensions in another namespace (moto would mix them in); the expressions are the ones
AWS's "Using metric math" page shows. docs/fidelity.md "CloudWatch metrics" lists what differs.
"""

from __future__ import annotations

import datetime as _dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conformance import aws, client, stack_env

pytestmark = pytest.mark.integration
NOW = _dt.datetime.now(_dt.UTC).replace(second=0, microsecond=0)
T0 = NOW - _dt.timedelta(minutes=10)


@pytest.fixture(scope="module")
def metrics(local_stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = stack_env(local_stack["state_dir"], tmp_path_factory.mktemp("conformance-metrics"))
    namespace = f"Conformance/{uuid.uuid4().hex[:8]}"
    cw = client(env, "cloudwatch")
    series = {"Errors": [1.0, 3.0, 0.0], "Invocations": [10.0, 20.0, 5.0]}
    for ns, scale in ((namespace, 1.0), (namespace + "-decoy", 1000.0)):
        cw.put_metric_data(
            Namespace=ns,
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
                    "Timestamp": T0 + _dt.timedelta(minutes=i),
                    "Value": v * scale,
                    "Unit": "Count",
                }
                for name, values in series.items()
                for i, v in enumerate(values)
            ],
        )
    return {"env": env, "namespace": namespace, "cw": cw}


def queries(namespace: str, expression: str) -> list[dict[str, Any]]:
    def stat(ident: str, name: str) -> dict[str, Any]:
        metric = {"Namespace": namespace, "MetricName": name, "Dimensions": [{"Name": "FunctionName", "Value": "fn"}]}
        return {"Id": ident, "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}, "ReturnData": False}

    return [
        {"Id": "e1", "Expression": expression, "Label": "ErrorRate"},
        stat("errors", "Errors"),
        stat("invocations", "Invocations"),
    ]


def test_boto3_metric_math(metrics: dict[str, Any]) -> None:
    cw, ns = metrics["cw"], metrics["namespace"]
    window = {"StartTime": T0 - _dt.timedelta(minutes=1), "EndTime": NOW, "ScanBy": "TimestampAscending"}
    rate = cw.get_metric_data(MetricDataQueries=queries(ns, "errors / invocations * 100"), **window)
    (result,) = rate["MetricDataResults"]
    assert (result["Id"], result["Label"], result["StatusCode"]) == ("e1", "ErrorRate", "Complete")
    assert result["Values"] == pytest.approx([10.0, 15.0, 0.0])  # the decoy namespace (x1000) is not mixed in
    assert result["Timestamps"] == [T0 + _dt.timedelta(minutes=i) for i in range(3)]
    both = cw.get_metric_data(MetricDataQueries=queries(ns, "SUM(METRICS()) - AVG(invocations)"), **window)
    assert both["MetricDataResults"][0]["Values"] == pytest.approx([11 - 35 / 3, 23 - 35 / 3, 5 - 35 / 3])
    with pytest.raises(cw.exceptions.ClientError) as exc:
        cw.get_metric_data(MetricDataQueries=queries(ns, "errors / NOPE(invocations)"), **window)
    err = exc.value.response
    assert err["Error"]["Code"] == "ValidationError" and err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "NOPE" in err["Error"]["Message"]


def test_cli_get_metric_data(metrics: dict[str, Any], tmp_path: Path) -> None:
    spec = tmp_path / "queries.json"
    spec.write_text(json.dumps(queries(metrics["namespace"], "RATE(RUNNING_SUM(errors))")))
    args = [
        "cloudwatch",
        "get-metric-data",
        "--metric-data-queries",
        f"file://{spec}",
        "--start-time",
        (T0 - _dt.timedelta(minutes=1)).isoformat(),
        "--end-time",
        NOW.isoformat(),
    ]
    out = aws(metrics["env"], *args)
    (result,) = out["MetricDataResults"]
    # Newest first (ScanBy's default); the running sum 1, 4, 4 grows by 3 then 0 per 60 s.
    assert result["Values"] == pytest.approx([0.0, 0.05])
    assert result["Timestamps"] == [int((T0 + _dt.timedelta(minutes=m)).timestamp()) for m in (2, 1)]
    spec.write_text(json.dumps(queries(metrics["namespace"], "errors +")))
    refused = aws(metrics["env"], *args, check=False)
    assert refused.returncode != 0 and "(ValidationError)" in refused.stderr and "e1" in refused.stderr
