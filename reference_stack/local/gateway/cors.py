"""API-level CORS (docs/aws-behaviour.md §5; AGW:http-api-cors and its live page).

What AWS documents and this module does:
- With a CORS configuration, API Gateway answers a preflight (``OPTIONS`` with both ``Origin``
  and ``Access-Control-Request-Method``) itself, before routing and without authorization.
- On other requests with an ``Origin`` it adds the configured CORS headers to the response;
  CORS headers from the integration are dropped.
- ``allow_origins`` entries: exact origins, ``*``, or a scheme wildcard such as ``https://*``.

Choices (UNCONFIRMED, docs/aws-behaviour.md §10.5):
- A preflight is answered ``204`` with an empty body.
- A preflight from an origin that is not allowed (or for a method not allowed) is still
  ``204`` but carries no ``Access-Control-*`` headers, so the browser refuses it.
- ``Access-Control-Allow-Origin`` echoes the request's origin (``*`` only when ``*`` is
  configured and credentials are not allowed); ``Vary: Origin`` is added when echoing.
- ``allow_headers`` containing ``*`` echoes the requested headers.
- The configured headers go on the gateway's own error answers (403/404/413/429/5xx) too, not
  only on the function's responses.
"""

from __future__ import annotations

from reference_stack.local.gateway.config import Cors


def origin_allowed(cors: Cors, origin: str) -> bool:
    for allowed in cors.allow_origins:
        if allowed == "*" or allowed == origin:
            return True
        if allowed.endswith("://*") and origin.startswith(allowed[:-1]):
            return True
    return False


def is_preflight(cors: Cors | None, method: str, origin: str | None, request_method: str | None) -> bool:
    return cors is not None and method == "OPTIONS" and bool(origin) and bool(request_method)


def _allow_origin(cors: Cors, origin: str) -> list[tuple[str, str]]:
    if "*" in cors.allow_origins and not cors.allow_credentials:
        return [("access-control-allow-origin", "*")]
    return [("access-control-allow-origin", origin), ("vary", "origin")]


def preflight_headers(
    cors: Cors, origin: str, request_method: str, request_headers: str | None
) -> list[tuple[str, str]]:
    """Headers of the 204 preflight answer (empty when the origin or method is not allowed)."""
    method = request_method.strip().upper()
    methods = cors.allow_methods
    if not origin_allowed(cors, origin) or not (("*" in methods) or method in methods):
        return []
    out = _allow_origin(cors, origin)
    out.append(("access-control-allow-methods", ",".join(methods) if methods else method))
    if "*" in cors.allow_headers:
        if request_headers:
            out.append(("access-control-allow-headers", request_headers.lower()))
    elif cors.allow_headers:
        out.append(("access-control-allow-headers", ",".join(cors.allow_headers)))
    if cors.max_age is not None:
        out.append(("access-control-max-age", str(cors.max_age)))
    if cors.allow_credentials:
        out.append(("access-control-allow-credentials", "true"))
    return out


def response_headers(cors: Cors, origin: str | None) -> list[tuple[str, str]]:
    """CORS headers added to a normal response (empty without a matching ``Origin``)."""
    if not origin or not origin_allowed(cors, origin):
        return []
    out = _allow_origin(cors, origin)
    if cors.expose_headers:
        out.append(("access-control-expose-headers", ",".join(cors.expose_headers)))
    if cors.allow_credentials:
        out.append(("access-control-allow-credentials", "true"))
    return out


def strip_backend_cors(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """§5: with API-level CORS, CORS headers returned by the integration are ignored."""
    return [(n, v) for n, v in headers if not n.lower().startswith("access-control-")]
