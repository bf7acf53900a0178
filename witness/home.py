"""The witness directory: its signing key (``witness.key``, PKCS#8 PEM, mode 0600, and
``witness.key.pub``; Ed25519 or SM2, the kind ``init_home`` was given) and its state
(``witness.db``). ``init_home`` makes one; ``open_home`` refuses a directory that is not
one, or whose key file others could read. The witness's key need not be of the suite of
the logs it witnesses: a cosignature says its own type (ledger.cosignature)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ledger.cosignature import CosignatureError, CosignerSigner, CosignerVerifier
from ledger.errors import KeyFileError
from ledger.keys import generate_key, load_private_key, write_key_pair
from ledger.suite import DEFAULT_SUITE, Suite

from .errors import WitnessHomeError
from .store import WitnessStore

KEY_FILE = "witness.key"
DB_FILE = "witness.db"


def init_home(
    directory: Path, name: str, now: int, *, suite: Suite = DEFAULT_SUITE
) -> CosignerVerifier:
    """Make ``directory`` a witness called ``name`` with a new key of ``suite``'s kind; its
    verifier key (vkey)."""
    directory = Path(directory)
    try:
        CosignerSigner(name, generate_key(suite))
    except CosignatureError as exc:
        raise WitnessHomeError(str(exc)) from None
    key_path, db_path = directory / KEY_FILE, directory / DB_FILE
    if key_path.exists() or db_path.exists():
        raise WitnessHomeError(f"{directory} is already a witness directory; nothing changed")
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise WitnessHomeError(f"cannot create {directory}: {exc.strerror}") from None
    try:
        key = write_key_pair(key_path, suite=suite)
    except KeyFileError as exc:
        raise WitnessHomeError(str(exc)) from None
    signer = CosignerSigner(name, key)
    store = WitnessStore(db_path)
    try:
        store.set_meta("name", name)
        store.set_meta("vkey", signer.verifier.encode())
        store.set_meta("created_at", str(now))
    finally:
        store.close()
    os.chmod(db_path, 0o600)
    return signer.verifier


def open_home(directory: Path) -> tuple[CosignerSigner, WitnessStore]:
    """The signer and the state of the witness in ``directory``."""
    directory = Path(directory)
    key_path, db_path = directory / KEY_FILE, directory / DB_FILE
    if not key_path.is_file() or not db_path.is_file():
        raise WitnessHomeError(
            f"{directory} is not a witness directory (no {KEY_FILE} and {DB_FILE}); "
            f"run: swiftchain witness init --dir {directory} --name NAME"
        )
    mode = stat.S_IMODE(key_path.stat().st_mode)
    if mode & 0o077:
        raise WitnessHomeError(
            f"{key_path} is readable by others (mode {mode:o}); run: chmod 600 {key_path}"
        )
    try:
        key = load_private_key(key_path)
    except KeyFileError as exc:
        raise WitnessHomeError(str(exc)) from None
    store = WitnessStore(db_path)
    name = store.get_meta("name")
    if name is None:
        store.close()
        raise WitnessHomeError(f"{db_path} has no witness name; was it made by witness init?")
    return CosignerSigner(name, key), store
