"""What the ledger's store seals under data keys, under which, and how a read opens it again
(schema "3"; the keys and their rules are :mod:`ledger.datakeys` and :mod:`ledger.keystore`).

Sealed, each under the key of its entry's scope (:class:`ledger.datakeys.Scope`):

- a record's body (its salt and JCS(payload): :func:`ledger.datakeys.body_plaintext`), its
  opening and its device origin: the record's (pilot, subject, Consent, type, day);
- the opening of a ``consent`` entry: (pilot, subject, Consent, ``@consent``);
- the opening of an ``access`` entry about a person: (pilot, subject, ``@access``).

Left in the open (``key_id`` NULL), as every row before schema "3": the openings no path
ever erases (``erasure`` entries, ``access`` entries about nobody or no pilot), an opening
stored blinded (:func:`ledger.sealed.blind`: the blinded table is not sealed), and every row
a writer without a key store writes. A read opens a sealed value with its key; a value whose
key is destroyed reads as erased. Without a key store a sealed value cannot be read at all:
:func:`keys_of` says which setting is missing.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .datakeys import DataKey, Scope, open_with
from .errors import KeyDestroyed, RangeError, StoreError
from .sealed import Opening

if TYPE_CHECKING:
    from .keystore import KeyStore

#: What to give a reader or verifier that meets sealed values without a key store.
NO_KEY_STORE = (
    "its bodies, openings and origins are sealed under data keys: give its key store"
    " (the hub's key_store and key_store_master_key settings; --key-store and"
    " --key-store-master-key on the command line)"
)


def entry_scope(
    kind: str,
    leaf: bytes,
    *,
    pilot: str | None,
    subject: str | None,
    consent: str | None,
    data_type: str | None,
    observed_at: str | None,
    opening: Opening | None,
) -> Scope | None:
    """The scope of an entry's sealed values, or None for an entry whose values are kept in
    the open (module docstring). A record's from its index columns; a ``consent`` or
    ``access`` entry's from its leaf's pilot and its opening's subject (and Consent)."""
    if kind == "record":
        if pilot is None or data_type is None or observed_at is None:
            return None
        return Scope.of_record(
            pilot=pilot,
            subject=subject,
            consent=consent,
            data_type=data_type,
            observed_at=observed_at,
        )
    if kind not in ("consent", "access") or opening is None:
        return None
    fields = opening.fields
    person, named = fields.get("subject"), fields.get("consent")
    try:
        leaf_pilot = json.loads(leaf).get("pilot")
    except (ValueError, AttributeError):
        return None
    if not isinstance(leaf_pilot, str) or not isinstance(person, str):
        return None  # about nobody, or no pilot: no path erases it
    if kind == "consent" and not isinstance(named, str):
        return None
    return Scope.of_entry(
        kind, pilot=leaf_pilot, subject=person, consent=named if kind == "consent" else None
    )


def keys_of(keys: KeyStore | None, key_ids: Iterable[Any], where: str) -> Mapping[int, DataKey]:
    """The keys still held of the non-NULL ``key_ids`` a read met (one call to the key
    store); StoreError naming the setting when there is a sealed value and no key store."""
    wanted = {int(k) for k in key_ids if k is not None}
    if not wanted:
        return {}
    if keys is None:
        raise StoreError(f"{where}: {NO_KEY_STORE}")
    return keys.keys(wanted)


def opened_value(
    keys: Mapping[int, DataKey], table: str, index: int, key_id: Any, stored: Any
) -> bytes | None:
    """A stored value as it was written: as it is if in the open (``key_id`` NULL), else
    opened under its key; None if its key is destroyed (the value is erased). SealError
    for a value that does not open (damaged, or moved from another row)."""
    raw = bytes(stored)
    if key_id is None:
        return raw
    try:
        return open_with(keys, int(key_id), table, index, raw)
    except KeyDestroyed:
        return None


def check_triples(values: Collection[tuple[str, str, str]], what: str) -> None:
    """RangeError unless every one of ``values`` is three strings (``what`` names them)."""
    for value in values:
        if (
            not isinstance(value, tuple | list)
            or len(value) != 3
            or not all(isinstance(v, str) for v in value)
        ):
            raise RangeError(f"{what}, not {value!r}")
