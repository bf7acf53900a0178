"""Checking one page of the hub's entries before any of it is written: indexes in order,
each leaf's hash recomputed (RFC 9162 2.1.1, in the log's suite's hash: the registry's,
:class:`ledger.verify.RegistryKeys` ``suite``), its kind, the public registry replayed from
``registry`` leaves as :mod:`ledger.verify` does, and every record's signer looked up in it.
The signatures themselves are checked in bulk by :func:`ledger.sigcheck.check_signatures`;
the page's place in the hub's signed tree by a consistency proof (:mod:`mirror.follow`)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from ledger.entries import ENTRY_KINDS
from ledger.errors import KeyFileError
from ledger.publicapi import LedgerEntry
from ledger.sigcheck import PendingSig
from ledger.store import NewEntry, RecordColumns
from ledger.verify import RegistryKeys, UnsignedRecord

from .errors import HubFault


@dataclass
class CheckedPage:
    start: int
    entries: list[NewEntry]
    leaf_hashes: list[bytes]
    signatures: list[PendingSig]
    registry: RegistryKeys
    """The registry after this page's ``registry`` entries (the caller's is left as it was)."""


def check_page(start: int, served: list[LedgerEntry], registry: RegistryKeys) -> CheckedPage:
    """The page as entries to store; HubFault naming the first index that is wrong. The
    log's suite is ``registry``'s: its tree hashes the leaves, its kind of key signs."""
    tree = registry.suite.tree
    keys = registry.copy()
    entries: list[NewEntry] = []
    hashes: list[bytes] = []
    sigs: list[PendingSig] = []
    for offset, e in enumerate(served):
        index = start + offset
        if e.index != index:
            raise HubFault(f"the hub sent entry {e.index} where {index} was due")
        try:
            leaf = base64.b64decode(e.leaf, validate=True)
        except (binascii.Error, ValueError):
            raise HubFault(f"entry {index}: the leaf is not base64") from None
        leaf_hash = tree.leaf(leaf)
        if e.leaf_hash != leaf_hash.hex():
            raise HubFault(f"entry {index}: leaf_hash is not {tree.name}(0x00 || leaf)")
        try:
            value = json.loads(leaf)
        except (ValueError, UnicodeDecodeError):
            raise HubFault(f"entry {index}: the leaf is not JSON") from None
        if not isinstance(value, dict):
            raise HubFault(f"entry {index}: the leaf is not a JSON object")
        kind = value.get("kind", "record")
        if kind != e.kind or kind not in ENTRY_KINDS:
            raise HubFault(f"entry {index}: kind {e.kind!r} does not match its leaf ({kind!r})")
        record = None
        if kind == "record":
            try:
                raw_key = keys.signer_of(value, e.sig)
            except UnsignedRecord as exc:
                raise HubFault(f"entry {index}: {exc}") from None
            assert e.sig is not None
            sigs.append((index, leaf, e.sig, raw_key))
            record = _columns(index, value)
        elif kind == "registry":
            try:
                keys.learn(value)
            except KeyFileError as exc:
                raise HubFault(f"entry {index}: registry key is unreadable: {exc}") from None
        entries.append(NewEntry(kind=kind, leaf=leaf, sig=e.sig, record=record))
        hashes.append(leaf_hash)
    return CheckedPage(start, entries, hashes, sigs, keys)


def _columns(index: int, header: dict[str, Any]) -> RecordColumns:
    """The record's index row from its public header (``subject`` and ``consent`` are v1's;
    absent on a v2 leaf, whose ``person`` commitment a mirror cannot and must not open)."""

    def text(name: str, optional: bool = False) -> Any:
        value = header.get(name)
        if not (isinstance(value, str) or (optional and value is None)):
            raise HubFault(f"entry {index}: the record header's {name!r} is not text")
        return value

    seq = header.get("seq")
    if type(seq) is not int:
        raise HubFault(f"entry {index}: the record header's 'seq' is not an integer")
    return RecordColumns(
        id=text("id"),
        pilot=text("pilot"),
        source=text("source"),
        seq=seq,
        type=text("type"),
        subject=text("subject", True),
        consent=text("consent", True),
        observed_at=text("observed_at"),
        key=text("key"),
    )
