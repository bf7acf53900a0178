"""Personal fields sealed out of a public leaf (docs/privacy.md, docs/wire.md "Wire v2").

A v2 leaf holds no person: where a v1 leaf named a subject, a Consent id, a request or a
per-person reason, a v2 leaf holds one salted commitment, ``person`` =
hex SHA-256(salt ‖ JCS(fields)), the construction the payload's ``commitment`` already uses.
The *opening* (the 16-byte salt and the fields) lives off the log in the hub's private store,
beside the bodies, and is erased with them; whoever holds an opening (the person's own audit
view, an auditor's mandate) checks it against the public leaf, and whoever does not learns
nothing from the leaf: a fresh salt on every entry keeps two entries about one person from
looking alike, and keeps a guessed pseudonym from being confirmed against a leaf.

After a person's erasure their audit trail must stay readable to them and their auditors
while no file of the hub still spells their pseudonym or Consent id: the hub then keeps the
openings that name them *blinded* (:func:`blind`): AES-256-GCM under a key derived from the
pilot and the pseudonym, found by a tag derived the same way. Whoever already knows the
pseudonym (the person's advocate asking for their audit view, an auditor with a mandate)
opens them; the files alone give nothing (a pseudonym is a 256-bit HMAC output: not guessed).

Pure functions only; the store keeps openings as :meth:`Opening.encode` bytes.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .canonical import canonical_json
from .errors import InvalidEnvelope
from .keys import b64url_decode, b64url_encode
from .suite import DEFAULT_SUITE, Suite

#: Bytes of salt of every opening (as the payload's salt).
SALT_BYTES = 16
#: The leaf member that holds the commitment in every v2 leaf.
PERSON = "person"


@dataclass(frozen=True)
class Opening:
    """The salt (unpadded base64url) and the fields one ``person`` commitment covers."""

    salt: str
    fields: Mapping[str, Any]

    def commitment(self, suite: Suite = DEFAULT_SUITE) -> str:
        """hex HASH(salt ‖ JCS(fields)), HASH the log's suite's (SHA-256, SM3)."""
        return commit(b64url_decode(self.salt), self.fields, suite)

    def opens(self, commitment: object, suite: Suite = DEFAULT_SUITE) -> bool:
        """Whether this opening is the one ``commitment`` was made from (constant time)."""
        if not isinstance(commitment, str):
            return False
        try:
            mine = self.commitment(suite)
        except (ValueError, InvalidEnvelope):
            return False
        return hmac.compare_digest(mine, commitment)

    def encode(self) -> bytes:
        """The stored form: JCS of ``{"fields": ..., "salt": ...}``."""
        return canonical_json({"fields": dict(self.fields), "salt": self.salt})

    @classmethod
    def decode(cls, raw: bytes) -> Opening:
        """The opening :meth:`encode` stored; InvalidEnvelope if it is not one."""
        try:
            value = json.loads(raw)
        except (ValueError, TypeError) as exc:
            raise InvalidEnvelope("invalid_opening", f"not JSON: {exc}") from None
        if (
            not isinstance(value, dict)
            or set(value) != {"fields", "salt"}
            or not isinstance(value["fields"], dict)
            or not isinstance(value["salt"], str)
        ):
            raise InvalidEnvelope(
                "invalid_opening", 'an opening is {"fields": {...}, "salt": "..."}'
            )
        return cls(value["salt"], value["fields"])

    def public(self) -> dict[str, Any]:
        """What a person's audit view or an auditor receives to check a leaf themselves."""
        return {"salt": self.salt, "fields": dict(self.fields)}


def commit(salt: bytes, fields: Mapping[str, Any], suite: Suite = DEFAULT_SUITE) -> str:
    """hex HASH(salt ‖ JCS(fields)), HASH the suite's; ``None`` fields are left out."""
    if len(salt) != SALT_BYTES:
        raise InvalidEnvelope("invalid_opening", f"a salt is {SALT_BYTES} bytes")
    return suite.hexdigest(salt + canonical_json(_present(fields)))


def seal(fields: Mapping[str, Any], *, salt: bytes | None = None) -> Opening:
    """An opening of ``fields`` (``None`` members left out) under a fresh random salt."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if not isinstance(salt, bytes) or len(salt) != SALT_BYTES:
        raise InvalidEnvelope("invalid_opening", f"a salt is {SALT_BYTES} bytes")
    return Opening(b64url_encode(salt), _present(fields))


def opened(
    leaf: Mapping[str, Any], opening: Opening | None, suite: Suite = DEFAULT_SUITE
) -> dict[str, Any]:
    """A leaf as its readers know it: a v1 leaf as it is; a v2 leaf with the fields of its
    opening in place of ``person`` (when the opening is held and matches), or without them."""
    view = dict(leaf)
    commitment = view.pop(PERSON, None)
    if opening is not None and commitment is not None and opening.opens(commitment, suite):
        for name, value in opening.fields.items():
            view.setdefault(name, value)
    return view


NONCE_BYTES = 12


def subject_tag(pilot: str, subject: str) -> str:
    """What the blinded openings about ``subject`` in ``pilot`` are found by (hex)."""
    return _derive(b"swiftchain/blinded-tag", pilot, subject).hex()


def blind(opening: Opening, *, pilot: str, subject: str, index: int) -> bytes:
    """``opening`` sealed for whoever knows ``subject``: nonce ‖ AES-256-GCM(key, opening),
    bound to the entry's ``index`` (associated data), so a box cannot be moved to another."""
    nonce = os.urandom(NONCE_BYTES)
    key = AESGCM(_derive(b"swiftchain/blinded-key", pilot, subject))
    return nonce + key.encrypt(nonce, opening.encode(), str(index).encode())


def unblind(box: bytes, *, pilot: str, subject: str, index: int) -> Opening:
    """The opening :func:`blind` sealed; InvalidEnvelope for another subject, index or a
    damaged box."""
    key = AESGCM(_derive(b"swiftchain/blinded-key", pilot, subject))
    try:
        raw = key.decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], str(index).encode())
    except (InvalidTag, ValueError):
        raise InvalidEnvelope("invalid_opening", "the blinded opening does not open") from None
    return Opening.decode(raw)


def _derive(label: bytes, pilot: str, subject: str) -> bytes:
    return sha256(b"\n".join((label, pilot.encode(), subject.encode()))).digest()


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
