"""The supervisor proper: starts the four services in order, writes stack.json, stops them.

Order: aws (moto + governor) -> provision table, log groups, IAM users and roles -> search ->
index + corpus (:func:`reference_stack.corpus.load_corpus`, signed as a session of the
search-admin role, as ``loadcheck corpus load`` does) -> lambda -> gateway -> stack.json. stack.json appears only once everything is healthy; it is
removed on a clean stop. Each service's config comes from :mod:`reference_stack.local.common.configs`
and each process from :mod:`reference_stack.local.common.launcher`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from loadcheck import __version__
from loadcheck.core import faults as fault_registry
from loadcheck.core import roles as role_sessions
from loadcheck.core.chaos import DETECT_SLACK_S, RESTART_TIMEOUT_S, RESTARTABLE, Outage, clear_outages, record_outage
from loadcheck.core.description import SEARCH_ALLOW_EXPLICIT_INDEX, StackDescription
from loadcheck.core.errors import StackError
from loadcheck.core.state import (
    ACCOUNT_ID,
    ADMIN_TOKEN_FILE,
    PROFILES,
    ROLE_ARN_KEYS,
    admin_headers,
    make_state_dir,
    write_admin_token,
    write_identities,
    write_json_atomic,
)
from reference_stack import corpus
from reference_stack.local import provision
from reference_stack.local.common import configs
from reference_stack.local.common.launcher import READY_TIMEOUT_S, ServiceProcess, kill_group
from reference_stack.local.common.tls import TlsFiles, issue_certificate

SERVICES = ("aws", "search", "lambda", "gateway")
# Which service owns which fault: the registry's (loadcheck.core.faults, docs/load.md).
FAULT_OWNERS = {name: spec.service for name, spec in fault_registry.FAULTS.items()}

Progress = Callable[[str], None]


def no_progress(_: str) -> None:
    pass


def service_url(name: str, port: int) -> str:
    scheme = "https" if name == "gateway" else "http"
    return f"{scheme}://127.0.0.1:{port}"


def write_tls(state_dir: Path, domain: str, default_host: str) -> TlsFiles:
    """The local CA (``<state>/ca.pem``) and the gateway's certificate (domain, default
    execute-api host, and 127.0.0.1 so the supervisor can reach the admin paths)."""
    return issue_certificate(
        names=[domain, default_host, "127.0.0.1"],
        ca_file=state_dir / "ca.pem",
        cert_file=state_dir / "tls" / "gateway.pem",
        key_file=state_dir / "tls" / "gateway-key.pem",
    )


class Supervisor:
    """Owns the service processes of one state directory."""

    def __init__(
        self,
        *,
        state_dir: Path,
        description: StackDescription,
        ports: dict[str, int] | None = None,
        faults: dict[str, Any] | None = None,
        burst_start: str = "full",
        progress: Progress = no_progress,
        load_corpus: bool = True,
    ) -> None:
        self.state_dir = state_dir
        self.desc = description
        self.ports = {s: 0 for s in SERVICES} | (ports or {})
        self.faults = faults or {}
        self.burst_start = burst_start
        self.progress = progress
        self.load_corpus = load_corpus  # False: the index is left to `loadcheck corpus load`
        self.procs: dict[str, ServiceProcess] = {}
        self.urls: dict[str, str] = {}
        self.stack: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        sd = self.state_dir
        make_state_dir(sd)  # 0700: it holds every identity's keys and the admin token
        write_admin_token(sd)
        clear_outages(sd)
        (sd / "services").mkdir(exist_ok=True)
        (sd / "logs").mkdir(exist_ok=True)
        for stale in (sd / "services").glob("*.ready"):
            stale.unlink()
        # moto's state lives only in its process, so every start is a fresh account: the search
        # index must start empty too, or provisioning would find the previous run's index.
        shutil.rmtree(sd / "search-data", ignore_errors=True)
        desc = self.desc
        api_id = provision.new_api_id()
        default_host = configs.execute_api_host(api_id, desc.region)
        ids = provision.make_identities(desc, api_id)
        roles = provision.make_roles(desc, api_id)
        identities_file = sd / "identities.json"
        (sd / "sessions.json").unlink(missing_ok=True)  # the previous stack's STS sessions
        write_identities(identities_file, ids, roles=roles)
        credentials_file = sd / "credentials"
        provision.write_credentials_file(credentials_file, ids, roles, desc.region)
        tls = write_tls(sd, desc.domain_name, default_host)
        base = configs.ServiceBase(
            region=desc.region, identities_file=identities_file, admin_token_file=sd / ADMIN_TOKEN_FILE
        )
        faults_for = {s: {k: v for k, v in self.faults.items() if FAULT_OWNERS[k] == s} for s in SERVICES}

        self.progress("starting aws (moto + DynamoDB capacity governor)")
        aws_url = self._start(
            "aws",
            configs.aws_config(
                base,
                ready_file=self._ready_file("aws"),
                port=self.ports["aws"],
                burst_start=self.burst_start,
                faults=faults_for["aws"],
            ),
        )
        provision.provision_aws(desc, aws_url, ids, roles, api_id)
        self.progress(
            f"  table {desc.table.name} ({desc.table.billing_mode} {desc.table.read_capacity} RCU / "
            f"{desc.table.write_capacity} WCU), log groups, the caller and roles "
            f"{', '.join(r.name for r in roles.values())} created"
        )

        self.progress("starting search (OpenSearch-compatible, tantivy)")
        search_url = self._start(
            "search",
            configs.search_config(
                base,
                ready_file=self._ready_file("search"),
                port=self.ports["search"],
                domain_arn=desc.search_domain_arn(ACCOUNT_ID),
                access_policy=provision.search_access_policy(desc, ids, roles),
                data_dir=sd / "search-data",
                engine_version=desc.search.engine_version,
                allow_explicit_index=SEARCH_ALLOW_EXPLICIT_INDEX,
            ),
        )
        if self.load_corpus:
            report = corpus.load_corpus(
                corpus.signed_client(search_url, self._search_admin(aws_url, ids, roles), desc.region),
                desc.search.index,
            )
            self.progress(f"  {report.summary}")
        else:
            self.progress(f"  index {desc.search.index} not created (load it with `loadcheck corpus load`)")

        self.progress("starting lambda (Runtime API + awslambdaric environments)")
        lambda_url = self._start(
            "lambda",
            configs.lambda_config(
                base,
                ready_file=self._ready_file("lambda"),
                port=self.ports["lambda"],
                aws_endpoint_url=aws_url,
                functions=configs.stack_functions(desc, search_endpoint=search_url),
                faults=faults_for["lambda"],
            ),
        )

        self.progress("starting gateway (HTTP API on the custom domain, TLS 1.2+)")
        gw_cfg = configs.stack_gateway_config(
            base,
            desc,
            ready_file=self._ready_file("gateway"),
            port=self.ports["gateway"],
            api_id=api_id,
            tls=tls,
            lambda_endpoint=lambda_url,
            aws_endpoint_url=aws_url,
            faults=faults_for["gateway"],
        )
        gw_url = self._start("gateway", gw_cfg, ca=tls.ca_file)
        gw_port = int(gw_url.rsplit(":", 1)[1])

        self.stack = {
            "version": 1,
            "loadcheck_version": __version__,
            "state_dir": str(sd),
            "region": desc.region,
            "account_id": ACCOUNT_ID,
            "api_id": api_id,
            "aws_endpoint_url": aws_url,
            "search_endpoint": search_url,
            "search_index": desc.search.index,
            "table_name": desc.table.name,
            "export_bucket": desc.export_bucket(ACCOUNT_ID),
            "access_log_group": desc.access_log.log_group,
            "lambda_log_groups": {k: fn.log_group for k, fn in desc.functions.items()},
            "function_names": {k: fn.name for k, fn in desc.functions.items()},
            "credentials_file": str(credentials_file),
            "identities_file": str(identities_file),
            "profiles": dict(PROFILES),
            **{key: roles[role].arn for role, key in ROLE_ARN_KEYS.items()},
            "ca_bundle": tls.ca_file,
            "domain": desc.domain_name,
            "default_endpoint_host": default_host,
            "gateway": {
                "host": desc.domain_name,
                "port": gw_port,
                "address": "127.0.0.1",
                "url": f"https://{desc.domain_name}:{gw_port}",
            },
            "lambda_endpoint": lambda_url,
            "routes": list(desc.routes),
            "description": desc.path,
            "services": {name: {"url": self.urls[name], "pid": p.pid} for name, p in self.procs.items()},
            "supervisor_pid": os.getpid(),
            "started_at": time.time(),
            "faults": self.faults,
        }
        write_json_atomic(sd / "stack.json", self.stack)
        return self.stack

    def _search_admin(self, aws_url: str, ids: dict[str, Any], roles: dict[str, Any]) -> Any:
        """Credentials of a search-admin session, assumed by the caller through the aws endpoint."""
        import boto3  # deferred: boto3 takes ~100 ms to import and `loadcheck --help` loads this module

        admin = ids["admin"]
        sts = boto3.Session(
            aws_access_key_id=admin.access_key_id,
            aws_secret_access_key=admin.secret_access_key,
            region_name=self.desc.region,
        ).client("sts", endpoint_url=aws_url)
        return role_sessions.assume_role(sts, roles["search-admin"].arn, role="search-admin")

    def _ready_file(self, name: str) -> Path:
        return self.state_dir / "services" / f"{name}.ready"

    def _start(
        self, name: str, config: dict[str, Any], ca: str | None = None, timeout_s: float = READY_TIMEOUT_S
    ) -> str:
        """Launch one service and wait until its ready file is written and it answers health."""
        proc = ServiceProcess.for_service(
            name,
            config,
            config_path=self.state_dir / "services" / f"{name}.json",
            log_path=self.state_dir / "logs" / f"{name}.log",
        )
        self.procs[name] = proc  # registered first: stop() cleans up a service that failed to start
        proc.start()

        def healthy(port: int) -> bool:
            with contextlib.suppress(requests.RequestException):
                verify: bool | str = ca if (ca and name == "gateway") else True
                resp = requests.get(
                    f"{service_url(name, port)}/_loadcheck/health",
                    timeout=2,
                    verify=verify,
                    headers=admin_headers(self.state_dir),
                )
                return resp.status_code == 200
            return False

        port = proc.wait_ready(timeout_s, healthy=healthy)
        self.urls[name] = service_url(name, port)
        return self.urls[name]

    def handle_death(self, name: str) -> Outage:
        """Record that service ``name`` died and, if it is stateless, start it again on its port.

        What is left of the dead service's process group (Lambda execution environments) is
        killed first. The outage goes to ``<state>/outages.json`` at once (``up_at`` None) and
        again once the service answers health. The aws endpoint is not restarted: moto's table,
        logs and metrics lived in the dead process, so the outage is ``fatal``; so is a restart
        that fails within :data:`RESTART_TIMEOUT_S`.
        """
        old = self.procs[name]
        detected = time.time()
        outage = Outage(
            service=name,
            pid=old.pid,
            down_at=detected - DETECT_SLACK_S,
            detected_at=detected,
            exit_status=old.returncode,
        )
        kill_group(old.pid)
        if name not in RESTARTABLE:
            outage.fatal = True
            outage.reason = f"{name} holds state in memory and is not restarted"
            record_outage(self.state_dir, outage)
            return outage
        record_outage(self.state_dir, outage)
        config = dict(old.config) | {"port": old.port}  # the same URL: stack.json and the other services keep it
        try:
            self._start(name, config, ca=self.stack.get("ca_bundle"), timeout_s=RESTART_TIMEOUT_S)
        except StackError as exc:
            outage.fatal = True
            outage.reason = f"restart failed: {exc.message}"
        else:
            outage.up_at = time.time()
            self.stack["services"][name] = {"url": self.urls[name], "pid": self.procs[name].pid}
            write_json_atomic(self.state_dir / "stack.json", self.stack)
        record_outage(self.state_dir, outage)
        return outage

    def check_children(self) -> str | None:
        """Name of a service that died, if any."""
        for name, p in self.procs.items():
            if p.returncode is not None:
                return name
        return None

    def stop(self) -> None:
        """Stop every service in reverse start order, one at a time.

        The gateway and the lambda service ship their last logs to the aws endpoint while they
        shut down, so aws must outlive them: each gets SIGTERM and up to 10 s before the next
        one is asked, then its whole process group is killed.
        """
        for name in reversed(list(self.procs)):
            self.procs[name].stop()
        with contextlib.suppress(FileNotFoundError):
            (self.state_dir / "stack.json").unlink()
