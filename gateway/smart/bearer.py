"""The bearer check every data route calls: ``Authorization: Bearer <access token>`` to the
caller (RFC 6750). It raises ``Unauthorized`` (RFC 6750 3.1), which each route family renders
in its own error shape (JSON or OperationOutcome).

A token's signature is checked once and cached until it expires; whether its client's
registration is still the one it was issued under is checked on every request, against the
versions the access store keeps in memory."""

from __future__ import annotations

import time

from aiohttp import web

from ..access.control import AccessControl, Caller
from ..appkeys import ACCESS, hub_of
from ..errors import Unauthorized
from .errors import InvalidToken
from .tokens import AccessToken, check_access_token, check_current_registration


def access_of(request: web.Request) -> AccessControl:
    return request.app[ACCESS]


def issuer(request: web.Request) -> str:
    """The hub's base URL: configured, or the one the request came in on (the issuer and
    audience of its own access tokens; never the audience a client assertion must name,
    which :func:`~.assertion.expected_audiences` takes from the settings alone)."""
    configured = hub_of(request).settings.public_url
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}"


def authenticate(request: web.Request) -> Caller:
    """The caller of a data route, from ``Authorization: Bearer <access token>``."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise Unauthorized(
            "send Authorization: Bearer <access token> (get one at /oauth/token)",
            code="missing_token",
        )
    raw = raw.strip()
    access = access_of(request)
    now = int(time.time())
    base = issuer(request)
    claims = access.token_cache.get((base, raw))
    if claims is None or claims.expires_at <= now:
        claims = _verify(access, raw, base, now)
    if access.db.versions.get(claims.client_id) != claims.registration:
        # Registered (again) through another process of the hub, or ``swiftchain clients``:
        # the file says which registration is current (read only when memory disagrees).
        access.db.client(claims.client_id)
    try:
        check_current_registration(claims, access.db.versions, access.db.revoked)
    except InvalidToken as exc:
        raise Unauthorized(exc.description, code="invalid_token") from None
    return Caller(claims.client_id, claims.org, claims.pilot, claims)


def _verify(access: AccessControl, raw: str, base: str, now: int) -> AccessToken:
    try:
        claims = check_access_token(raw, key=access.key.key, issuer=base, now=now)
    except InvalidToken as exc:
        raise Unauthorized(exc.description, code="invalid_token") from None
    if len(access.token_cache) > 10_000:
        access.token_cache = {t: c for t, c in access.token_cache.items() if c.expires_at > now}
    access.token_cache[(base, raw)] = claims
    return claims
