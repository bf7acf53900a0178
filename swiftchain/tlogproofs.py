"""Getting a tlog-proof (c2sp.org/tlog-proof@v1) for one entry: from a ledger file, or from
a hub's (or a mirror's) public ledger API alone, under the latest checkpoint exactly as it is
stored or served (with whatever cosignatures it carries). Checking one is
:func:`ledger.tlogproof.verify_proof`. The inclusion is checked before a proof is handed out,
in the log's suite's hash: the ledger's (``meta`` ``suite``), or the one the hub's verifier key
tells (``/api/v1/ledger/key``)."""

from __future__ import annotations

import base64
import binascii
import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from ledger.checkpoint import NoteVerifier, parse_checkpoint
from ledger.errors import CheckpointError, ProofError
from ledger.store import LedgerReader
from ledger.tlogproof import assemble_proof

from .errors import SwiftchainError

#: Bound on each request to a hub.
HTTP_TIMEOUT_S = 30.0


class HubReadError(SwiftchainError):
    """A hub's public ledger API cannot be read, or answered something that is not what it
    serves (the hub is down, the URL is wrong, or the answer is malformed)."""


def prove_from_ledger(path: Path | str, index: int) -> str:
    """The proof of entry ``index`` under the newest checkpoint the witnesses' quorum
    cosigned that covers it, else the newest stored one, in the ledger at ``path`` (a file's
    path or a PostgreSQL URL; StoreError for a missing one; ProofError for an entry it does
    not cover)."""
    with LedgerReader(path) as reader:
        head = reader.latest_checkpoint()
        if head is None:
            raise ProofError(f"{reader.where} holds no checkpoint yet")
        note, size = head.note, head.size
        cosigned = reader.quorum_checkpoint()
        if cosigned is not None:
            quorum_size = parse_checkpoint(cosigned).checkpoint.size
            if index < quorum_size:
                note, size = cosigned, quorum_size
        if not 0 <= index < size:
            raise ProofError(
                f"entry {index} is not under the newest checkpoint (size {size}); "
                "wait for the next checkpoint and try again"
            )
        inclusion = reader.inclusion_proof(index, size)
        leaf = bytes(reader.entry(index).leaf)
        return assemble_proof(note, index, inclusion, leaf, reader.suite.tree)


def prove_from_hub(url: str, index: int) -> str:
    """The proof of entry ``index`` under the hub's latest checkpoint, from four public
    reads (the log's key, for its suite; checkpoint, inclusion proof, the entry's leaf), so a
    mirror serving the same API will do as well."""
    key_text = _get(url, "/api/v1/ledger/key").decode("utf-8", "replace").strip()
    try:
        tree = NoteVerifier.parse(key_text).suite.tree
    except CheckpointError as exc:
        raise HubReadError(f"{url} served a log key that is not one: {exc}") from None
    note = _get(url, "/api/v1/ledger/checkpoint").decode("utf-8", "replace")
    try:
        size = parse_checkpoint(note).checkpoint.size
    except CheckpointError as exc:
        raise HubReadError(f"{url} served a checkpoint that is not one: {exc}") from None
    if not 0 <= index < size:
        raise ProofError(
            f"entry {index} is not under the hub's latest checkpoint (size {size}); "
            "wait for the next checkpoint and try again"
        )
    query = urllib.parse.urlencode({"index": index, "size": size})
    proof = _json(url, f"/api/v1/ledger/proof/inclusion?{query}")
    page = _json(url, f"/api/v1/ledger/entries?start={index}&end={index + 1}")
    try:
        inclusion = [bytes.fromhex(h) for h in proof["proof"]]
        (entry,) = page["entries"]
        leaf = base64.b64decode(entry["leaf"], validate=True)
        if entry["index"] != index:
            raise ValueError(f"asked for entry {index}, got {entry['index']}")
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise HubReadError(f"{url} answered a proof or entry that is malformed: {exc}") from None
    return assemble_proof(note, index, inclusion, leaf, tree)


def _get(url: str, path: str) -> bytes:
    request = urllib.request.Request(url.rstrip("/") + path, headers={"Accept": "*/*"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:500].decode("utf-8", "replace")
        raise HubReadError(f"GET {path} on {url}: HTTP {exc.code} {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise HubReadError(f"cannot reach the hub at {url}: {exc}") from None


def _json(url: str, path: str) -> dict[str, Any]:
    try:
        value = json.loads(_get(url, path))
    except ValueError:
        raise HubReadError(f"GET {path} on {url} did not answer JSON") from None
    if not isinstance(value, dict):
        raise HubReadError(f"GET {path} on {url} did not answer a JSON object")
    return value
