"""The store, on SQLite and on PostgreSQL: batch appends, the incremental tree, reopening,
erasure, one writer."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ProofError, RangeError, StorageError, StoreError
from ledger.hashing import leaf_hash
from ledger.store import LedgerReader, LedgerWriter, NewEntry
from ledger.tree import Frontier, root_of
from ledger.verify import verify_ledger
from tests.support.ledger_builder import LedgerBuilder, record_entry


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.integers(0, 300), st.lists(st.binary(max_size=40), max_size=300))
def test_extend_is_append_repeated(start: int, leaves: list[bytes]) -> None:
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(start)]
    by_append, by_extend = Frontier(), Frontier()
    for h in hashes:
        by_append.append(h)
        by_extend.append(h)
    new = [leaf_hash(x) for x in leaves]
    expected = [b"".join(by_append.append(h)) for h in new]
    assert by_extend.extend(new) == expected
    assert (by_extend.size, by_extend.hashes) == (by_append.size, by_append.hashes)
    assert by_extend.root() == root_of(hashes + new)


def test_appends_commit_batches_and_survive_reopening(store_url: str) -> None:
    path = store_url
    writer = LedgerWriter(path, origin="swiftchain.test/log")
    leaves = [b'{"kind":"access","n":%d}' % i for i in range(2500)]
    stored = writer.append([NewEntry("access", leaf) for leaf in leaves[:1000]])
    assert [e.index for e in stored] == list(range(1000))
    assert stored[7].leaf_hash == leaf_hash(leaves[7])
    writer.append([NewEntry("access", leaf) for leaf in leaves[1000:]])
    root = writer.current_root()
    assert root == root_of(leaf_hash(x) for x in leaves)
    writer.close()
    # A new writer picks the tree up from the stored nodes, not by rehashing the leaves.
    again = LedgerWriter(path, origin="swiftchain.test/log")
    assert again.size() == 2500 and again.current_root() == root
    again.append([NewEntry("access", b"{}")])
    assert again.current_root() == root_of(leaf_hash(x) for x in [*leaves, b"{}"])
    with LedgerReader(path) as reader:
        assert reader.size() == 2501 and reader.root(2500) == root
        assert [e.leaf for e in reader.entries(998, 1002)] == leaves[998:1002]
    again.close()


def test_records_bodies_and_erasure(store_url: str) -> None:
    builder = LedgerBuilder(store_url)
    builder.register_source()
    builder.append_records(5)
    body = builder.writer.body(3)
    assert body is not None and set(body) == {"payload", "salt"}
    builder.erase(3)
    assert builder.writer.body(3) is None
    assert builder.writer.entry(3).kind == "record"  # the leaf stays
    assert builder.writer.seq_index("air-quality", "station-1", 5) == 5
    builder.close()


def test_a_failed_batch_writes_nothing(store_url: str) -> None:
    builder = LedgerBuilder(store_url)
    builder.register_source()
    (record,) = builder.records(1)
    builder.writer.append([record_entry(record)])
    size, root = builder.writer.size(), builder.writer.current_root()
    with pytest.raises(StoreError, match=r"(?i)unique") as caught:
        builder.writer.append([NewEntry("access", b"{}"), record_entry(record)])
    # A conflict is not the storage's trouble: retrying it would never work.
    assert not isinstance(caught.value, StorageError)
    assert (builder.writer.size(), builder.writer.current_root()) == (size, root)
    with LedgerReader(builder.path) as reader:
        assert reader.size() == size
    builder.close()


def test_a_commit_that_landed_but_did_not_answer_is_read_back(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = LedgerWriter(store_url)
    writer.append([NewEntry("access", b"{}")])
    real = writer.dialect.commit

    def unanswered(conn: object) -> None:
        real(conn)  # type: ignore[arg-type]
        raise StorageError("the connection was lost after COMMIT")

    monkeypatch.setattr(writer.dialect, "commit", unanswered)
    with pytest.raises(StorageError):
        writer.append([NewEntry("access", b"[1]"), NewEntry("access", b"[2]")])
    assert writer.size() == 1  # as far as the writer can tell
    monkeypatch.undo()
    (stored,) = writer.append([NewEntry("access", b"[3]")])
    assert stored.index == 3 and writer.size() == 4
    expected = root_of(leaf_hash(x) for x in [b"{}", b"[1]", b"[2]", b"[3]"])
    assert writer.current_root() == expected
    with LedgerReader(writer.location) as reader:
        assert reader.root(4) == expected
    writer.close()


def test_two_threads_appending_never_share_an_index(store_url: str) -> None:
    writer = LedgerWriter(store_url)
    errors: list[BaseException] = []

    def work(tag: int) -> None:
        try:
            for i in range(20):
                writer.append([NewEntry("access", b'{"t":%d,"i":%d}' % (tag, i))] * 5)
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert writer.size() == 200
    with LedgerReader(writer.location) as reader:
        assert reader.root(200) == writer.current_root()
    writer.close()


def test_extend_with_a_bad_hash_leaves_the_frontier_unchanged() -> None:
    f = Frontier()
    f.extend([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])
    before = (f.size, list(f.hashes))
    with pytest.raises(ProofError):
        f.extend([leaf_hash(b"d"), "not bytes"])  # type: ignore[list-item]
    assert (f.size, f.hashes) == before


def test_batches_of_every_size_store_every_row(store_url: str) -> None:
    # Sizes about the blocks a batch is inserted in (256, 128, ... 8 rows, then one by one).
    sizes = [1, 7, 8, 9, 15, 16, 255, 256, 257, 511, 700]
    builder = LedgerBuilder(store_url)
    builder.register_source()
    records = list(builder.records(sum(sizes)))
    start = 0
    for size in sizes:
        part = records[start : start + size]
        stored = builder.writer.append([record_entry(r) for r in part])
        assert [e.index for e in stored] == list(range(start + 1, start + size + 1))
        start += size
    builder.checkpoint()
    with LedgerReader(builder.path) as reader:
        for record in records[:: len(records) // 40]:
            h = record.header
            index = reader.record_index(h.id)
            assert index is not None and reader.seq_index(h.pilot, h.source, h.seq) == index
            assert reader.entry(index).leaf == h.canonical()
            body = reader.body(index)
            assert body is not None and body["payload"] == record.body.payload
        assert reader.root(reader.size()) == builder.writer.current_root()
    builder.close()
    report = verify_ledger(builder.path)
    assert report.ok and report.records == report.bodies == sum(sizes), report.problems


def test_batched_lookups_answer_as_the_single_ones(store_url: str) -> None:
    builder = LedgerBuilder(store_url)
    builder.register_source()
    builder.append_records(1200)
    reader = builder.writer
    on_log = [
        json.loads(e.leaf)["id"] for e in reader.entries(1, 1001) + reader.entries(1001, 1201)
    ]
    asked = [*on_log[::2], "not-a-record", on_log[0]]
    known = reader.known_records(asked)
    assert known == {i: reader.record_index(i) for i in on_log[::2]}
    seqs = [("air-quality", "station-1", n) for n in (1, 600, 1200, 1201, 0)] + [
        ("air-quality", "station-2", 1),
        ("other", "station-1", 5),
    ]
    assert reader.used_seqs(seqs) == {("air-quality", "station-1", n) for n in (1, 600, 1200)}
    assert reader.used_seqs([]) == set() and reader.known_records([]) == {}
    for bad_ids in ([5], [None]):
        with pytest.raises(RangeError):
            reader.known_records(bad_ids)  # type: ignore[list-item]
    for bad_seq in [("a", "b", "1"), ("a", 2, 1), ("a", "b"), ("a", "b", True), 7]:
        with pytest.raises(RangeError):
            reader.used_seqs([bad_seq])  # type: ignore[list-item]
    builder.close()
