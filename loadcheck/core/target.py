"""The Target: where a run sends its load and where its checks look.

A Target is built once (from the local stack's ``stack.json``, or from the reference stack's
Terraform outputs for AWS) and passed down explicitly. It never holds secrets itself: it names a
shared-credentials file and profiles, and hands out boto3 sessions and signing credentials on
request. ``to_public()`` is what ``run.json`` records.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadcheck.core.errors import ConfigError, TargetError
from loadcheck.core.sigv4 import Credentials
from loadcheck.core.state import stack_command


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
    profiles: dict[str, str | None] = field(default_factory=dict)  # role -> profile name
    state_dir: str | None = None
    routes: tuple[str, ...] = ()  # the stack description's route keys (stack.json, Terraform's `routes`)

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
                profiles=dict(stack["profiles"]),
                state_dir=str(state_dir) if state_dir else stack.get("state_dir"),
                routes=tuple(stack.get("routes", ())),
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
        denied_profile: str | None = None,
        ca_bundle: str | None = None,
    ) -> Target:
        """From ``loadcheck.core.aws_target.target_from_tf_outputs`` (keys as in stack.json).

        The port is the endpoint URL's when it names one (the load, the checks and the security
        probes all connect there); ``ca_bundle`` (argument, else ``$AWS_CA_BUNDLE``, as botocore
        reads it) is the trust store for the custom domain's certificate, used by the load and
        the probes alike.
        """
        gw = target["gateway"]
        url_port = urlsplit(gw["url"]).port
        return cls(
            kind="aws",
            region=target["region"],
            account_id=target["account_id"],
            api_id=target["api_id"],
            domain=target["domain"],
            url=gw["url"],
            connect_address=gw.get("address"),
            connect_port=int(url_port or gw.get("port") or 443),
            ca_bundle=resolve_ca_bundle(ca_bundle),
            table_name=target["table_name"],
            access_log_group=target["access_log_group"],
            lambda_log_groups=dict(target["lambda_log_groups"]),
            function_names=dict(target.get("function_names", {})),
            search_endpoint=target.get("search_endpoint"),
            search_index=target.get("search_index"),
            profiles={"admin": profile, "requester": profile, "denied": denied_profile},
            routes=tuple(target.get("routes", ())),
        )

    @classmethod
    def from_public(cls, data: dict[str, Any]) -> Target:
        data = dict(data)
        data["routes"] = tuple(data.get("routes", ()))
        return cls(**data)

    def to_public(self) -> dict[str, Any]:
        """Everything but secrets (there are none in a Target): safe for run.json and reports."""
        return asdict(self)

    # ----------------------------------------------------------------------------------------
    def credentials(self, role: str = "requester") -> Credentials:
        """Signing credentials for ``role`` (admin, requester, denied)."""
        if role not in self.profiles:
            raise TargetError(
                f"no profile for identity {role!r}", value=role, hint=f"known identities: {', '.join(self.profiles)}"
            )
        profile = self.profiles[role]
        if self.credentials_file:
            parser = configparser.ConfigParser()
            if not parser.read(self.credentials_file):
                raise TargetError(
                    f"cannot read credentials file {self.credentials_file}",
                    value=self.credentials_file,
                    hint=f"is the local stack running? `{stack_command('status', self.state_dir)}`",
                )
            if profile is None or profile not in parser:
                raise TargetError(f"profile {profile!r} not in {self.credentials_file}", value=profile)
            sec = parser[profile]
            return Credentials(sec["aws_access_key_id"], sec["aws_secret_access_key"], sec.get("aws_session_token"))
        import boto3  # deferred: boto3 takes ~100 ms to import and `loadcheck --help` loads this module

        creds = boto3.Session(profile_name=profile, region_name=self.region).get_credentials()
        if creds is None:
            raise TargetError(
                "no AWS credentials found",
                value=profile,
                hint="configure credentials (aws configure, AWS_PROFILE, or --profile)",
            )
        frozen = creds.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

    def boto3_session(self, role: str = "admin") -> Any:
        import boto3  # deferred: boto3 takes ~100 ms to import and `loadcheck --help` loads this module

        if self.credentials_file:
            c = self.credentials(role)
            return boto3.Session(
                aws_access_key_id=c.access_key,
                aws_secret_access_key=c.secret_key,
                aws_session_token=c.token,
                region_name=self.region,
            )
        return boto3.Session(profile_name=self.profiles.get(role), region_name=self.region)

    def client(self, service: str, role: str = "admin", **config: Any) -> Any:
        from botocore.config import Config  # deferred: loads botocore (~75 ms); `loadcheck --help` loads this module

        cfg = Config(retries={"mode": "standard", "max_attempts": 5}, **config)
        return self.boto3_session(role).client(service, endpoint_url=self.aws_endpoint_url, config=cfg)


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
