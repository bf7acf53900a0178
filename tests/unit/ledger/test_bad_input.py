"""Bad input to the ledger's public functions raises a named LedgerError, never a raw one."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.canonical import canonical_json
from ledger.errors import (
    InvalidEnvelope,
    LedgerError,
    ProofError,
    RangeError,
    StorageError,
    StoreError,
)
from ledger.hashing import EMPTY_ROOT, leaf_hash, node_hash
from ledger.proofs import root_from_inclusion_proof, verify_consistency, verify_inclusion
from ledger.store import LedgerReader, LedgerWriter, NewEntry
from ledger.tree import consistency_ranges, inclusion_ranges, range_nodes

H = bytes(32)

TREE_AND_PROOF_CALLS: list[tuple[str, Callable[[], Any]]] = [
    ("leaf_hash(str)", lambda: leaf_hash("x")),  # type: ignore[arg-type]
    ("leaf_hash(None)", lambda: leaf_hash(None)),  # type: ignore[arg-type]
    ("node_hash(str)", lambda: node_hash(H, "x")),  # type: ignore[arg-type]
    ("range_nodes(str)", lambda: range_nodes("0", 3)),  # type: ignore[arg-type]
    ("range_nodes(float)", lambda: range_nodes(0, 3.0)),  # type: ignore[arg-type]
    ("range_nodes(unaligned)", lambda: range_nodes(1, 4)),
    ("range_nodes(empty)", lambda: range_nodes(3, 3)),
    ("inclusion_ranges(None)", lambda: inclusion_ranges(None, 3)),  # type: ignore[arg-type]
    ("inclusion_ranges(out)", lambda: inclusion_ranges(3, 3)),
    ("consistency_ranges(float)", lambda: consistency_ranges(1.5, 3)),  # type: ignore[arg-type]
    ("consistency_ranges(0)", lambda: consistency_ranges(0, 3)),
    ("consistency_ranges(desc)", lambda: consistency_ranges(4, 3)),
    ("incl(str index)", lambda: verify_inclusion(H, "0", 2, [H], H)),  # type: ignore[arg-type]
    ("incl(bool index)", lambda: verify_inclusion(H, True, 2, [H], H)),
    ("incl(float size)", lambda: verify_inclusion(H, 0, 2.0, [H], H)),  # type: ignore[arg-type]
    ("incl(huge size)", lambda: verify_inclusion(H, 0, 2**64, [H], H)),
    ("incl(neg index)", lambda: verify_inclusion(H, -1, 2, [H], H)),
    ("incl(None proof)", lambda: verify_inclusion(H, 0, 2, None, H)),  # type: ignore[arg-type]
    ("incl(bytes proof)", lambda: verify_inclusion(H, 0, 2, H, H)),
    ("incl(str element)", lambda: verify_inclusion(H, 0, 2, ["x" * 32], H)),  # type: ignore[list-item]
    ("incl(str root)", lambda: verify_inclusion(H, 0, 2, [H], "x")),  # type: ignore[arg-type]
    ("incl(short root)", lambda: verify_inclusion(H, 0, 1, [], H[:31])),
    ("incl(short leaf)", lambda: root_from_inclusion_proof(b"x", 0, 1, [])),
    ("cons(str)", lambda: verify_consistency("1", 2, [H], H, H)),  # type: ignore[arg-type]
    ("cons(bool)", lambda: verify_consistency(True, 2, [H], H, H)),
    ("cons(None root)", lambda: verify_consistency(1, 2, [H], H, None)),  # type: ignore[arg-type]
    ("cons(None proof)", lambda: verify_consistency(1, 2, None, H, H)),  # type: ignore[arg-type]
    ("cons(short root)", lambda: verify_consistency(1, 1, [], H, b"x")),
]


@pytest.mark.parametrize(
    ("name", "call"), TREE_AND_PROOF_CALLS, ids=[c[0] for c in TREE_AND_PROOF_CALLS]
)
def test_tree_and_proof_functions(name: str, call: Callable[[], Any]) -> None:
    with pytest.raises(ProofError):
        call()


def _deep(n: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [{1: 2}, object(), float("nan"), float("inf"), 2**60, "\ud800", b"bytes", _deep(5000)],
)
def test_canonical_json_refuses_what_jcs_cannot_carry(value: Any) -> None:
    with pytest.raises(InvalidEnvelope):
        canonical_json(value)


def test_canonical_json_is_rfc8785() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "é", None, True]}) == (
        '{"a":[1,"é",null,true],"b":1}'.encode()
    )


# -- the store -------------------------------------------------------------------------------
@pytest.fixture
def writer(store_url: str) -> Iterator[LedgerWriter]:
    w = LedgerWriter(store_url, origin="swiftchain.test/log")
    w.append([NewEntry("access", b'{"kind":"access","n":%d}' % i) for i in range(5)])
    yield w
    w.close()


_SUBJECT: dict[str, Any] = {
    "pilot": "chronic-care",
    "subject": "patient-0001",
    "data_type": "fhir.Observation",
    "since": None,
    "until": None,
}
_TYPE: dict[str, Any] = {
    "pilot": "city-air",
    "data_type": "city.air-quality",
    "since": None,
    "until": None,
}

READER_CALLS: list[tuple[str, Callable[[LedgerReader], Any]]] = [
    ("root(str)", lambda r: r.root("3")),
    ("root(-1)", lambda r: r.root(-1)),
    ("root(past end)", lambda r: r.root(6)),
    ("root(bool)", lambda r: r.root(True)),
    ("inclusion(str)", lambda r: r.inclusion_proof("a", 3)),
    ("inclusion(float)", lambda r: r.inclusion_proof(1.0, 3)),
    ("inclusion(out)", lambda r: r.inclusion_proof(3, 3)),
    ("inclusion(huge)", lambda r: r.inclusion_proof(0, 2**70)),
    ("consistency(str)", lambda r: r.consistency_proof("1", 3)),
    ("consistency(0)", lambda r: r.consistency_proof(0, 3)),
    ("consistency(desc)", lambda r: r.consistency_proof(4, 3)),
    ("entries(None)", lambda r: r.entries(None, 3)),
    ("entries(reversed)", lambda r: r.entries(3, 1)),
    ("entries(too long)", lambda r: r.entries(0, 5000)),
    ("entry(str)", lambda r: r.entry("x")),
    ("entry(huge)", lambda r: r.entry(2**70)),
    ("entry(max)", lambda r: r.entry(2**63 - 1)),
    ("entry(missing)", lambda r: r.entry(99)),
    ("body(str)", lambda r: r.body("x")),
    ("body(huge)", lambda r: r.body(2**70)),
    # The hub's named queries (ledger.queries). A negative LIMIT would mean "no limit" to
    # SQLite, so each is refused before it gets there.
    ("leaves(unknown kind)", lambda r: r.leaves("records")),
    ("leaves(None)", lambda r: r.leaves(None)),
    ("subject_records(limit -1)", lambda r: r.subject_records(**_SUBJECT, limit=-1)),
    ("subject_records(limit str)", lambda r: r.subject_records(**_SUBJECT, limit="5")),
    (
        "subject_records(since int)",
        lambda r: r.subject_records(**{**_SUBJECT, "since": 1}, limit=5),
    ),
    (
        "subject_records(subject None)",
        lambda r: r.subject_records(**{**_SUBJECT, "subject": None}, limit=5),
    ),
    ("subject_matches(limit -1)", lambda r: r.subject_matches(**_SUBJECT, limit=-1)),
    (
        "subject_matches(subject None)",
        lambda r: r.subject_matches(**{**_SUBJECT, "subject": None}, limit=5),
    ),
    ("held_records(str)", lambda r: r.held_records(["1"])),
    ("held_payloads(str)", lambda r: r.held_payloads(["1"])),
    ("held_payloads(too many)", lambda r: r.held_payloads(list(range(1001)))),
    ("held_records(too many)", lambda r: r.held_records(list(range(1001)))),
    ("type_records(limit -1)", lambda r: r.type_records(**_TYPE, after=-1, limit=-1)),
    ("type_records(after float)", lambda r: r.type_records(**_TYPE, after=0.5, limit=5)),
    ("type_records(after bool)", lambda r: r.type_records(**_TYPE, after=True, limit=5)),
    ("bodies_of_consent(None)", lambda r: r.bodies_of_consent("p", "s", None)),
    ("oldest_bodies(limit -1)", lambda r: r.oldest_bodies("p", "city.air-quality", -1)),
    ("oldest_bodies(limit huge)", lambda r: r.oldest_bodies("p", "city.air-quality", 2**70)),
    ("tail(negative)", lambda r: r.tail(-1, 3, bodies_of=())),
    ("tail(reversed)", lambda r: r.tail(3, 1, bodies_of=())),
    ("tail(str)", lambda r: r.tail("0", 3, bodies_of=())),
    ("tail(bodies_of None)", lambda r: r.tail(0, 3, bodies_of=[None])),
    ("checkpoint_within(negative)", lambda r: r.checkpoint_within(-1, 3)),
    ("checkpoint_within(reversed)", lambda r: r.checkpoint_within(3, 1)),
    ("checkpoint_within(float)", lambda r: r.checkpoint_within(0, 3.0)),
]


@pytest.mark.parametrize(("name", "call"), READER_CALLS, ids=[c[0] for c in READER_CALLS])
def test_reader_methods(
    writer: LedgerWriter, name: str, call: Callable[[LedgerReader], Any]
) -> None:
    # A RangeError: the caller's mistake, which the hub answers with 400.
    with LedgerReader(writer.location) as reader, pytest.raises(RangeError):
        call(reader)
    with pytest.raises(RangeError):
        call(writer)


@pytest.mark.parametrize(
    ("batch", "erase"),
    [
        ([NewEntry("access", "text")], ()),  # type: ignore[arg-type]
        ([None], ()),
        ([NewEntry("access", b"{}", payload=b"{}", salt=None)], ()),
        ([], ["1"]),
        ([], [2**70]),
    ],
)
def test_bad_appends_change_nothing(writer: LedgerWriter, batch: Any, erase: Any) -> None:
    root, size = writer.current_root(), writer.size()
    with pytest.raises(StoreError):
        writer.append(batch, erase=erase)
    assert (writer.current_root(), writer.size()) == (root, size)
    with LedgerReader(writer.location) as reader:
        assert reader.size() == size and reader.root(size) == root
    writer.append([NewEntry("access", b"{}")])  # and the writer still works
    assert writer.size() == size + 1


def test_bad_checkpoint_rows(writer: LedgerWriter) -> None:
    with pytest.raises(StoreError):
        writer.add_checkpoint("a", EMPTY_ROOT, "note")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "content", [b"", b"hello world" * 100, b"SQLite format 3\x00" + bytes(200)]
)
def test_not_a_ledger(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.db"
    path.write_bytes(content)
    with pytest.raises(StoreError):
        LedgerReader(path)
    if content:
        with pytest.raises(StoreError):
            LedgerWriter(path)


def test_missing_and_directory_paths(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        LedgerReader(tmp_path / "missing.db")
    with pytest.raises(StoreError):
        LedgerReader(tmp_path)
    with pytest.raises(StoreError):
        LedgerWriter(tmp_path)


def test_writer_refuses_another_logs_file(store_url: str) -> None:
    LedgerWriter(store_url, origin="a.example/log").close()
    with pytest.raises(StoreError, match="log of"):
        LedgerWriter(store_url, origin="b.example/log")


def test_every_ledger_error_is_named() -> None:
    assert issubclass(ProofError, LedgerError) and issubclass(StoreError, LedgerError)
    assert issubclass(RangeError, StoreError) and issubclass(StorageError, StoreError)


def test_a_full_quota_is_a_storage_error_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    LedgerWriter(path, origin="swiftchain.test/log").close()
    with LedgerReader(path) as reader:
        pages = int(reader.conn.execute("PRAGMA page_count").fetchone()[0])
    # SQLite cannot grow the file past max_page_count: SQLITE_FULL, as on a full disk.
    writer = LedgerWriter(path, origin="swiftchain.test/log", max_page_count=pages + 2)
    leaf = b'{"kind":"access","pad":"%s"}' % (b"x" * 2000)
    stored = 0
    with pytest.raises(StorageError, match="full"):
        for _ in range(100):
            writer.append([NewEntry("access", leaf)])
            stored += 1
    assert 0 < stored < 100
    root = writer.current_root()
    assert writer.size() == stored
    with LedgerReader(path) as reader:
        assert reader.size() == stored and reader.root(stored) == root
    # A write that fits would still go: nothing is left half-done by the failure.
    writer.close()
    again = LedgerWriter(path, origin="swiftchain.test/log")
    again.append([NewEntry("access", leaf)])
    assert again.size() == stored + 1
    again.close()
