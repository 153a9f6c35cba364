"""Role sessions: the identities a run acts as, assumed through STS and refreshed before they expire.

The Terraform (reference_stack/terraform/iam.tf) creates three roles besides the functions' own;
the local stack models them the same way (``reference_stack/local/provision.py``):

    requester      execute-api:Invoke on exactly the routes: signs the load
    denied         no permissions: signs the security check's denied probe
    search-admin   es:ESHttp* on the search domain: loads the corpus

The **caller** assumes them: on AWS the identity ``--profile`` (or the default credential chain)
names, on the local stack the ``loadcheck-admin`` user. The caller itself reads DynamoDB,
CloudWatch Logs and metrics for the checks. A session lasts :data:`SESSION_DURATION_S` (the
roles' ``max_session_duration``); botocore's :class:`~botocore.credentials.RefreshableCredentials`
assumes the role again 15 minutes before it expires (10 minutes: every signer waits for the new
one), so a run of hours signs with valid credentials throughout (docs/aws-behaviour.md §12.1).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Callable
from typing import Any

from loadcheck.core.errors import TargetError

SESSION_DURATION_S = 3600  # iam.tf: max_session_duration = 3600
ROLES = ("requester", "denied", "search-admin")
CALLER = "caller"

_WRONG_PROFILE = (
    "--profile names the caller: an identity the role's trust policy admits (by default any "
    "principal of the stack's account whose own policy allows sts:AssumeRole on it; "
    "stack.auto.tfvars.json requester.trusted_principal_arns narrows it)"
)


def session_name(role: str, *, pid: int | None = None) -> str:
    """``loadcheck-<role>-<pid>``: CloudTrail (and the local stack's logs) show who signed what."""
    name = f"loadcheck-{role}-{os.getpid() if pid is None else pid}"
    return re.sub(r"[^\w+=,.@-]", "-", name)[:64]


def assume_role(
    sts: Any,
    role_arn: str,
    *,
    role: str,
    duration_s: int = SESSION_DURATION_S,
    time_fetcher: Callable[[], _dt.datetime] | None = None,
) -> Any:
    """Credentials of a session of ``role_arn``, assumed with the caller's STS client ``sts``,
    as botocore :class:`~botocore.credentials.RefreshableCredentials` (signers call
    ``get_frozen_credentials()``; a refresh assumes the role again). Raises :class:`TargetError`
    naming the role and the fix when the caller may not assume it or has no credentials."""
    # deferred: botocore loads urllib3/ssl, which must come after Locust's gevent monkey-patching
    # when a Locust process calls this, and `loadcheck --help` loads this module
    from botocore.credentials import RefreshableCredentials
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError  # deferred: as above

    name = session_name(role)

    def fetch() -> dict[str, Any]:
        try:
            answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=name, DurationSeconds=duration_s)
        except NoCredentialsError as exc:
            raise TargetError(
                f"no AWS credentials to assume the {role} role ({role_arn})",
                value=role_arn,
                hint="configure the caller's credentials (aws configure, AWS_PROFILE, or --profile NAME)",
            ) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise TargetError(
                f"the caller may not assume the {role} role {role_arn}: "
                f"{error.get('Code', '?')}: {error.get('Message', exc)}",
                value=role_arn,
                hint=_WRONG_PROFILE,
            ) from exc
        except BotoCoreError as exc:
            raise TargetError(
                f"sts:AssumeRole for the {role} role failed: {exc}",
                value=role_arn,
                hint="check the network and AWS_ENDPOINT_URL (unset it for AWS itself)",
            ) from exc
        c = answer["Credentials"]
        expiration = c["Expiration"]
        if isinstance(expiration, _dt.datetime) and expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=_dt.UTC)
        return {
            "access_key": c["AccessKeyId"],
            "secret_key": c["SecretAccessKey"],
            "token": c["SessionToken"],
            "expiry_time": expiration.isoformat() if isinstance(expiration, _dt.datetime) else str(expiration),
        }

    first = fetch()
    kwargs: dict[str, Any] = {"time_fetcher": time_fetcher} if time_fetcher is not None else {}
    return RefreshableCredentials(
        access_key=first["access_key"],
        secret_key=first["secret_key"],
        token=first["token"],
        expiry_time=_dt.datetime.fromisoformat(first["expiry_time"]),
        refresh_using=fetch,
        method="assume-role",
        **kwargs,
    )
