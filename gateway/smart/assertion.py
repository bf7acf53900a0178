"""Checking a SMART Backend Services client assertion (RFC 7523 2.2, SMART Backend Services).

Pure: the caller passes the registered client, the audiences the token endpoint answers to,
the time and the ``jti`` memory. Every failure is ``OAuthError('invalid_client', ...)`` with
status 401, as the SMART specification asks, and a description precise enough for an
integration engineer.
"""

from __future__ import annotations

import base64
import binascii
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..access.purpose import PurposeError, purpose_code
from .errors import OAuthError

#: Signature algorithms a client may use. Never ``none`` and never an HMAC (HS*): a client's
#: keys are public, so an HMAC "signed" with one proves nothing (the HS/ES confusion attack).
ASSERTION_ALGORITHMS = ("ES384", "ES256", "EdDSA", "Ed25519", "RS384")
#: SMART: the assertion's ``exp`` is no more than five minutes in the future.
MAX_ASSERTION_LIFETIME = 300
#: Allowed clock skew between a client and the hub, in seconds.
CLOCK_SKEW = 30
MAX_ASSERTION_BYTES = 8192
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_PATH = "/oauth/token"
#: The key of the HL7 B2B authorization extension object in an assertion's ``extensions``
#: claim (UDAP Security, B2B authorization extension).
B2B_EXTENSION = "hl7-b2b"
MAX_PURPOSES = 16


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status=401)


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    org: str
    pilot: str
    jwks: Mapping[str, Any]
    """The client's public JWK set (``{"keys": [...]}``)."""
    scopes: tuple[str, ...] = ("system/*.rs",)
    name: str = ""
    version: str = ""
    """Which registration of this client this is: the access store gives every registration
    its own (empty until stored). Access tokens carry it, so that re-registering or revoking
    a client ends the tokens of its earlier registration."""
    revoked: str = ""
    """Why this registration was revoked, when and by whom, for error messages; empty while
    it is in force. A revoked client gets no token, whatever it signs."""

    def key_set(self) -> KeySet:
        try:
            return KeySet.import_key_set(dict(self.jwks))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise _invalid(
                f"client {self.client_id}'s registered JWK set is unusable: {exc}"
            ) from None

    def thumbprints(self) -> tuple[str, ...]:
        """The RFC 7638 (SHA-256) thumbprints of its keys: what a revocation names."""
        return tuple(k.thumbprint() for k in self.key_set().keys)


class JtiStore(Protocol):
    """Where every process of a hub records the ``jti`` values used (the access store), so an
    assertion replayed to another front end, or after a restart, is refused too."""

    def claim_jti(self, client_id: str, jti: str, exp: int, now: int, skew: int) -> bool:
        """Record the use; False if it was used before and that use has not expired."""
        ...


@dataclass
class JtiMemory:
    """``jti`` values already used, each kept until its assertion would have expired:
    in memory, and in ``store`` when there is one (shared by the hub's processes)."""

    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    store: JtiStore | None = None

    def use(self, client_id: str, jti: str, exp: int, now: int) -> None:
        if len(self.seen) > 10_000:
            self.seen = {k: e for k, e in self.seen.items() if e + CLOCK_SKEW >= now}
        key = (client_id, jti)
        replayed = key in self.seen and self.seen[key] + CLOCK_SKEW >= now
        if not replayed and self.store is not None:
            replayed = not self.store.claim_jti(client_id, jti, exp, now, CLOCK_SKEW)
        if replayed:
            raise _invalid("this assertion's jti was already used; make a new assertion")
        self.seen[key] = exp


def _segment(token: str, i: int) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise _invalid("client_assertion is not a compact JWS (three dot-separated parts)")
    try:
        raw = base64.urlsafe_b64decode(parts[i] + "=" * (-len(parts[i]) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid("client_assertion header or claims are not base64url JSON") from None
    if not isinstance(value, dict):
        raise _invalid("client_assertion header and claims must be JSON objects")
    return value


def unverified_client_id(assertion: str) -> str:
    """The ``iss`` the assertion claims, to look the client up before checking anything."""
    if len(assertion) > MAX_ASSERTION_BYTES:
        raise _invalid("client_assertion is too large")
    iss = _segment(assertion, 1).get("iss")
    if not isinstance(iss, str) or not iss or len(iss) > 128:
        raise _invalid("client_assertion has no iss (the client_id)")
    return iss


def expected_audiences(public_url: str | None, token_audiences: Sequence[str]) -> tuple[str, ...]:
    """The ``aud`` values an assertion may name: this hub's token endpoint under its configured
    URL, and any other names configured for it. Never the request's ``Host``: an assertion made
    for another hub that has registered the same client would then be accepted here (RFC 7523
    3, item 3: the audience identifies the authorization server)."""
    configured = [public_url.rstrip("/") + TOKEN_PATH] if public_url else []
    return tuple(dict.fromkeys([*configured, *token_audiences]))


@dataclass(frozen=True)
class ClientAssertion:
    client: RegisteredClient
    jti: str
    exp: int
    purposes: tuple[str, ...] = ()
    """The purposes of use the client asserts (``extensions.hl7-b2b.purpose_of_use``)."""


def b2b_purposes(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The PurposeOfUse codes of an assertion's HL7 B2B authorization extension
    (``{"extensions": {"hl7-b2b": {"purpose_of_use": ["urn:oid:2.16.840.1.113883.5.8#TREAT"]}}}``),
    or none. A malformed extension is refused, never read as "no purpose": the token would
    otherwise be wider than the client asked for."""
    extensions = claims.get("extensions")
    if extensions is None:
        return ()
    if not isinstance(extensions, dict):
        raise OAuthError("invalid_request", "the assertion's extensions claim must be an object")
    b2b = extensions.get(B2B_EXTENSION)
    if b2b is None:
        return ()
    where = f"the assertion's extensions.{B2B_EXTENSION}.purpose_of_use"
    values = b2b.get("purpose_of_use") if isinstance(b2b, dict) else None
    if (
        not isinstance(values, list)
        or not values
        or len(values) > MAX_PURPOSES
        or not all(isinstance(v, str) for v in values)
    ):
        raise OAuthError(
            "invalid_request",
            f"{where} must be an array of 1 to {MAX_PURPOSES} HL7 v3 PurposeOfUse codes,"
            ' e.g. ["urn:oid:2.16.840.1.113883.5.8#TREAT"]',
        )
    try:
        codes = [purpose_code(v, where) for v in values]
    except PurposeError as exc:
        raise OAuthError("invalid_request", exc.detail) from None
    return tuple(dict.fromkeys(codes))


def check_client_assertion(
    assertion: str,
    *,
    client: RegisteredClient | None,
    audiences: Sequence[str],
    now: int,
    jti_memory: JtiMemory,
    client_id: str | None = None,
) -> ClientAssertion:
    """Verify ``assertion`` for ``client`` at a token endpoint known as ``audiences`` (the
    first is its name in errors) at time ``now``."""
    header = _segment(assertion, 0)
    claims_preview = _segment(assertion, 1)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none":
        raise _invalid("alg 'none' is not allowed; sign with ES384 or EdDSA")
    if alg not in ASSERTION_ALGORITHMS:
        raise _invalid(f"alg {alg!r} is not accepted; use one of {', '.join(ASSERTION_ALGORITHMS)}")
    if client is None:
        raise _invalid(f"no registered client {claims_preview.get('iss')!r}")
    if client.revoked:
        # Before the signature: a leaked key is exactly what signs these assertions.
        raise _invalid(f"client revoked: {client.client_id} {client.revoked}")
    if client_id is not None and client_id != client.client_id:
        raise _invalid("client_id does not match the assertion's iss")
    kid = header.get("kid")
    keys = client.key_set()
    if kid is not None and not any(k.kid == kid for k in keys.keys):
        raise _invalid(f"kid {str(kid)[:64]!r} is not in the client's registered JWK set")
    try:
        with warnings.catch_warnings():
            # joserfc warns that "EdDSA" is deprecated by RFC 9864; SMART clients still use it.
            warnings.simplefilter("ignore")
            token = jwt.decode(assertion, keys, algorithms=[alg])
    except JoseError as exc:
        raise _invalid(f"signature does not verify ({exc.error})") from None
    except (ValueError, TypeError):
        raise _invalid("signature does not verify") from None
    claims = token.claims
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise _invalid("iss and sub must both be the client_id")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not audiences or not any(a in audiences for a in named if isinstance(a, str)):
        shown = audiences[0] if audiences else "(none configured)"
        raise _invalid(f"aud must be the token endpoint {shown}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise _invalid("exp is required (a NumericDate)")
    if exp + CLOCK_SKEW < now:
        raise _invalid("the assertion has expired")
    if exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise _invalid(f"exp is more than {MAX_ASSERTION_LIFETIME} s in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, int) and nbf > now + CLOCK_SKEW:
        raise _invalid("the assertion is not valid yet (nbf)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise _invalid("jti is required")
    purposes = b2b_purposes(claims)
    jti_memory.use(client.client_id, jti, exp, now)
    return ClientAssertion(client, jti, exp, purposes)


Lookup = Callable[[str], RegisteredClient | None]
