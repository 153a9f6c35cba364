"""Local stack state files under the state directory (default ``.loadcheck/``).

    stack.json        where everything is (documented keys, no secrets)
    credentials       AWS shared-credentials file: profiles loadcheck-admin/-requester/-denied
    identities.json   every identity's keys and identity policies (mode 0600; read by the
                      gateway, the search service and the Lambda service; never reported)
    ca.pem            the local CA that issued the gateway's certificate
    admin-token       the per-stack token every ``/_loadcheck/*`` request must carry in the
                      ``X-Loadcheck-Admin-Token`` header (mode 0600; never logged or reported)
    outages.json      every service death the supervisor saw, and its restart (``Outage``)
    services/<name>.json   each service's config (written by the supervisor)
    services/<name>.ready  each service's {"port", "pid"} once it listens
    logs/<name>.log   each service's stderr/stdout

The directory itself is created mode 0700 (:func:`make_state_dir`): it holds keys and the admin
token, so no other local user may list or read it.

stack.json keys: version, region, account_id, api_id, aws_endpoint_url, search_endpoint,
search_index, table_name, access_log_group, lambda_log_groups {events, search},
function_names {events, search}, credentials_file, identities_file, profiles {admin, requester,
denied}, ca_bundle, domain, gateway {host, port, url, address}, lambda_endpoint, services
{name: {url, pid}}, supervisor_pid, started_at, faults.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadcheck.core.errors import ConfigError, StackNotRunning
from loadcheck.core.iam import Policy, PolicyKind, Principal

log = logging.getLogger("loadcheck.identities")

STATE_DIR_ENV = "LOADCHECK_STATE_DIR"
DEFAULT_STATE_DIR = ".loadcheck"
ACCOUNT_ID = "123456789012"  # moto's default account
PROFILES = {"admin": "loadcheck-admin", "requester": "loadcheck-requester", "denied": "loadcheck-denied"}
STATE_DIR_MODE = 0o700
SECRET_FILE_MODE = 0o600
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret
ADMIN_TOKEN_HEADER = "X-Loadcheck-Admin-Token"  # noqa: S105 - a header name
OUTAGES_FILE = "outages.json"


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


def make_state_dir(state_dir: Path) -> Path:
    """Create the state directory (and its parents) and make it 0700, also when it existed."""
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, STATE_DIR_MODE)
    return state_dir


def write_admin_token(state_dir: Path) -> str:
    """A new per-stack admin token in ``<state>/admin-token`` (0600); returns it."""
    token = secrets.token_urlsafe(32)
    path = state_dir / ADMIN_TOKEN_FILE
    fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="ascii") as fh:  # mkstemp makes it 0600 from the start
        fh.write(token + "\n")
    os.replace(tmp, path)
    return token


def read_admin_token(state_dir: Path | str | None) -> str | None:
    """The admin token of the stack in ``state_dir``; None when there is none (no stack started there)."""
    if state_dir is None:
        return None
    try:
        return (Path(state_dir) / ADMIN_TOKEN_FILE).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def admin_headers(state_dir: Path | str | None) -> dict[str, str]:
    """The header an admin client sends to a service of the stack in ``state_dir``."""
    token = read_admin_token(state_dir)
    return {ADMIN_TOKEN_HEADER: token} if token else {}


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

    @property
    def principal(self) -> Principal:
        """The caller as the IAM evaluator sees it."""
        return Principal(arn=self.arn, principal_arn=self.principal_arn)


def write_identities(path: Path, identities: dict[str, Identity], account_id: str = ACCOUNT_ID) -> None:
    write_json_atomic(
        path, {"account_id": account_id, "identities": {k: asdict(v) for k, v in identities.items()}}, mode=0o600
    )


def load_identities(path: str | os.PathLike[str]) -> dict[str, Identity]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return {k: Identity(**v) for k, v in data["identities"].items()}


@dataclass(frozen=True)
class Identities:
    """One consistent set of identities with their identity-based policies parsed (so a policy the
    IAM evaluator cannot decide is refused when the set is built, not when a request arrives)."""

    by_name: dict[str, Identity]
    by_key: dict[str, Identity]
    secrets: dict[str, tuple[str, str | None]]  # access key -> (secret, session token)
    policies: dict[str, tuple[Policy, ...]]  # identity name -> its identity-based policies

    @classmethod
    def of(cls, identities: dict[str, Identity], *, where: str = "identities") -> Identities:
        """Raises ConfigError naming ``<where>.<name>.policies[i]`` and the statement."""
        return cls(
            by_name=dict(identities),
            by_key={i.access_key_id: i for i in identities.values()},
            secrets={i.access_key_id: (i.secret_access_key, i.session_token) for i in identities.values()},
            policies={
                name: tuple(
                    Policy.parse(doc, kind=PolicyKind.IDENTITY, where=f"{where}: {name}.policies[{n}]")
                    for n, doc in enumerate(ident.policies)
                )
                for name, ident in identities.items()
            },
        )

    def current(self) -> Identities:
        """A fixed set is its own source (see :class:`IdentityStore`, which services take)."""
        return self


def read_identities(path: str | os.PathLike[str]) -> Identities:
    """identities.json as an :class:`Identities` set; every problem is a ConfigError."""
    hint = "regenerate it with `loadcheck stack up` (the supervisor writes identities.json)"
    try:
        identities = load_identities(path)
    except FileNotFoundError:
        raise ConfigError(f"identities file {path} does not exist", value=str(path), hint=hint) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"identities file {path} is not valid ({exc})", value=str(path), hint=hint) from exc
    return Identities.of(identities, where=str(path))


class IdentityStore:
    """identities.json, re-read when its inode, mtime or size changes, so the supervisor can rotate
    keys while the gateway, search and Lambda services run. The file is looked at no more often
    than every ``recheck_s`` seconds (a ``stat`` per request would be a system call, and a GIL
    hand-off, on the hot path). Thread-safe: a reader gets one whole :class:`Identities` set.

    The first load raises ConfigError (missing file, bad JSON, a policy the IAM evaluator cannot
    decide). A later change that cannot be loaded keeps the last good set and logs the error at
    ERROR level until the file changes again: the supervisor replaces the file atomically, so this
    only happens to a hand-edited file, and a running service keeps its keys meanwhile.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, recheck_s: float = 0.5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._path = str(path)
        self._recheck_s = recheck_s
        self._clock = clock
        self._next_check = float("-inf")
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._current: Identities | None = None

    @property
    def path(self) -> str:
        return self._path

    def current(self) -> Identities:
        now = self._clock()
        current = self._current
        if current is not None and now < self._next_check:
            return current
        with self._lock:
            # The next check is scheduled only once the file has been read: a thread arriving
            # while another loads waits here instead of seeing a half-built (first: no) set.
            if self._current is not None and now < self._next_check:
                return self._current
            try:
                st = os.stat(self._path)
                stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            if self._current is None or stamp != self._stamp:
                try:
                    self._current = read_identities(self._path)
                except ConfigError as exc:
                    if self._current is None:
                        raise
                    log.error("%s; keeping the identities loaded before", exc)
                self._stamp = stamp
            self._next_check = self._clock() + self._recheck_s
            return self._current


def read_stack_json(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "stack.json"
    if not path.is_file():
        raise StackNotRunning(
            f"no local stack in {state_dir} (no stack.json)",
            value=str(state_dir),
            hint=f"start one with `{stack_command('up --detach', state_dir)}`",
        )
    return json.loads(path.read_text(encoding="utf-8"))
