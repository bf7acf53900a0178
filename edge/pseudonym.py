"""Pseudonymisation of the person a record is about.

The subject of a record is HMAC-SHA256(pilot pseudonymisation key, local patient id), in
hex: the same person gets the same pseudonym at every source of the pilot, nobody without
the key can link it back, and the raw identifier never leaves the agent. Hex (not base64url)
because the pseudonym also becomes a FHIR ``Patient.id``, whose alphabet has no ``_``.

The HMAC is keyed by the pilot's own pseudonymisation key and is no part of the log: it stays
HMAC-SHA256 whatever the log's crypto suite (``sm2-sm3`` too), so that every source of a
pilot makes the same pseudonym of the same person.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from .errors import ConfigError

MIN_KEY_BYTES = 32
_HEX = re.compile(rb"^[0-9a-fA-F]+$")


class Pseudonymiser:
    def __init__(self, key: bytes, pilot: str) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"a pseudonymisation key has at least {MIN_KEY_BYTES} bytes")
        self._key = key
        #: Identifier.system of pseudonymised identifiers in FHIR payloads.
        self.system = f"urn:swiftchain:{pilot}:pseudonym"

    def pseudonym(self, local_id: str) -> str:
        return hmac.new(self._key, local_id.encode("utf-8"), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never show the key
        return f"Pseudonymiser(system={self.system!r})"


def load_pseudonym_key(path: Path) -> bytes:
    """The key in ``path``: hex text (64+ digits) or at least 32 raw bytes."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read pseudonymisation key {path}: {exc.strerror}") from None
    text = raw.strip()
    if len(text) >= 2 * MIN_KEY_BYTES and len(text) % 2 == 0 and _HEX.match(text):
        return bytes.fromhex(text.decode("ascii"))
    if len(raw) < MIN_KEY_BYTES:
        raise ConfigError(
            f"{path} holds {len(raw)} bytes; a pseudonymisation key has at least "
            f"{MIN_KEY_BYTES} (e.g. `head -c 32 /dev/urandom | xxd -p -c 64 > {path}`)"
        )
    return raw
