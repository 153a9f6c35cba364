"""Conformance: the clients a user of the stack points at it, each for what it is used for.

- aws CLI: DynamoDB describe/put/get/query/scan with ``ConsumedCapacity``; CloudWatch
  ``get-metric-statistics`` on the governor's metrics (timestamps as the CLI prints them);
- boto3: DynamoDB throttling as DynamoDB answers it (HTTP 400, error code, ``ThrottlingReasons``);
- curl ``--aws-sigv4``, requests-aws4auth: signed calls to the API on its custom domain;
- opensearch-py: a signed search, and the domain policy's refusal.

The outputs asserted are the ones AWS documents; docs/fidelity.md "Conformance with real
clients" lists what differs.
"""

from __future__ import annotations

import datetime as _dt
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests
from opensearchpy import AuthorizationException, AWSV4SignerAuth, OpenSearch, RequestsHttpConnection
from requests_aws4auth import AWS4Auth

from loadcheck.core.target import Target
from tests.integration.conformance import aws, client, stack_env

pytestmark = pytest.mark.integration
CURL = "/usr/bin/curl"
BIG = "x" * (350 * 1024)  # 350 WCU: more than a 1-WCU table's 300 s of burst, admitted only into a full bucket


@pytest.fixture(scope="module")
def env(local_stack: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return stack_env(local_stack["state_dir"], tmp_path_factory.mktemp("conformance-clients"))


@pytest.fixture(scope="module")
def throttled(env: dict[str, str], local_stack: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A table of its own (1/1, burst full): one 350 KB write fits, the next is throttled; metrics flushed."""
    ddb = client(env, "dynamodb", attempts=1)
    name = f"conformance-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
    )
    start = _dt.datetime.now(_dt.UTC).replace(second=0, microsecond=0)
    try:
        first = ddb.put_item(
            TableName=name, Item={"pk": {"S": "a"}, "blob": {"S": BIG}}, ReturnConsumedCapacity="TOTAL"
        )
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            ddb.put_item(TableName=name, Item={"pk": {"S": "b"}, "blob": {"S": BIG}})
        subprocess.run(
            [sys.executable, "-m", "loadcheck", "stack", "flush", "--state-dir", local_stack["state_dir"]],
            capture_output=True,
            timeout=60,
            check=True,
        )
        yield {"name": name, "first": first, "error": exc.value, "start": start}
    finally:
        ddb.delete_table(TableName=name)


def test_boto3_throttling_is_dynamodbs_answer(throttled: dict[str, Any], local_stack: dict[str, Any]) -> None:
    assert throttled["first"]["ConsumedCapacity"] == {"TableName": throttled["name"], "CapacityUnits": 351.0}
    err = throttled["error"].response
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert err["ThrottlingReasons"] == [
        {
            "reason": "TableWriteProvisionedThroughputExceeded",
            "resource": f"arn:aws:dynamodb:{local_stack['region']}:{local_stack['account_id']}:table/{throttled['name']}",
        }
    ]


def test_cli_metric_statistics(
    env: dict[str, str], throttled: dict[str, Any], local_stack: dict[str, Any], tmp_path: Path
) -> None:
    args = [
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        "AWS/DynamoDB",
        "--dimensions",
        f"Name=TableName,Value={throttled['name']}",
        "--start-time",
        (throttled["start"] - _dt.timedelta(minutes=1)).isoformat(),
        "--end-time",
        (throttled["start"] + _dt.timedelta(minutes=5)).isoformat(),
        "--period",
        "300",
        "--statistics",
        "Sum",
        "SampleCount",
        "Maximum",
    ]
    consumed = aws(env, *args, "--metric-name", "ConsumedWriteCapacityUnits")
    assert consumed["Label"] == "ConsumedWriteCapacityUnits"
    (point,) = consumed["Datapoints"]
    assert (point["Sum"], point["SampleCount"], point["Maximum"], point["Unit"]) == (351.0, 1.0, 351.0, "Count")
    # CLI v1 prints timestamps as they come on the wire: CloudWatch's JSON protocol sends epoch seconds.
    assert isinstance(point["Timestamp"], int | float)
    throttles = aws(env, *args, "--metric-name", "WriteThrottleEvents")
    assert [p["Sum"] for p in throttles["Datapoints"]] == [1.0]
    # With cli_timestamp_format = iso8601 (the CLI's own setting) it prints ISO-8601, as for AWS.
    iso_env = stack_env(local_stack["state_dir"], tmp_path, config="cli_timestamp_format = iso8601")
    (iso_point,) = aws(iso_env, *args, "--metric-name", "ConsumedWriteCapacityUnits")["Datapoints"]
    parsed = _dt.datetime.fromisoformat(iso_point["Timestamp"])
    assert parsed.timestamp() == point["Timestamp"] and parsed.utcoffset() is not None


def test_cli_dynamodb_reads_and_writes(env: dict[str, str], local_stack: dict[str, Any]) -> None:
    table = local_stack["table_name"]
    described = aws(env, "dynamodb", "describe-table", "--table-name", table)["Table"]
    assert described["TableStatus"] == "ACTIVE"
    assert {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]} == {"date": "HASH", "time": "RANGE"}
    date = f"2199-01-{uuid.uuid4().int % 28 + 1:02d}"
    key = f'{{"date": {{"S": "{date}"}}, "time": {{"S": "{uuid.uuid4()}"}}}}'
    item = key[:-1] + ', "note": {"S": "conformance"}}'
    put = aws(env, "dynamodb", "put-item", "--table-name", table, "--item", item, "--return-consumed-capacity", "TOTAL")
    assert put["ConsumedCapacity"] == {"TableName": table, "CapacityUnits": 1.0}
    got = aws(env, "dynamodb", "get-item", "--table-name", table, "--key", key, "--return-consumed-capacity", "TOTAL")
    assert got["Item"]["note"] == {"S": "conformance"} and got["ConsumedCapacity"]["CapacityUnits"] == 0.5
    strong = aws(
        env,
        "dynamodb",
        "get-item",
        "--table-name",
        table,
        "--key",
        key,
        "--consistent-read",
        "--return-consumed-capacity",
        "TOTAL",
    )
    assert strong["ConsumedCapacity"]["CapacityUnits"] == 1.0
    query = aws(
        env,
        "dynamodb",
        "query",
        "--table-name",
        table,
        "--key-condition-expression",
        "#d = :d",
        "--expression-attribute-names",
        '{"#d": "date"}',
        "--expression-attribute-values",
        f'{{":d": {{"S": "{date}"}}}}',
        "--return-consumed-capacity",
        "TOTAL",
    )
    assert query["Count"] >= 1 and query["ConsumedCapacity"]["CapacityUnits"] >= 0.5
    scan = aws(
        env, "dynamodb", "scan", "--table-name", table, "--select", "COUNT", "--return-consumed-capacity", "TOTAL"
    )
    assert scan["Count"] >= 1 and scan["ConsumedCapacity"]["CapacityUnits"] >= 0.5
    # The item is the CLI's, not one the API wrote: the session's other tests read the API's
    # partitions and hold its responses to openapi.yaml, so it goes again.
    deleted = aws(env, "dynamodb", "delete-item", "--table-name", table, "--key", key, "--return-values", "ALL_OLD")
    assert deleted["Attributes"]["note"] == {"S": "conformance"}


def _curl(local_stack: dict[str, Any], env: dict[str, str], path: str) -> subprocess.CompletedProcess[str]:
    gw = local_stack["gateway"]
    return subprocess.run(
        [CURL, "-sS", "--cacert", local_stack["ca_bundle"], "--resolve", f"{gw['host']}:{gw['port']}:127.0.0.1"]
        + ["--aws-sigv4", f"aws:amz:{local_stack['region']}:execute-api"]
        + [
            "--user",
            f"{env['AWS_ACCESS_KEY_ID']}:{env['AWS_SECRET_ACCESS_KEY']}",
        ]
        # `loadcheck stack env --keys` gives a role session: its token goes with every request, as
        # the stack's own curl example sends it.
        + (["-H", f"x-amz-security-token: {env['AWS_SESSION_TOKEN']}"] if env.get("AWS_SESSION_TOKEN") else [])
        + [
            "-w",
            "\n%{http_code}",
            gw["url"] + path,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_curl_aws_sigv4_on_the_custom_domain(env: dict[str, str], local_stack: dict[str, Any]) -> None:
    one = _curl(local_stack, env, "/events?date=2199-02-01")
    assert one.stdout.rsplit("\n", 1)[1] == "200", one.stdout + one.stderr
    # Parameters in sorted order: curl signs them as AWS canonicalizes them.
    two = _curl(local_stack, env, "/events?date=2199-02-01&limit=5")
    assert two.stdout.rsplit("\n", 1)[1] == "200", two.stdout + two.stderr
    # curl 7.88 signs the parameters in the order given, not sorted as SigV4 requires: AWS refuses
    # that signature, and so does the local stack (with AWS's message). curl 8 sorts them.
    if "curl 7." in subprocess.run([CURL, "--version"], capture_output=True, text=True, check=True).stdout:
        unsorted = _curl(local_stack, env, "/events?limit=5&date=2199-02-01")
        body, status = unsorted.stdout.rsplit("\n", 1)
        assert status == "403" and "signature we calculated does not match" in body


def test_requests_aws4auth_on_the_custom_domain(
    env: dict[str, str], local_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = local_stack["gateway"]
    real = socket.getaddrinfo
    monkeypatch.setattr(  # DNS for the custom domain: Route 53's job on AWS, 127.0.0.1 here
        socket, "getaddrinfo", lambda host, *a, **kw: real("127.0.0.1" if host == gw["host"] else host, *a, **kw)
    )
    auth = AWS4Auth(
        env["AWS_ACCESS_KEY_ID"],
        env["AWS_SECRET_ACCESS_KEY"],
        local_stack["region"],
        "execute-api",
        session_token=env.get("AWS_SESSION_TOKEN"),
    )
    date = "2199-03-01"
    item = {"date": date, "time": f"12:00:00.{uuid.uuid4().int % 1000:03d}", "userId": "u-conf", "eventType": "click"}
    posted = requests.post(gw["url"] + "/events", json=item, auth=auth, verify=local_stack["ca_bundle"], timeout=60)
    assert posted.status_code == 201, posted.text
    listed = requests.get(
        gw["url"] + "/events",
        params={"date": date, "limit": "10"},
        auth=auth,
        verify=local_stack["ca_bundle"],
        timeout=60,
    )
    assert listed.status_code == 200 and listed.headers.get("apigw-requestid"), listed.text


def test_opensearch_py_search_and_refusal(local_stack: dict[str, Any]) -> None:
    target = Target.from_stack_json(local_stack)
    region, host = local_stack["region"], local_stack["search_endpoint"]
    admin = target.credentials("admin")
    search = OpenSearch(
        hosts=[host],
        http_auth=AWSV4SignerAuth(_boto_creds(admin), region, "es"),
        connection_class=RequestsHttpConnection,
        timeout=30,
    )
    found = search.search(
        index=local_stack["search_index"], body={"query": {"match_bool_prefix": {"term": "Tru"}}, "size": 3}
    )
    assert found["hits"]["hits"] and all("term" in h["_source"] for h in found["hits"]["hits"])
    requester = OpenSearch(
        hosts=[host],
        http_auth=AWSV4SignerAuth(_boto_creds(target.credentials("requester")), region, "es"),
        connection_class=RequestsHttpConnection,
        timeout=30,
    )
    with pytest.raises(AuthorizationException) as refused:
        requester.search(index=local_stack["search_index"], body={"query": {"match_all": {}}})
    assert refused.value.status_code == 403


def _boto_creds(creds: Any) -> Any:
    from botocore.credentials import Credentials  # noqa: PLC0415 - deferred: botocore's type, needed here only

    return Credentials(creds.access_key, creds.secret_key, creds.token)
