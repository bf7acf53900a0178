"""Revoking a hospital client: one ``client`` entry on the log saying which registration of
which client, its keys, who, when and why. The check and the entry are pure here; a running
hub commits it through its sequencer (:meth:`.control.AccessControl.revoke_client`), and
``swiftchain clients revoke`` with the hub stopped appends it to the ledger file under the
writer lock (:mod:`.offline`). Either way the access store follows the entry.

From the next request on, the revoked registration's access tokens are refused (401
``invalid_token``), its assertions too (401 ``invalid_client``), and its keys can be
registered again by no one; the client itself may be registered again with a new key."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ledger.entries import ClientEntry

from ..errors import ConfigError, RegistryError
from .clients import ClientId
from .db import AccessDb, ClientRow

#: No NUL: the access store keeps the reason as text, and PostgreSQL text holds none.
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=512, pattern=r"^[^\x00]*$"),
]


class ClientRevoke(BaseModel):
    """Revoke a client: its id, and why (for the log: e.g. "private key leaked")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: ClientId
    reason: Reason
    #: Who asks, as the caller names itself (the admin token is shared, so the hub cannot
    #: tell): ``swiftchain clients revoke --url`` sends ``cli:<login>``.
    requested_by: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:@-]{1,64}$")] | None = None


def plan_revocation(
    row: ClientRow | None, change: ClientRevoke, actor: str, at: str
) -> ClientEntry:
    """The ``client`` entry revoking ``row``'s current registration, or RegistryError
    (``unknown_client``: no such client; ``client_revoked``: revoked already)."""
    if row is None:
        raise RegistryError("unknown_client", f"no registered client {change.client_id!r}")
    if row.revocation is not None:
        raise RegistryError(
            "client_revoked",
            f"client {change.client_id} was revoked already, {row.revocation.describe()}",
        )
    client = row.client
    return ClientEntry(
        action="client.revoke",
        at=at,
        actor=actor,
        client=client.client_id,
        org=client.org,
        pilot=client.pilot,
        registration=client.version,
        keys=client.thumbprints(),
        reason=change.reason,
    )


def replay_revocations(db: AccessDb, leaves: Iterable[tuple[int, bytes]]) -> None:
    """Bring the access store up to the log's ``client`` entries ((index, leaf), in log
    order): a revocation committed just before a crash is in force after it too."""
    for index, leaf in leaves:
        try:
            entry = ClientEntry.model_validate_json(leaf)
        except ValidationError:
            # Refuse to start rather than forget a revocation (fail closed).
            raise ConfigError(
                f"log entry {index} is not a well-formed client revocation;"
                " check the ledger with: swiftchain ledger verify"
            ) from None
        db.record_revocation(entry, index)
