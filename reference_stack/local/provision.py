"""Provisioning the local stack from the stack description.

Everything here is a pure function of the description and the state directory, except the
calls that create resources through the services' own APIs (boto3 against the aws endpoint,
signed HTTP against the search service), so the local account ends up holding the same
resources Terraform creates on AWS.

The caller (``admin``, the identity ``--profile`` names on AWS) is an IAM user with keys; the
requester, denied and search-admin identities are roles, as the Terraform creates them
(reference_stack/terraform/iam.tf): the trust policy admits the account (its root), and callers
assume them through the aws endpoint's STS (moto), which issues the temporary credentials the
services then verify (``aws/sts.py``).

Departures from AWS (also in docs/fidelity.md, "supervisor and state"):
- The admin's and the function roles' keys are generated here, not by IAM/STS: moto does not
  verify signatures, and the gateway, search and Lambda services need the secrets to verify and
  to sign. The function roles' sessions never expire (on AWS Lambda renews them).
- The roles' trust policies name the account root only (the Terraform's default when
  ``requester.trusted_principal_arns`` is empty).
- The TLS certificate is issued by a local CA (trustme, ``common/tls.py``) instead of ACM; it
  names the custom domain and 127.0.0.1 (the latter only so the supervisor can reach admin paths).
"""

from __future__ import annotations

import json
import secrets
import string
from pathlib import Path
from typing import Any

from loadcheck.core.description import SEARCH_ADMIN_ACTIONS, SEARCH_FUNCTION_ACTIONS, StackDescription
from loadcheck.core.state import ACCOUNT_ID, PROFILES, ROLE_ARN_KEYS, Identity, Role

_ALNUM_UPPER = string.ascii_uppercase + string.digits
EXPORT_EXPIRE_DAYS = 7  # the export bucket's lifecycle, as local.export_expire_days in terraform/export.tf


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


def search_admin_policy(desc: StackDescription, account_id: str = ACCOUNT_ID) -> dict[str, Any]:
    """The search-admin role's identity policy (iam.tf ``search_admin``): the index and what is
    under it, never the domain's root paths (``/_bulk`` naming other indices)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SearchIndexHttp",
                "Effect": "Allow",
                "Action": list(SEARCH_ADMIN_ACTIONS),
                "Resource": list(desc.search_admin_resources(account_id)),
            }
        ],
    }


def role_name(desc: StackDescription, key: str) -> str:
    """``<name_prefix>-requester``, ``-denied``, ``-search-admin``, as iam.tf names them."""
    return f"{desc.name_prefix}-{key}"


def make_roles(desc: StackDescription, api_id: str, account_id: str = ACCOUNT_ID) -> dict[str, Role]:
    """The requester, denied and search-admin roles with iam.tf's trust and permission policies."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    policies: dict[str, list[dict[str, Any]]] = {
        "requester": [route_policy(desc, api_id, account_id)],
        "denied": [],
        "search-admin": [search_admin_policy(desc, account_id)],
    }
    return {
        key: Role(
            name=role_name(desc, key),
            arn=f"arn:aws:iam::{account_id}:role/{role_name(desc, key)}",
            trust_policy=trust,
            policies=policies[key],
        )
        for key in ROLE_ARN_KEYS
    }


def make_identities(desc: StackDescription, api_id: str, account_id: str = ACCOUNT_ID) -> dict[str, Identity]:
    """The caller (``admin``, an IAM user with keys) and each function's role session."""
    ids: dict[str, Identity] = {}
    admin_arn = f"arn:aws:iam::{account_id}:user/{PROFILES['admin']}"
    ids["admin"] = Identity(
        name="admin",
        arn=admin_arn,
        principal_arn=admin_arn,
        user_id=_key_id("AIDA"),
        access_key_id=_key_id("AKIA"),
        secret_access_key=_secret(),
        policies=[{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}],
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
    desc: StackDescription, ids: dict[str, Identity], roles: dict[str, Role], account_id: str = ACCOUNT_ID
) -> dict[str, Any]:
    """The domain's resource policy, as opensearch.tf writes it: the search role may POST its
    index's ``_search``, the search-admin role (the corpus loader) may work on the index. The search
    service decides it together with the caller's identity policies (:mod:`loadcheck.core.iam`),
    as AWS does."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SearchFunctionSearches",
                "Effect": "Allow",
                "Principal": {"AWS": [ids[f"{desc.search.function}-role"].principal_arn]},
                "Action": list(SEARCH_FUNCTION_ACTIONS),
                "Resource": list(desc.search_function_resources(account_id)),
            },
            {
                "Sid": "AdminLoadsCorpus",
                "Effect": "Allow",
                "Principal": {"AWS": [roles["search-admin"].arn]},
                "Action": list(SEARCH_ADMIN_ACTIONS),
                "Resource": list(desc.search_admin_resources(account_id)),
            },
        ],
    }


def write_credentials_file(path: Path, ids: dict[str, Identity], roles: dict[str, Role], region: str) -> None:
    """The caller's keys, and one profile per role that botocore and the aws CLI assume through
    STS (``role_arn`` + ``source_profile``; botocore reads both from the credentials file)."""
    admin = ids["admin"]
    lines = [
        f"[{PROFILES['admin']}]",
        f"aws_access_key_id = {admin.access_key_id}",
        f"aws_secret_access_key = {admin.secret_access_key}",
        f"region = {region}",
        "",
    ]
    for key, role in roles.items():
        lines += [
            f"[{PROFILES[key]}]",
            f"role_arn = {role.arn}",
            f"source_profile = {PROFILES['admin']}",
            f"region = {region}",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")
    path.chmod(0o600)


# ------------------------------------------------------------------------------------------
# Resources created through the services' APIs


def provision_aws(
    desc: StackDescription, endpoint: str, ids: dict[str, Identity], roles: dict[str, Role], api_id: str
) -> None:
    """Table, export bucket, log groups and IAM principals, as Terraform creates them on AWS."""
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

    provision_export_bucket(session.client("s3", endpoint_url=endpoint), desc.export_bucket(ACCOUNT_ID))

    logs = session.client("logs", endpoint_url=endpoint)
    groups = [(desc.access_log.log_group, desc.access_log.retention_days)]
    groups += [(fn.log_group, fn.log_retention_days) for fn in desc.functions.values()]
    for name, days in groups:
        logs.create_log_group(logGroupName=name)
        logs.put_retention_policy(logGroupName=name, retentionInDays=days)

    iam = session.client("iam", endpoint_url=endpoint)
    caller = PROFILES["admin"]
    iam.create_user(UserName=caller)
    for n, doc in enumerate(ids["admin"].policies):
        iam.put_user_policy(UserName=caller, PolicyName=f"{caller}-{n}", PolicyDocument=json.dumps(doc))
    for role in roles.values():
        iam.create_role(
            RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust_policy), MaxSessionDuration=3600
        )
        for n, doc in enumerate(role.policies):
            iam.put_role_policy(RoleName=role.name, PolicyName=f"{role.name}-{n}", PolicyDocument=json.dumps(doc))
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


def provision_export_bucket(s3: Any, bucket: str) -> None:
    """The table's export bucket as reference_stack/terraform/export.tf makes it: private,
    encrypted (SSE-S3), exports expired after EXPORT_EXPIRE_DAYS."""
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-exports",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": EXPORT_EXPIRE_DAYS},
                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                }
            ]
        },
    )
