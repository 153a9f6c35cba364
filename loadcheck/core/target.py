"""The Target: where a run sends its load and where its checks look.

A Target is built once (from the local stack's ``stack.json``, or from the reference stack's
Terraform outputs for AWS) and passed down explicitly. It never holds secrets itself: it names
the caller's profile (and, locally, the shared-credentials file) and the roles' ARNs, and hands
out boto3 sessions and signing credentials on request. ``to_public()`` is what ``run.json``
records.

Identities (:mod:`loadcheck.core.roles`): the **caller** (``--profile`` on AWS, the local
stack's ``loadcheck-admin``; ``"admin"`` names it too) reads DynamoDB, logs and metrics and
assumes the roles; ``requester``, ``denied`` and ``search-admin`` are role sessions assumed
through STS (on the local stack, the aws endpoint's; on AWS, ``$AWS_ENDPOINT_URL``'s when set,
as for every boto3 client).
"""

from __future__ import annotations

import configparser
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadcheck.core import roles
from loadcheck.core.errors import ConfigError, TargetError
from loadcheck.core.sigv4 import Credentials
from loadcheck.core.state import PROFILES, ROLE_ARN_KEYS, stack_command

DEFAULT_ROUTES = ("GET /events", "POST /events", "GET /search", "POST /search")


@dataclass(frozen=True)
class Target:
    kind: str  # "local" | "aws"
    region: str
    account_id: str
    api_id: str
    domain: str
    url: str  # https://<domain>[:port], what clients address
    connect_address: str | None  # where the TCP connection goes (curl --resolve), None = DNS
    connect_port: int
    table_name: str
    access_log_group: str
    lambda_log_groups: dict[str, str]
    function_names: dict[str, str]
    search_endpoint: str | None
    search_index: str | None
    aws_endpoint_url: str | None = None  # None on AWS
    ca_bundle: str | None = None
    credentials_file: str | None = None  # None on AWS: the user's own credential chain
    caller_profile: str | None = None  # None: the default credential chain
    role_arns: dict[str, str] = field(default_factory=dict)  # requester/denied/search-admin -> ARN
    state_dir: str | None = None
    routes: tuple[str, ...] = DEFAULT_ROUTES
    export_bucket: str | None = None  # S3 bucket for the table's exports (dynamodb_contents); None: none

    # ----------------------------------------------------------------------------------------
    @classmethod
    def from_stack_json(cls, stack: dict[str, Any], state_dir: str | os.PathLike[str] | None = None) -> Target:
        try:
            gw = stack["gateway"]
            return cls(
                kind="local",
                region=stack["region"],
                account_id=stack["account_id"],
                api_id=stack["api_id"],
                domain=stack["domain"],
                url=gw["url"],
                connect_address=gw.get("address", "127.0.0.1"),
                connect_port=int(gw["port"]),
                table_name=stack["table_name"],
                access_log_group=stack["access_log_group"],
                lambda_log_groups=dict(stack["lambda_log_groups"]),
                function_names=dict(stack.get("function_names", {})),
                search_endpoint=stack.get("search_endpoint"),
                search_index=stack.get("search_index"),
                aws_endpoint_url=stack["aws_endpoint_url"],
                ca_bundle=stack.get("ca_bundle"),
                credentials_file=stack["credentials_file"],
                caller_profile=stack["profiles"]["admin"],
                role_arns={role: stack[key] for role, key in ROLE_ARN_KEYS.items() if key in stack},
                state_dir=str(state_dir) if state_dir else stack.get("state_dir"),
                routes=tuple(stack.get("routes", DEFAULT_ROUTES)),
                export_bucket=stack.get("export_bucket"),
            )
        except KeyError as exc:
            sd = state_dir if state_dir is not None else stack.get("state_dir")
            raise TargetError(
                f"stack.json lacks {exc.args[0]!r}",
                value=exc.args[0],
                hint=f"restart the local stack (`{stack_command('down', sd)} && {stack_command('up --detach', sd)}`)",
            ) from exc

    @classmethod
    def from_tf_outputs(
        cls,
        target: dict[str, Any],
        *,
        profile: str | None = None,
        ca_bundle: str | None = None,
        resolve: str | None = None,
    ) -> Target:
        """From ``loadcheck.core.aws_target.target_from_tf_outputs`` (keys as in stack.json).

        ``profile`` names the caller (None: the default credential chain). The port is the
        endpoint URL's when it names one (the load, the checks and the security probes all
        connect there); ``ca_bundle`` (argument, else ``$AWS_CA_BUNDLE``, as botocore reads it)
        is the trust store for the custom domain's certificate, used by the load and the probes
        alike; ``resolve`` (``--resolve DOMAIN:PORT:ADDR``, as curl's) connects to ADDR instead
        of what DNS says, for a domain whose DNS has not propagated yet, or the local stack.
        """
        gw = target["gateway"]
        url_port = urlsplit(gw["url"]).port
        port = int(url_port or gw.get("port") or 443)
        address = gw.get("address")
        if resolve:
            address = parse_resolve(resolve, domain=target["domain"], port=port)
        return cls(
            kind="aws",
            region=target["region"],
            account_id=target["account_id"],
            api_id=target["api_id"],
            domain=target["domain"],
            url=gw["url"],
            connect_address=address,
            connect_port=port,
            ca_bundle=resolve_ca_bundle(ca_bundle),
            table_name=target["table_name"],
            access_log_group=target["access_log_group"],
            lambda_log_groups=dict(target["lambda_log_groups"]),
            function_names=dict(target.get("function_names", {})),
            search_endpoint=target.get("search_endpoint"),
            search_index=target.get("search_index"),
            caller_profile=profile,
            role_arns={role: target[key] for role, key in ROLE_ARN_KEYS.items() if target.get(key)},
            routes=tuple(target.get("routes", DEFAULT_ROUTES)),
            export_bucket=target.get("export_bucket"),
        )

    @classmethod
    def from_public(cls, data: dict[str, Any]) -> Target:
        data = dict(data)
        data["routes"] = tuple(data.get("routes", DEFAULT_ROUTES))
        return cls(**data)

    def to_public(self) -> dict[str, Any]:
        """Everything but secrets (there are none in a Target): safe for run.json and reports."""
        return asdict(self)

    # ----------------------------------------------------------------------------------------
    def credentials(self, role: str = "requester") -> Credentials:
        """Signing credentials (a snapshot) for ``role``: ``caller`` (or ``admin``), or a session
        of ``requester``, ``denied`` or ``search-admin`` (assumed now; see :meth:`role_credentials`
        for credentials that stay valid)."""
        if role in (roles.CALLER, "admin"):
            return self._caller_credentials()
        frozen = self.role_credentials(role).get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def role_credentials(self, role: str) -> Any:
        """botocore refreshable credentials of a session of ``role`` (requester, denied,
        search-admin), assumed by the caller and assumed again before they expire."""
        arn = self.role_arns.get(role)
        if not arn:
            known = ", ".join(sorted(self.role_arns)) or "none"
            output = ROLE_ARN_KEYS.get(role)
            raise TargetError(
                f"no {role} role for this target (roles known: {known})",
                value=role,
                hint=f"the Terraform outputs {output} since this version: run `terraform apply` again"
                if output
                else f"roles: {', '.join(roles.ROLES)}",
            )
        sts = self.boto3_session(roles.CALLER).client("sts", endpoint_url=self.aws_endpoint_url)
        return roles.assume_role(sts, arn, role=role)

    def _caller_credentials(self) -> Credentials:
        profile = self.caller_profile
        if self.credentials_file:
            parser = configparser.ConfigParser()
            if not parser.read(self.credentials_file):
                raise TargetError(
                    f"cannot read credentials file {self.credentials_file}",
                    value=self.credentials_file,
                    hint=f"is the local stack running? `{stack_command('status', self.state_dir)}`",
                )
            if profile is None or profile not in parser or "aws_access_key_id" not in parser[profile]:
                raise TargetError(
                    f"profile {profile!r} has no keys in {self.credentials_file}",
                    value=profile,
                    hint=f"the local stack's caller is {PROFILES['admin']}; restart it "
                    f"(`{stack_command('down', self.state_dir)} && {stack_command('up --detach', self.state_dir)}`)",
                )
            sec = parser[profile]
            return Credentials(sec["aws_access_key_id"], sec["aws_secret_access_key"], sec.get("aws_session_token"))
        creds = self.boto3_session(roles.CALLER).get_credentials()
        if creds is None:
            raise TargetError(
                "no AWS credentials found",
                value=profile,
                hint="configure credentials (aws configure, AWS_PROFILE, or --profile)",
            )
        frozen = creds.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def boto3_session(self, role: str = roles.CALLER) -> Any:
        """A boto3 session of the caller (``caller`` or ``admin``): the checks read as the caller.
        Roles sign with :meth:`role_credentials`."""
        import boto3  # deferred: boto3 takes ~100 ms to import and `loadcheck --help` loads this module

        if role not in (roles.CALLER, "admin"):
            raise TargetError(
                f"boto3 sessions are the caller's, not the {role} role's",
                value=role,
                hint="sign as a role with Target.role_credentials(role)",
            )
        if self.credentials_file:
            c = self._caller_credentials()
            return boto3.Session(
                aws_access_key_id=c.access_key,
                aws_secret_access_key=c.secret_key,
                aws_session_token=c.token,
                region_name=self.region,
            )
        from botocore.exceptions import ProfileNotFound  # deferred: with boto3, above

        try:
            return boto3.Session(profile_name=self.caller_profile, region_name=self.region)
        except ProfileNotFound as exc:
            raise TargetError(
                f"--profile {self.caller_profile!r} is not a configured profile",
                value=self.caller_profile,
                hint="list them with `aws configure list-profiles`; --profile names the caller, "
                "the identity that assumes the stack's roles",
            ) from exc

    def client(self, service: str, role: str = roles.CALLER, **config: Any) -> Any:
        from botocore.config import Config  # deferred: loads botocore (~75 ms); `loadcheck --help` loads this module

        cfg = Config(retries={"mode": "standard", "max_attempts": 5}, **config)
        return self.boto3_session(role).client(service, endpoint_url=self.aws_endpoint_url, config=cfg)


def parse_resolve(value: str, *, domain: str, port: int) -> str:
    """``--resolve DOMAIN:PORT:ADDR`` (curl's form) for the target's domain and port: ADDR."""
    parts = value.split(":", 2)
    if len(parts) != 3 or not parts[2]:
        raise ConfigError(
            f"--resolve: {value!r} is not DOMAIN:PORT:ADDR",
            value=value,
            hint=f"e.g. --resolve {domain}:{port}:127.0.0.1 (as curl --resolve)",
        )
    name, raw_port, address = parts
    if name.lower() != domain.lower() or raw_port != str(port):
        raise ConfigError(
            f"--resolve: {value!r} does not name the API's domain and port ({domain}:{port})",
            value=value,
            hint=f"use --resolve {domain}:{port}:ADDR",
        )
    return address.strip("[]")


def target_from_run(run: dict[str, Any]) -> Target:
    """The Target a run recorded in its run.json."""
    try:
        return Target.from_public(run["target"])
    except (KeyError, TypeError) as exc:
        raise TargetError(
            "run.json has no usable target", value=str(exc), hint="the run directory was not written by `loadcheck run`"
        ) from exc


CA_BUNDLE_ENV = "AWS_CA_BUNDLE"


def resolve_ca_bundle(arg: str | None) -> str | None:
    """``--ca-bundle``, then ``$AWS_CA_BUNDLE``, then None (the system's trust store)."""
    value = arg if arg else os.environ.get(CA_BUNDLE_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        source = "--ca-bundle" if arg else f"${CA_BUNDLE_ENV}"
        raise ConfigError(
            f"{source}: {value!r} is not a file",
            value=value,
            hint="pass the PEM file of the CA that signed the custom domain's certificate, or unset it to use the system's",
        )
    return str(path.resolve())
