"""Hub-issued access tokens: short-lived Ed25519-signed JWTs (RFC 9068 ``at+jwt``).

The algorithm is named ``Ed25519`` (RFC 9864, which deprecates the polymorphic ``EdDSA``).

Self-contained tokens let more than one hub worker check them with the same public key. Each
carries the version of the client's registration it was issued under (claim
``registration``), checked against the current one on every request
(:func:`check_current_registration`): re-registering a client with fewer scopes, or revoking
it, ends its earlier tokens at once rather than when they expire.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from .errors import InvalidToken, OAuthError
from .scopes import Scope, parse_scopes

#: SMART Backend Services: `expires_in` "recommended value is 300, for a five-minute token
#: lifetime".
ACCESS_TOKEN_LIFETIME = 300
TOKEN_TYPE = "at+jwt"
MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True)
class AccessToken:
    client_id: str
    org: str
    pilot: str
    scopes: tuple[Scope, ...]
    expires_at: int
    jti: str
    registration: str
    """The version of the client's registration the token was issued under."""
    purposes: tuple[str, ...] = ()
    """The purposes of use the token is bound to (claim ``purpose_of_use``, from the client
    assertion's HL7 B2B extension); empty: each request names its own."""


def issue_access_token(
    *,
    key: OKPKey,
    issuer: str,
    client_id: str,
    org: str,
    pilot: str,
    scopes: list[Scope],
    registration: str,
    now: int,
    lifetime: int = ACCESS_TOKEN_LIFETIME,
    purposes: tuple[str, ...] = (),
) -> tuple[str, AccessToken]:
    lifetime = min(lifetime, ACCESS_TOKEN_LIFETIME)
    jti = os.urandom(16).hex()
    scope_text = " ".join(str(s) for s in scopes)
    claims = {
        "iss": issuer,
        "sub": client_id,
        "client_id": client_id,
        "aud": issuer,
        "org": org,
        "pilot": pilot,
        "scope": scope_text,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti,
        "registration": registration,
    }
    if purposes:
        claims["purpose_of_use"] = list(purposes)
    header = {"alg": "Ed25519", "typ": TOKEN_TYPE, "kid": key.thumbprint()}
    token = jwt.encode(header, claims, key, algorithms=["Ed25519"])
    return token, AccessToken(
        client_id, org, pilot, tuple(scopes), now + lifetime, jti, registration, purposes
    )


def check_access_token(token: str, *, key: OKPKey, issuer: str, now: int) -> AccessToken:
    """Verify a bearer token this hub issued; raise InvalidToken with the reason."""
    if not token or len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("missing or oversize bearer token")
    try:
        decoded = jwt.decode(token, key, algorithms=["Ed25519"])
    except (JoseError, ValueError, TypeError):
        raise InvalidToken("the access token's signature does not verify") from None
    if decoded.header.get("typ") != TOKEN_TYPE:
        raise InvalidToken("not an access token")
    c = decoded.claims
    if c.get("iss") != issuer or c.get("aud") != issuer:
        raise InvalidToken("the access token was issued by another server")
    exp = c.get("exp")
    if not isinstance(exp, int) or exp <= now:
        raise InvalidToken("the access token has expired")
    registration = c.get("registration")
    if not isinstance(registration, str) or not registration:
        raise InvalidToken("the access token names no client registration; get a new token")
    purposes = c.get("purpose_of_use", [])
    if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
        raise InvalidToken("the access token's purpose_of_use claim is malformed")
    try:
        scopes = parse_scopes(str(c.get("scope", "")))
        return AccessToken(
            str(c["client_id"]),
            str(c["org"]),
            str(c["pilot"]),
            tuple(scopes),
            exp,
            str(c["jti"]),
            registration,
            tuple(purposes),
        )
    except (KeyError, OAuthError) as exc:
        raise InvalidToken(f"the access token's claims are malformed: {exc}") from None


def check_current_registration(
    token: AccessToken, current: Mapping[str, str], revoked: Mapping[str, str] | None = None
) -> None:
    """Refuse a token whose client is no longer registered, was registered again since, or
    whose current registration was revoked (``current``: client id -> version of its
    registration now; ``revoked``: version of a revoked registration -> why, when, by whom)."""
    version = current.get(token.client_id)
    if version is None:
        raise InvalidToken(f"client {token.client_id} is no longer registered")
    why = (revoked or {}).get(version)
    if why is not None:
        raise InvalidToken(f"client revoked: {token.client_id} {why}; its tokens no longer work")
    if version != token.registration:
        raise InvalidToken(
            f"client {token.client_id} was registered again since this token was issued;"
            " get a new token"
        )
