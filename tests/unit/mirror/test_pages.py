"""Checking a page of the hub's entries before anything of it is stored (the pages come in the
public ledger API's shapes, ledger/publicapi.py, which hub and mirror share), in the log's
crypto suite; a mirror's directory, its key and its copy of the log's suite."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ledger import publicapi as wire
from ledger.checkpoint import NoteSigner
from ledger.cosignature import CosignerVerifier
from ledger.keys import generate_key, load_private_key
from ledger.store import LedgerReader
from ledger.suite import SUITES, Suite, suite_of
from ledger.verify import RegistryKeys
from mirror.config import KEY_FILE, VKEY_FILE, check_hub_url, init_mirror, load_config, read_log_key
from mirror.errors import HubFault, MirrorConfigError
from mirror.pages import check_page
from mirror.store import MirrorStore
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
def builder(tmp_path: Path, suite: Suite) -> LedgerBuilder:
    b = LedgerBuilder.of_suite(tmp_path / "ledger.db", suite)
    b.register_source()
    b.append_records(5)
    return b


def test_a_good_page_becomes_entries_without_bodies(builder: LedgerBuilder) -> None:
    page = check_page(0, served(builder), RegistryKeys(builder.suite))
    assert [e.kind for e in page.entries] == ["registry"] + ["record"] * 5
    assert all(e.payload is None and e.opening is None for e in page.entries)
    assert len(page.signatures) == 5
    assert page.leaf_hashes[0] == builder.suite.tree.leaf(page.entries[0].leaf)
    assert page.leaf_hashes == [bytes(e.leaf_hash) for e in builder.writer.entries(0, 6)]


def test_a_page_of_another_suites_log_is_a_hub_fault(builder: LedgerBuilder) -> None:
    (other,) = (s for s in SUITES.values() if s is not builder.suite)
    # Its leaf hashes are not the other suite's, and its registry's key is not of its kind.
    with pytest.raises(HubFault, match=f"entry 0: leaf_hash is not {other.tree.name}"):
        check_page(0, served(builder), RegistryKeys(other))
    entries = served(builder)
    entries[0] = _with(
        entries[0], leaf_hash=other.tree.leaf(base64.b64decode(entries[0].leaf)).hex()
    )
    with pytest.raises(HubFault, match="entry 0: registry key is unreadable"):
        check_page(0, entries[:1], RegistryKeys(other))


def test_the_registry_learned_from_a_page_is_returned_not_kept(builder: LedgerBuilder) -> None:
    keys = RegistryKeys(builder.suite)
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
        entries[at] = _with(entries[at], leaf_hash=builder.suite.tree.leaf(leaf).hex())
        why = "not a JSON object"
    with pytest.raises(HubFault, match=why):
        check_page(0, entries, RegistryKeys(builder.suite))


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


def test_a_mirror_of_a_log_is_of_its_suite(tmp_path: Path, builder: LedgerBuilder) -> None:
    """The log key tells the suite: the mirror's cosigner key is of its kind, and its copy
    is a log of it, which a key of the other suite cannot reopen."""
    suite = builder.suite
    init_mirror(tmp_path / "m", "http://127.0.0.1:1", builder.signer.verifier.encode(), "t.m/m1")
    assert suite_of(load_private_key(tmp_path / "m" / KEY_FILE)) is suite
    assert CosignerVerifier.parse((tmp_path / "m" / VKEY_FILE).read_text()).suite is suite
    copy = tmp_path / "m" / "ledger.db"
    MirrorStore(copy, builder.signer.verifier).close()
    with LedgerReader(copy) as reader:
        assert reader.suite is suite
    (other,) = (s for s in SUITES.values() if s is not suite)
    stranger = NoteSigner(builder.signer.name, generate_key(other)).verifier
    with pytest.raises(MirrorConfigError, match=f"is an {suite.name} log, not {other.name}"):
        MirrorStore(copy, stranger)
