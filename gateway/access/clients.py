"""Registering hospital clients (SMART Backend Services): who they are (organisation and
pilot), the public JWK set their assertions are signed with, and the scopes they may ask
for. One check for both ways in: the admin API and ``swiftchain clients``."""

from __future__ import annotations

from typing import Annotated, Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field

from ledger.envelope import Slug
from pilots import Pilot

from ..errors import BadParameter, RegistryError
from ..smart.assertion import RegisteredClient
from ..smart.errors import OAuthError
from ..smart.scopes import parse_scopes

ClientId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,128}$")]


class ClientRegistration(BaseModel):
    """A hospital client: its id, organisation, pilot, public JWK set and allowed scopes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: ClientId
    org: Slug
    pilot: Slug
    jwks: dict[str, Any]
    scopes: Annotated[
        list[Annotated[str, Field(max_length=80)]], Field(min_length=1, max_length=32)
    ]
    #: No NUL: a PostgreSQL access store cannot hold one in text (and no name needs it).
    name: Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")] = ""


class ClientList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: list[dict[str, Any]]


def check_registration(reg: ClientRegistration, pilots: dict[str, Pilot]) -> RegisteredClient:
    """The client to store, or BadParameter / RegistryError saying what is wrong."""
    pilot = pilots.get(reg.pilot)
    if pilot is None:
        raise RegistryError("unknown_pilot", f"this hub has no pilot {reg.pilot!r}")
    if pilot.member(reg.org) is None:
        raise RegistryError(
            "not_a_member", f"organisation {reg.org!r} is not a member of pilot {reg.pilot!r}"
        )
    try:
        parse_scopes(" ".join(reg.scopes))
    except OAuthError as exc:
        raise BadParameter(exc.description, code="invalid_scope") from None
    keys = reg.jwks.get("keys")
    if not isinstance(keys, list) or not keys or len(keys) > 10:
        raise BadParameter('jwks must be {"keys": [...]} with 1 to 10 public keys', code="jwks")
    if any(not isinstance(k, dict) or "d" in k or k.get("kty") == "oct" for k in keys):
        raise BadParameter("jwks must hold public asymmetric keys only", code="jwks")
    try:
        KeySet.import_key_set(reg.jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise BadParameter(f"jwks is not a usable JWK set: {exc}", code="jwks") from None
    return RegisteredClient(
        client_id=reg.client_id,
        org=reg.org,
        pilot=reg.pilot,
        jwks=reg.jwks,
        scopes=tuple(reg.scopes),
        name=reg.name,
    )
