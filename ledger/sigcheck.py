"""Bulk checks of record signatures, for the offline verifier: Ed25519 through libsodium,
SM2 (a 65-byte public key: an ``sm2-sm3`` log) through :mod:`ledger.sm2`.

Signature checks are most of a full verify's CPU. libsodium releases the GIL while it
verifies, but each check needs the GIL back afterwards, and a main thread busy recomputing
the tree hands it over only once per switch interval (5 ms): worker *threads* then crawl.
Large logs therefore check signatures in helper processes (``python -m ledger.sigcheck``,
fed batches through pipes: no fork of a threaded parent, no re-import of its ``__main__``);
small ones, where a process start is not worth it, use threads.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import SimpleQueue
from typing import IO

import nacl.exceptions
import nacl.signing
from nacl.bindings import crypto_sign_open

from .base64url import canonical_b64url
from .errors import KeyFileError
from .sm2 import PUBLIC_KEY_BYTES as SM2_POINT_BYTES
from .sm2 import Sm2PublicKey

#: (index, leaf, signature text, raw public key) of one record signature to check.
PendingSig = tuple[int, bytes, str, bytes]

#: Raw public keys already known to be 32 bytes (what ``crypto_sign_open`` reads).
_sound_keys: set[bytes] = set()
#: SM2 keys by their raw point, made once each (a key's Z_A prefix is computed once).
_sm2_keys: dict[bytes, Sm2PublicKey | None] = {}


def _sm2_key(raw_key: bytes) -> Sm2PublicKey | None:
    if raw_key not in _sm2_keys:
        try:
            _sm2_keys[raw_key] = Sm2PublicKey(raw_key)
        except KeyFileError:
            _sm2_keys[raw_key] = None
    return _sm2_keys[raw_key]


def check_signatures(batch: list[PendingSig]) -> list[int]:
    """Indexes whose signature is not the canonical unpadded base64url of a valid signature
    of the leaf by the key (Ed25519 for a 32-byte key, SM2 for a 65-byte point)."""
    # libsodium's crypto_sign_open straight from PyNaCl's bindings: VerifyKey.verify adds
    # only argument checks made here once per key; the loop costs ~1 us a signature beside
    # libsodium's ~38 us (bench/ledger.py, full verify).
    bad = []
    sound, sign_open = _sound_keys, crypto_sign_open
    for index, message, text, raw_key in batch:
        try:
            if len(raw_key) == SM2_POINT_BYTES:
                sm2_key = _sm2_key(raw_key)
                raw = canonical_b64url(text)
                if sm2_key is None or raw is None or not sm2_key.is_valid(raw, message):
                    bad.append(index)
                continue
            if raw_key not in sound:
                nacl.signing.VerifyKey(raw_key)  # TypeError/ValueError unless 32 bytes
                sound.add(raw_key)
            # Canonical only: the 4 spare bits of the last character must be zero, so no two
            # stored strings stand for one signature.
            raw = canonical_b64url(text)
            if raw is None or len(raw) != 64:
                bad.append(index)
                continue
            sign_open(raw + message, raw_key)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            bad.append(index)
    return bad


class SignatureChecks:
    """``check(batch)`` -> Future of the bad indexes, on ``workers`` processes or threads."""

    def __init__(self, workers: int, *, processes: bool) -> None:
        workers = max(1, workers)
        self._threads = ThreadPoolExecutor(max_workers=workers)
        self._idle: SimpleQueue[subprocess.Popen[bytes]] = SimpleQueue()
        self._procs: list[subprocess.Popen[bytes]] = []
        if processes:
            env = dict(os.environ)
            # The helper must import this very package, wherever it was loaded from.
            root = str(Path(__file__).resolve().parent.parent)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
            for _ in range(workers):
                try:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "ledger.sigcheck"],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        env=env,
                    )
                except OSError:
                    break  # threads do the work instead
                self._procs.append(proc)
                self._idle.put(proc)

    def check(self, batch: list[PendingSig]) -> Future[list[int]]:
        return self._threads.submit(self._run, batch)

    def _run(self, batch: list[PendingSig]) -> list[int]:
        if not self._procs:
            return check_signatures(batch)
        proc = self._idle.get()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            pickle.dump(batch, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
            result: list[int] = pickle.load(proc.stdout)
        except (OSError, EOFError, pickle.UnpicklingError):
            # A helper that died is not a verdict on the log: check here instead.
            return check_signatures(batch)
        finally:
            self._idle.put(proc)
        return result

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    while True:
        try:
            batch = pickle.load(stdin)
        except EOFError:
            return
        pickle.dump(check_signatures(batch), stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
