"""Local stack state files under the state directory (default ``.loadcheck/``).

    stack.json        where everything is (documented keys, no secrets)
    credentials       AWS shared-credentials file: profiles loadcheck-admin/-requester/-denied
    identities.json   every identity's keys and identity policies (mode 0600; read by the
                      gateway, the search service and the Lambda service; never reported)
    ca.pem            the local CA that issued the gateway's certificate
    services/<name>.json   each service's config (written by the supervisor)
    services/<name>.ready  each service's {"port", "pid"} once it listens
    logs/<name>.log   each service's stderr/stdout

stack.json keys: version, region, account_id, api_id, aws_endpoint_url, search_endpoint,
search_index, table_name, access_log_group, lambda_log_groups {events, search},
function_names {events, search}, credentials_file, identities_file, profiles {admin, requester,
denied}, ca_bundle, domain, gateway {host, port, url, address}, lambda_endpoint, services
{name: {url, pid}}, supervisor_pid, started_at, faults.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core.errors import StackNotRunning

STATE_DIR_ENV = "LOADCHECK_STATE_DIR"
DEFAULT_STATE_DIR = ".loadcheck"
ACCOUNT_ID = "123456789012"  # moto's default account
PROFILES = {"admin": "loadcheck-admin", "requester": "loadcheck-requester", "denied": "loadcheck-denied"}


def resolve_state_dir(arg: str | os.PathLike[str] | None = None) -> Path:
    """Argument, then ``$LOADCHECK_STATE_DIR``, then ``.loadcheck`` in the working directory."""
    value = arg or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR
    return Path(value).expanduser().resolve()


def stack_command(args: str, state_dir: str | os.PathLike[str] | None = None) -> str:
    """``loadcheck stack ARGS``, with ``--state-dir`` when ``state_dir`` is not the one a bare command uses.

    Hints that suggest a stack command build it here, so following a hint acts on the user's
    stack, not on the default one.
    """
    command = f"loadcheck stack {args}"
    if state_dir is not None and Path(state_dir).expanduser().resolve() != resolve_state_dir(None):
        command += f" --state-dir {shlex.quote(str(state_dir))}"
    return command


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o644, sort_keys: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=sort_keys)
            fh.write("\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Identity:
    """One principal of the local account, with its keys and identity-based policies.

    ``arn`` is what AWS reports as the caller (a user ARN, or an ``assumed-role`` session ARN
    for roles); ``principal_arn`` is what a resource policy names (the user or role ARN).
    """

    name: str
    arn: str
    principal_arn: str
    user_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    policies: list[dict[str, Any]] = field(default_factory=list)


def write_identities(path: Path, identities: dict[str, Identity], account_id: str = ACCOUNT_ID) -> None:
    write_json_atomic(
        path, {"account_id": account_id, "identities": {k: asdict(v) for k, v in identities.items()}}, mode=0o600
    )


def load_identities(path: str | os.PathLike[str]) -> dict[str, Identity]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {k: Identity(**v) for k, v in data["identities"].items()}


def secrets_by_access_key(identities: dict[str, Identity]) -> dict[str, tuple[str, str | None]]:
    return {i.access_key_id: (i.secret_access_key, i.session_token) for i in identities.values()}


def identity_by_access_key(identities: dict[str, Identity]) -> dict[str, Identity]:
    return {i.access_key_id: i for i in identities.values()}


def read_stack_json(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "stack.json"
    if not path.is_file():
        raise StackNotRunning(
            f"no local stack in {state_dir} (no stack.json)",
            value=str(state_dir),
            hint=f"start one with `{stack_command('up --detach', state_dir)}`",
        )
    return json.loads(path.read_text(encoding="utf-8"))
