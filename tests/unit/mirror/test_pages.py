"""Checking a page of the hub's entries before anything of it is stored (the pages come in the
public ledger API's shapes, ledger/publicapi.py, which hub and mirror share)."""

from __future__ import annotations

import base64
from hashlib import sha256
from pathlib import Path

import pytest

from ledger import publicapi as wire
from ledger.verify import RegistryKeys
from mirror.config import check_hub_url, init_mirror, load_config, read_log_key
from mirror.errors import HubFault, MirrorConfigError
from mirror.pages import check_page
from tests.support.ledger_builder import LedgerBuilder


def served(builder: LedgerBuilder) -> list[wire.LedgerEntry]:
    return [
        wire.LedgerEntry(
            index=e.index,
            kind=e.kind,
            leaf=base64.b64encode(e.leaf).decode(),
            leaf_hash=bytes(e.leaf_hash).hex(),
            sig=e.sig,
        )
        for e in builder.writer.entries(0, builder.writer.size())
    ]


@pytest.fixture
def builder(tmp_path: Path) -> LedgerBuilder:
    b = LedgerBuilder(tmp_path / "ledger.db")
    b.register_source()
    b.append_records(5)
    return b


def test_a_good_page_becomes_entries_without_bodies(builder: LedgerBuilder) -> None:
    page = check_page(0, served(builder), RegistryKeys())
    assert [e.kind for e in page.entries] == ["registry"] + ["record"] * 5
    assert all(e.payload is None and e.opening is None for e in page.entries)
    assert len(page.signatures) == 5
    assert page.leaf_hashes[0] == sha256(b"\x00" + page.entries[0].leaf).digest()


def test_the_registry_learned_from_a_page_is_returned_not_kept(builder: LedgerBuilder) -> None:
    keys = RegistryKeys()
    entries = served(builder)
    check_page(0, entries[:1], keys)
    with pytest.raises(HubFault, match="not registered"):
        check_page(1, entries[1:], keys)


def _with(entry: wire.LedgerEntry, **change: object) -> wire.LedgerEntry:
    return entry.model_copy(update=change)


@pytest.mark.parametrize(
    ("at", "change", "why"),
    [
        (2, {"index": 9}, "where 2 was due"),
        (2, {"leaf": "not base64!"}, "not base64"),
        (2, {"leaf_hash": "00" * 32}, "leaf_hash"),
        (2, {"kind": "access"}, "does not match its leaf"),
        (2, {"sig": None}, "missing or malformed"),
        (2, {"leaf": base64.b64encode(b"[1]").decode()}, None),
    ],
)
def test_a_bad_entry_is_a_hub_fault_naming_it(
    builder: LedgerBuilder, at: int, change: dict[str, object], why: str | None
) -> None:
    entries = served(builder)
    entries[at] = _with(entries[at], **change)
    if "leaf" in change and why is None:
        # A leaf that is not an object, with its hash recomputed so that only that is wrong.
        leaf = base64.b64decode(str(change["leaf"]))
        entries[at] = _with(entries[at], leaf_hash=sha256(b"\x00" + leaf).hexdigest())
        why = "not a JSON object"
    with pytest.raises(HubFault, match=why):
        check_page(0, entries, RegistryKeys())


def test_init_refuses_bad_input_and_a_second_init(tmp_path: Path, builder: LedgerBuilder) -> None:
    vkey = builder.signer.verifier.encode()
    with pytest.raises(MirrorConfigError, match="not an http"):
        check_hub_url("ftp://hub")
    with pytest.raises(MirrorConfigError, match="not a signed-note verifier key"):
        read_log_key("hub+abcd+nope")
    with pytest.raises(MirrorConfigError, match="not a cosigner name"):
        init_mirror(tmp_path / "m", "http://127.0.0.1:1", vkey, "two words")
    with pytest.raises(MirrorConfigError, match="no mirror in"):
        load_config(tmp_path / "m")
    init_mirror(tmp_path / "m", "http://127.0.0.1:1/", vkey, "test.mirror/m1")
    assert load_config(tmp_path / "m").hub == "http://127.0.0.1:1"
    assert (tmp_path / "m" / "mirror.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(MirrorConfigError, match="already holds a mirror"):
        init_mirror(tmp_path / "m", "http://127.0.0.1:1", vkey)
