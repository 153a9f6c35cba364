"""Local stack state files under the state directory (default ``.loadcheck/``).

    stack.json        where everything is (documented keys, no secrets)
    credentials       AWS shared-credentials file: the caller's profile ``loadcheck-admin``
                      (keys), and ``loadcheck-requester``/``-denied``/``-search-admin`` naming
                      the roles (``role_arn`` + ``source_profile``, as the aws CLI assumes them)
    identities.json   every user's and function role's keys, the roles requester, denied and
                      search-admin (trust and permission policies, no keys), identity policies
                      (mode 0600; read by the gateway, search, Lambda and aws services)
    sessions.json     the role sessions the aws endpoint's STS issued (keys, token, expiry;
                      mode 0600; written by the aws service, read with identities.json)
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
search_index, table_name, export_bucket, access_log_group, lambda_log_groups {events, search},
function_names {events, search}, credentials_file, identities_file, profiles {admin, requester,
denied, search-admin}, requester_role_arn, denied_role_arn, search_admin_role_arn, ca_bundle, domain, gateway {host, port, url, address}, lambda_endpoint, services
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
PROFILES = {
    "admin": "loadcheck-admin",
    "requester": "loadcheck-requester",
    "denied": "loadcheck-denied",
    "search-admin": "loadcheck-search-admin",
}
# The roles the Terraform creates besides the function roles (reference_stack/terraform/iam.tf),
# with the output (and stack.json key) naming each one's ARN.
ROLE_ARN_KEYS = {
    "requester": "requester_role_arn",
    "denied": "denied_role_arn",
    "search-admin": "search_admin_role_arn",
}
SESSIONS_FILE = "sessions.json"
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
    expires_at: float | None = None  # epoch seconds; role sessions from STS only

    @property
    def principal(self) -> Principal:
        """The caller as the IAM evaluator sees it."""
        return Principal(arn=self.arn, principal_arn=self.principal_arn)


@dataclass
class Role:
    """A role callers assume through STS (requester, denied, search-admin): no keys of its own.

    ``trust_policy`` says who may assume it; ``policies`` are its identity-based policies, which
    every session of the role carries.
    """

    name: str  # the IAM role name, e.g. loadcheck-requester
    arn: str
    trust_policy: dict[str, Any]
    policies: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RoleSession:
    """Temporary credentials STS issued for a role (``sessions.json``)."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at: float  # epoch seconds
    arn: str  # arn:aws:sts::<acct>:assumed-role/<role-name>/<session-name>
    role_arn: str
    user_id: str  # <role id>:<session name>


def write_identities(
    path: Path, identities: dict[str, Identity], account_id: str = ACCOUNT_ID, roles: dict[str, Role] | None = None
) -> None:
    doc: dict[str, Any] = {"account_id": account_id, "identities": {k: asdict(v) for k, v in identities.items()}}
    if roles:
        doc["roles"] = {k: asdict(v) for k, v in roles.items()}
    write_json_atomic(path, doc, mode=0o600)


def load_identities(path: str | os.PathLike[str]) -> dict[str, Identity]:
    return load_identities_and_roles(path)[0]


def load_identities_and_roles(path: str | os.PathLike[str]) -> tuple[dict[str, Identity], dict[str, Role]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    identities = {k: Identity(**v) for k, v in data["identities"].items()}
    return identities, {k: Role(**v) for k, v in data.get("roles", {}).items()}


def sessions_file_for(identities_file: str | os.PathLike[str]) -> Path:
    """``sessions.json`` lives beside ``identities.json``: the aws service writes it, the others read it."""
    return Path(identities_file).with_name(SESSIONS_FILE)


def read_sessions(path: str | os.PathLike[str]) -> dict[str, RoleSession]:
    """Role sessions by access key; a missing file is no sessions."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {k: RoleSession(**v) for k, v in data["sessions"].items()}


def record_session(path: str | os.PathLike[str], session: RoleSession, *, now: float, keep_expired_s: float) -> None:
    """Add ``session`` to ``sessions.json`` atomically, dropping sessions expired for longer than
    ``keep_expired_s`` (kept a while so their keys are answered "expired", as AWS does, not
    "invalid"). One writer (the aws service, under its own lock)."""
    sessions = read_sessions(path)
    sessions = {k: v for k, v in sessions.items() if v.expires_at + keep_expired_s > now}
    sessions[session.access_key_id] = session
    write_json_atomic(Path(path), {"sessions": {k: asdict(v) for k, v in sessions.items()}}, mode=0o600)


def _session_identities(roles: dict[str, Role], sessions: dict[str, RoleSession]) -> dict[str, tuple[str, Identity]]:
    """Each session of a known role as an Identity named after the role (so it carries the role's
    policies); sessions of roles identities.json does not name are left out (their keys are unknown)."""
    by_arn = {role.arn: (key, role) for key, role in roles.items()}
    out: dict[str, tuple[str, Identity]] = {}
    for access_key, s in sessions.items():
        if s.role_arn not in by_arn:
            continue
        key, role = by_arn[s.role_arn]
        out[access_key] = (
            key,
            Identity(
                name=key,
                arn=s.arn,
                principal_arn=role.arn,
                user_id=s.user_id,
                access_key_id=s.access_key_id,
                secret_access_key=s.secret_access_key,
                session_token=s.session_token,
                policies=role.policies,
                expires_at=s.expires_at,
            ),
        )
    return out


@dataclass(frozen=True)
class Identities:
    """One consistent set of identities with their identity-based policies parsed (so a policy the
    IAM evaluator cannot decide is refused when the set is built, not when a request arrives)."""

    by_name: dict[str, Identity]  # users and function roles (role sessions are found by key)
    by_key: dict[str, Identity]
    secrets: dict[str, tuple[str, str | None]]  # access key -> (secret, session token)
    policies: dict[str, tuple[Policy, ...]]  # identity (or role) name -> its identity-based policies
    expiry: dict[str, float] = field(default_factory=dict)  # access key -> epoch s (role sessions)
    roles: dict[str, Role] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        identities: dict[str, Identity],
        *,
        where: str = "identities",
        roles: dict[str, Role] | None = None,
        sessions: dict[str, RoleSession] | None = None,
    ) -> Identities:
        """Raises ConfigError naming ``<where>.<name>.policies[i]`` and the statement."""
        roles = roles or {}
        session_ids = {k: ident for k, (_, ident) in _session_identities(roles, sessions or {}).items()}
        documents = {name: ident.policies for name, ident in identities.items()} | {
            name: role.policies for name, role in roles.items()
        }
        every = {i.access_key_id: i for i in identities.values()} | session_ids
        return cls(
            by_name=dict(identities),
            by_key=every,
            secrets={k: (i.secret_access_key, i.session_token) for k, i in every.items()},
            policies={
                name: tuple(
                    Policy.parse(doc, kind=PolicyKind.IDENTITY, where=f"{where}: {name}.policies[{n}]")
                    for n, doc in enumerate(docs)
                )
                for name, docs in documents.items()
            },
            expiry={k: i.expires_at for k, i in session_ids.items() if i.expires_at is not None},
            roles=dict(roles),
        )

    def current(self) -> Identities:
        """A fixed set is its own source (see :class:`IdentityStore`, which services take)."""
        return self

    def for_key(self, access_key: str | None) -> Identities:
        return self


def read_identities(path: str | os.PathLike[str]) -> Identities:
    """identities.json (with the role sessions of the sessions.json beside it) as an
    :class:`Identities` set; every problem is a ConfigError."""
    hint = "regenerate it with `loadcheck stack up` (the supervisor writes identities.json)"
    sessions_path = sessions_file_for(path)
    try:
        identities, roles = load_identities_and_roles(path)
    except FileNotFoundError:
        raise ConfigError(f"identities file {path} does not exist", value=str(path), hint=hint) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"identities file {path} is not valid ({exc})", value=str(path), hint=hint) from exc
    try:
        sessions = read_sessions(sessions_path)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"sessions file {sessions_path} is not valid ({exc})",
            value=str(sessions_path),
            hint="delete it: the aws service writes it again at the next sts:AssumeRole",
        ) from exc
    return Identities.of(identities, where=str(path), roles=roles, sessions=sessions)


class IdentityStore:
    """identities.json and the sessions.json beside it, re-read when either's inode, mtime or size
    changes, so the supervisor can rotate keys and STS can issue role sessions while the gateway,
    search and Lambda services run. The files are looked at no more often than every ``recheck_s``
    seconds (a ``stat`` per request would be a system call, and a GIL hand-off, on the hot path),
    except that :meth:`for_key` looks at once when a request names an access key the set does not
    hold: a session STS has just issued is usable at once, as on AWS. Thread-safe: a reader gets
    one whole :class:`Identities` set.

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
        self._sessions_path = str(sessions_file_for(path))
        self._stamp: tuple[tuple[int, int, int] | None, ...] | None = None
        self._current: Identities | None = None

    @property
    def path(self) -> str:
        return self._path

    def for_key(self, access_key: str | None) -> Identities:
        """The current set; when it lacks ``access_key``, the files are looked at now."""
        current = self.current()
        if access_key is None or access_key in current.secrets:
            return current
        return self.current(force=True)

    def current(self, *, force: bool = False) -> Identities:
        now = self._clock()
        current = self._current
        if current is not None and now < self._next_check and not force:
            return current
        with self._lock:
            # The next check is scheduled only once the file has been read: a thread arriving
            # while another loads waits here instead of seeing a half-built (first: no) set.
            if self._current is not None and now < self._next_check and not force:
                return self._current
            stamp = (_stamp(self._path), _stamp(self._sessions_path))
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


def _stamp(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def read_stack_json(state_dir: Path) -> dict[str, Any]:
    path = state_dir / "stack.json"
    if not path.is_file():
        raise StackNotRunning(
            f"no local stack in {state_dir} (no stack.json)",
            value=str(state_dir),
            hint=f"start one with `{stack_command('up --detach', state_dir)}`",
        )
    return json.loads(path.read_text(encoding="utf-8"))
