"""Provisioning the local stack from the stack description.

Everything here is a pure function of the description and the state directory, except the
calls that create resources through the services' own APIs (boto3 against the aws endpoint,
signed HTTP against the search service), so the local account ends up holding the same
resources Terraform creates on AWS.

Departures from AWS (also in docs/fidelity.md, "supervisor and state"):
- Access keys are generated here, not by IAM/STS: moto does not verify signatures, and the
  gateway, search and Lambda services need the secrets to verify and to sign. Role sessions
  never expire (AWS session credentials last at most 12 h).
- The TLS certificate is issued by a local CA (trustme, ``common/tls.py``) instead of ACM; it
  names the custom domain and 127.0.0.1 (the latter only so the supervisor can reach admin paths).
"""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path
from typing import Any

import requests
from requests_aws4auth import AWS4Auth

from loadcheck.core.description import SEARCH_ADMIN_ACTIONS, SEARCH_FUNCTION_ACTIONS, StackDescription
from loadcheck.core.state import ACCOUNT_ID, PROFILES, Identity

_ALNUM_UPPER = string.ascii_uppercase + string.digits


def _key_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALNUM_UPPER) for _ in range(16))


def _secret() -> str:
    return secrets.token_urlsafe(30)[:40]


def new_api_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(10))


def route_policy(desc: StackDescription, api_id: str, account_id: str = ACCOUNT_ID) -> dict[str, Any]:
    """The requester's identity policy: execute-api:Invoke on exactly the stack's routes."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeStackRoutes",
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": [desc.route_arn(account_id, api_id, rk) for rk in desc.routes],
            }
        ],
    }


def function_policies(desc: StackDescription, key: str, account_id: str = ACCOUNT_ID) -> list[dict[str, Any]]:
    fn = desc.functions[key]
    logs = {
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"arn:aws:logs:{desc.region}:{account_id}:log-group:{fn.log_group}:*",
    }
    if key == desc.table.function:
        return [
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:PutItem"],
                        "Resource": desc.table_arn(account_id),
                    },
                    logs,
                ],
            }
        ]
    if key == desc.search.function:
        return [
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": list(SEARCH_FUNCTION_ACTIONS),
                        "Resource": list(desc.search_function_resources(account_id)),
                    },
                    logs,
                ],
            }
        ]
    return [{"Version": "2012-10-17", "Statement": [logs]}]


def make_identities(desc: StackDescription, api_id: str, account_id: str = ACCOUNT_ID) -> dict[str, Identity]:
    ids: dict[str, Identity] = {}
    user_policies = {
        "admin": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}],
        "requester": [route_policy(desc, api_id, account_id)],
        "denied": [],
    }
    for name, profile in PROFILES.items():
        arn = f"arn:aws:iam::{account_id}:user/{profile}"
        ids[name] = Identity(
            name=name,
            arn=arn,
            principal_arn=arn,
            user_id=_key_id("AIDA"),
            access_key_id=_key_id("AKIA"),
            secret_access_key=_secret(),
            policies=user_policies[name],
        )
    for key, fn in desc.functions.items():
        role_arn = f"arn:aws:iam::{account_id}:role/{fn.role_name}"
        role_id = _key_id("AROA")
        ids[f"{key}-role"] = Identity(
            name=f"{key}-role",
            arn=f"arn:aws:sts::{account_id}:assumed-role/{fn.role_name}/{fn.name}",
            principal_arn=role_arn,
            user_id=f"{role_id}:{fn.name}",
            access_key_id=_key_id("ASIA"),
            secret_access_key=_secret(),
            session_token=secrets.token_urlsafe(96),
            policies=function_policies(desc, key, account_id),
        )
    return ids


def search_access_policy(
    desc: StackDescription, ids: dict[str, Identity], account_id: str = ACCOUNT_ID
) -> dict[str, Any]:
    """The domain's resource policy, as opensearch.tf writes it: the search role may POST its
    index's ``_search``, the corpus loader (here the admin identity, on AWS the search-admin role)
    may work on the index. The search service decides it together with the caller's identity
    policies (:mod:`loadcheck.core.iam`), as AWS does."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SearchFunctionSearches",
                "Effect": "Allow",
                "Principal": {"AWS": [ids["search-role"].principal_arn]},
                "Action": list(SEARCH_FUNCTION_ACTIONS),
                "Resource": list(desc.search_function_resources(account_id)),
            },
            {
                "Sid": "AdminLoadsCorpus",
                "Effect": "Allow",
                "Principal": {"AWS": [ids["admin"].principal_arn]},
                "Action": list(SEARCH_ADMIN_ACTIONS),
                "Resource": list(desc.search_admin_resources(account_id)),
            },
        ],
    }


def write_credentials_file(path: Path, ids: dict[str, Identity], region: str) -> None:
    lines = []
    for name, profile in PROFILES.items():
        i = ids[name]
        lines += [
            f"[{profile}]",
            f"aws_access_key_id = {i.access_key_id}",
            f"aws_secret_access_key = {i.secret_access_key}",
            f"region = {region}",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)


# ------------------------------------------------------------------------------------------
# Resources created through the services' APIs


def provision_aws(desc: StackDescription, endpoint: str, ids: dict[str, Identity], api_id: str) -> None:
    """Table, log groups and IAM principals, as Terraform creates them on AWS."""
    import boto3  # deferred: boto3 takes ~100 ms to import and `loadcheck --help` loads this module

    admin = ids["admin"]
    session = boto3.Session(
        aws_access_key_id=admin.access_key_id, aws_secret_access_key=admin.secret_access_key, region_name=desc.region
    )
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    t = desc.table
    kwargs: dict[str, Any] = {
        "TableName": t.name,
        "KeySchema": [
            {"AttributeName": t.hash_key, "KeyType": "HASH"},
            {"AttributeName": t.range_key, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": t.hash_key, "AttributeType": t.hash_key_type},
            {"AttributeName": t.range_key, "AttributeType": t.range_key_type},
        ],
        "BillingMode": t.billing_mode,
        "SSESpecification": {"Enabled": True},
    }
    if t.billing_mode == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = {"ReadCapacityUnits": t.read_capacity, "WriteCapacityUnits": t.write_capacity}
    ddb.create_table(**kwargs)
    ddb.get_waiter("table_exists").wait(TableName=t.name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    if t.point_in_time_recovery:
        ddb.update_continuous_backups(
            TableName=t.name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )

    logs = session.client("logs", endpoint_url=endpoint)
    groups = [(desc.access_log.log_group, desc.access_log.retention_days)]
    groups += [(fn.log_group, fn.log_retention_days) for fn in desc.functions.values()]
    for name, days in groups:
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=days)

    iam = session.client("iam", endpoint_url=endpoint)
    for name, profile in PROFILES.items():
        iam.create_user(UserName=profile)
        for n, doc in enumerate(ids[name].policies):
            iam.put_user_policy(UserName=profile, PolicyName=f"{profile}-{n}", PolicyDocument=json.dumps(doc))
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    for key, fn in desc.functions.items():
        iam.create_role(RoleName=fn.role_name, AssumeRolePolicyDocument=json.dumps(trust))
        for n, doc in enumerate(ids[f"{key}-role"].policies):
            iam.put_role_policy(RoleName=fn.role_name, PolicyName=f"{fn.role_name}-{n}", PolicyDocument=json.dumps(doc))


DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def corpus_documents() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The index mapping and documents from reference_stack/data/."""
    mapping = json.loads((DATA_DIR / "mapping.json").read_text(encoding="utf-8"))
    docs: list[dict[str, Any]] = []
    for path in sorted(DATA_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                docs.append(json.loads(line))
    return mapping, docs


def provision_search(desc: StackDescription, endpoint: str, ids: dict[str, Identity]) -> int:
    """Create the index with its mapping and bulk-load the corpus, signed as the admin."""
    admin = ids["admin"]
    auth = AWS4Auth(admin.access_key_id, admin.secret_access_key, desc.region, "es")
    index = desc.search.index
    mapping, docs = corpus_documents()
    r = requests.put(f"{endpoint}/{index}", json=mapping, auth=auth, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"creating index {index}: {r.status_code} {r.text[:300]}")
    for start in range(0, len(docs), 1000):
        lines = []
        for n, doc in enumerate(docs[start : start + 1000], start):
            doc_id = str(doc.get("id", n))
            # The index is in the path, never in the body: a body naming indices would step outside
            # the loader's index scope (docs/aws-behaviour.md §9.3, allow_explicit_index).
            lines.append(json.dumps({"index": {"_id": doc_id}}))
            lines.append(json.dumps({k: v for k, v in doc.items() if k != "id"}))
        body = ("\n".join(lines) + "\n").encode()
        # <index>/_bulk, not /_bulk: the corpus loader's scope is the index (docs/aws-behaviour.md §9.3).
        r = requests.post(
            f"{endpoint}/{index}/_bulk",
            data=body,
            auth=auth,
            timeout=60,
            headers={"Content-Type": "application/x-ndjson"},
        )
        if r.status_code != 200 or r.json().get("errors"):
            raise RuntimeError(f"loading corpus: {r.status_code} {r.text[:300]}")
    requests.post(f"{endpoint}/{index}/_refresh", auth=auth, timeout=30)
    return len(docs)
