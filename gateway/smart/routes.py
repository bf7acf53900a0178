"""Hospital authentication, SMART Backend Services style: the token endpoint
(``client_credentials`` with a signed JWT client assertion, RFC 7523 2.2), the discovery
document and the token key set. The bearer check the data routes call is ``bearer.py``.

Errors at the token endpoint are RFC 6749 5.2 JSON (``{error, error_description}``).

An assertion's audience comes from the settings (``public_url``, ``token_audiences``), never
from the request: once a client is registered, a hub with neither answers every token request
with a 503 saying so.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from ..appkeys import hub_of
from .assertion import (
    ASSERTION_ALGORITHMS,
    ASSERTION_TYPE,
    TOKEN_PATH,
    check_client_assertion,
    expected_audiences,
    unverified_client_id,
)
from .bearer import access_of, issuer
from .errors import OAuthError
from .scopes import grant, parse_scopes, supported_scopes
from .tokens import issue_access_token

routes = web.RouteTableDef()

MAX_FORM_BYTES = 16 * 1024
#: Scopes this hub can grant (SMART v2), advertised in the discovery document: exactly what
#: :func:`~.scopes.grant` gives.
SUPPORTED_SCOPES = supported_scopes()


#: Why a hub that does not know its own URL issues no token (and logs at start).
NO_AUDIENCE = (
    "this hub does not know its own URL, so it cannot tell an assertion made for it from one"
    " made for another hub: set public_url (or token_audiences) in the hub's config"
)


def _oauth_error(exc: OAuthError) -> web.Response:
    return web.json_response(
        {"error": exc.error, "error_description": exc.description},
        status=exc.status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@routes.post(TOKEN_PATH)
async def token(request: web.Request) -> web.Response:
    """RFC 6749 4.4 with RFC 7523 client authentication (SMART Backend Services)."""
    try:
        return await _token(request)
    except OAuthError as exc:
        return _oauth_error(exc)


async def _token(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "send the form as application/x-www-form-urlencoded")
    if (request.content_length or 0) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", "the request body is too large")
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_request", "the body is not a valid form") from None

    def field(name: str, required: bool = True) -> str | None:
        values = form.getall(name, [])
        if len(values) > 1:
            raise OAuthError("invalid_request", f"{name} is given more than once")
        value = values[0] if values else None
        if not isinstance(value, str) or value == "":
            if required:
                raise OAuthError("invalid_request", f"{name} is required")
            return None
        return value

    grant_type = field("grant_type")
    if grant_type != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type", "only grant_type=client_credentials is supported"
        )
    if field("client_assertion_type") != ASSERTION_TYPE:
        raise OAuthError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = field("client_assertion")
    scope_text = field("scope")
    assert assertion is not None and scope_text is not None
    requested = parse_scopes(scope_text)
    access = access_of(request)
    client_id = unverified_client_id(assertion)
    loop = asyncio.get_running_loop()
    # A client lookup is a read of the access store; signature checks take ~0.1 ms.
    client = await loop.run_in_executor(None, access.db.client, client_id)
    settings = hub_of(request).settings
    audiences = expected_audiences(settings.public_url, settings.token_audiences)
    if not audiences and access.db.versions:
        raise OAuthError("server_error", NO_AUDIENCE, status=503)
    base = issuer(request)
    checked = check_client_assertion(
        assertion,
        client=client,
        audiences=audiences,
        now=int(time.time()),
        jti_memory=access.jti_memory,
        client_id=field("client_id", required=False),
    )
    registered = checked.client
    allowed = parse_scopes(" ".join(registered.scopes))
    scopes = grant(requested, allowed)
    raw, claims = issue_access_token(
        key=access.key.key,
        issuer=base,
        client_id=registered.client_id,
        org=registered.org,
        pilot=registered.pilot,
        scopes=scopes,
        registration=registered.version,
        now=int(time.time()),
        lifetime=settings.access_token_lifetime_s,
        purposes=checked.purposes,
    )
    return web.json_response(
        {
            "access_token": raw,
            "token_type": "bearer",
            "expires_in": claims.expires_at - int(time.time()),
            "scope": " ".join(str(s) for s in scopes),
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@routes.get("/.well-known/smart-configuration")
async def smart_configuration(request: web.Request) -> web.Response:
    base = issuer(request)
    return web.json_response(
        {
            "issuer": base,
            "token_endpoint": base + TOKEN_PATH,
            "jwks_uri": base + "/oauth/jwks",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "scopes_supported": list(SUPPORTED_SCOPES),
            "capabilities": ["client-confidential-asymmetric", "permission-v2"],
        }
    )


@routes.get("/oauth/jwks")
async def jwks(request: web.Request) -> web.Response:
    """The public key that verifies this hub's access tokens (RFC 7517)."""
    return web.json_response(access_of(request).key.public_jwks())
