"""An abstract Locust ``FastHttpUser`` that signs every request with SigV4 for ``execute-api``.

FastHttpUser only knows Basic auth (docs/load-tools.md §2), so the user computes the SigV4
headers itself with :class:`loadcheck.core.sigv4.Signer`
(the same signature as botocore's ``SigV4Auth``; the signing key cached per day and scope, the
canonical request's fixed parts per request shape)
and passes them as ``headers=``. Bodies are serialized and hashed once by the caller and sent as
``data=bytes`` (``json=`` would serialize again inside ``request()``, after signing). The
``Accept-Encoding`` header Locust adds after signing is simply left unsigned, which AWS allows.

Host header and signed host are the custom domain (with ``:port`` when not 443, as botocore and
curl send it); the TCP connection goes where :mod:`locustfiles.resolve` maps the domain, with
TLS SNI = domain and the certificate verified against the target's CA bundle
(docs/aws-behaviour.md §1.2(b): the signature must cover the host the client actually used).

Credentials: a :class:`CredentialSource` either holds fixed keys or a botocore credentials
object: under ``loadcheck run``, on either target, a session of the requester role that the
target's caller assumed (``Target.role_credentials``); with plain ``locust -f``, the AWS
credential chain or ``--aws-profile``. Refreshable credentials (assumed roles, SSO) are re-read
with ``get_frozen_credentials()`` before each signature; botocore assumes the role again shortly
before the session expires.
"""

from __future__ import annotations

from locust import User
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, FastHttpUser, FastResponse
from locust.exception import CatchResponseError

import hashlib
import http
import time
from typing import Any

from loadcheck.core.errors import ConfigError
from loadcheck.core.sigv4 import EMPTY_SHA256, Signer
from locustfiles import locust_compat
from locustfiles.resolve import ResolvingClientPool, ssl_context_factory
from locustfiles.signing import SigningContext
from locustfiles.workload import encode_query

SERVICE = "execute-api"
_JSON = {"content-type": "application/json"}  # the one header signed besides host and x-amz-*
ACCEPT_ENCODING = "gzip, deflate, br"  # what FastHttpSession.request adds to every request


def failure_name(status: int) -> str:
    """``429 Too Many Requests``: what Locust lists as the failure, so kinds are counted apart."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown Status"


class SigV4FastHttpUser(FastHttpUser):
    """Abstract: subclasses call :meth:`signed_request`. Needs ``environment.loadcheck_signing``."""

    abstract = True
    insecure = False

    def __init__(self, environment: Any) -> None:
        signing: SigningContext | None = getattr(environment, "loadcheck_signing", None)
        if signing is None:
            raise ConfigError(
                "SigV4FastHttpUser needs environment.loadcheck_signing (a SigningContext)",
                hint="run it from locustfiles/eventlog.py, or set it in an init event listener",
            )
        self.signing = signing
        # Instance attributes shadow FastHttpUser's class settings before its __init__ reads them.
        self.host = signing.url
        self.insecure = not signing.verify_tls
        self.ssl_context_factory = ssl_context_factory(signing.ca_bundle)
        self.network_timeout = signing.timeout_s
        self.connection_timeout = min(10.0, signing.timeout_s)
        super().__init__(environment)
        if signing.resolves:
            pool = locust_compat.client_pool(self.client)
            locust_compat.set_client_pool(self.client, ResolvingClientPool(signing.resolves, **pool.client_args))
        # Locust internals, looked up once per user (locustfiles/locust_compat.py checks them).
        self._send, self._base_url, self._fire = locust_compat.session_parts(self.client)
        self._signer = Signer(SERVICE, signing.region)
        self._host_header = signing.host_header
        self._send_host = signing.client_host_header != self._host_header
        self._own_context = type(self).context is not User.context  # Locust's own returns {}
        self._prepared: dict[tuple[str, str, bool], tuple[str | None, tuple[str, str, str, str]]] = {}

    def signed_request(
        self,
        method: str,
        route: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        meta: dict[str, Any] | None = None,
    ) -> FastResponse:
        """Sign and send; returns the response (already reported: 2xx success, else the status as failure).

        ``meta`` (e.g. ``t_intended``, ``item``) reaches Locust's request event as
        ``context["loadcheck"]``, with ``route`` and the ``path`` as sent added here.

        The request goes out the way ``FastHttpSession.request`` sends it (its safe-mode send,
        ``Accept-Encoding``, body read inside the response time, the user's ``context()``) and
        is reported with one ``request`` event, without the catch-response context manager
        (what ``catch_response=True`` would do, for a fraction of the work on each request).
        """
        qs = encode_query(query) if query else ""
        creds = self.signing.credentials.get()
        # The request's shape (method, path, signed headers, token), prepared once per user.
        prepared = self._prepared.get((method, path, bool(body)))
        if prepared is None or prepared[0] is not creds.token:
            shape = self._signer.prepare(method, self._host_header, path, _JSON if body else None, creds.token)
            assert shape is not None  # only host, content-type and x-amz-*: nothing the signer sets itself
            prepared = self._prepared[(method, path, bool(body))] = (creds.token, shape)
            if len(self._prepared) > 256:  # paths with ids in them: stay bounded
                self._prepared.clear()
        if body:  # hashed once, here
            headers = self._signer.sign_prepared(prepared[1], creds, qs, hashlib.sha256(body).hexdigest())
            headers["Content-Type"] = "application/json"
        else:
            headers = self._signer.sign_prepared(prepared[1], creds, qs, EMPTY_SHA256)
        if self._send_host:
            headers["Host"] = self._host_header
        url = f"{path}?{qs}" if qs else path
        headers["Accept-Encoding"] = ACCEPT_ENCODING
        loadcheck = {**meta, "route": route, "path": url} if meta else {"route": route, "path": url}
        user_context = self.context() if self._own_context else None
        context = {**user_context, "loadcheck": loadcheck} if user_context else {"loadcheck": loadcheck}
        full_url = self._base_url + url
        start_time = time.time()
        started = time.perf_counter()
        response = self._send(method, full_url, payload=body or None, headers=headers)
        exception: BaseException | None = None
        length = 0
        try:
            content = response.content  # reads the body: part of the response time, as in Locust
            length = len(content) if content else 0
        except FAILURE_EXCEPTIONS as exc:
            exception = exc
        response_time = (time.perf_counter() - started) * 1000
        status = response.status_code or 0
        if exception is None and not 200 <= status < 300:
            # 429 Too Many Requests, 409 Conflict ...: counted by kind. No status: the
            # connection error, timeout or TLS failure itself.
            exception = CatchResponseError(failure_name(status)) if status else response.error
        self._fire(
            request_type=method,
            name=route,
            context=context,
            response=response,
            exception=exception,
            start_time=start_time,
            url=full_url,
            response_length=length,
            response_time=response_time,
        )
        return response
