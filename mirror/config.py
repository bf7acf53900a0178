"""A mirror's directory: what ``swiftchain mirror init`` writes and ``run`` reads.

``mirror.json`` (the hub's URL, the pinned log verifier key, the mirror's cosigner name),
``mirror.key`` (the cosigner's key, mode 0600), ``mirror.vkey`` (its cosignature/v1
verifier key, for the alliance's trust policy), ``ledger.db`` (the copy of the log). The log
key is given at init and never taken from the hub; nothing here is silently replaced.

The log key's kind tells the log's crypto suite (:mod:`ledger.suite`); the mirror's copy is
a log of that suite, and its cosigner key is of that suite's kind too (Ed25519 for
``ed25519-sha256``, SM2 for ``sm2-sm3``), so a national-profile alliance gets SM2
cosignatures from its mirrors as it does from the hub.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.checkpoint import NoteVerifier
from ledger.cosignature import CosignerSigner, attach_cosignatures, cosign
from ledger.errors import CheckpointError, LedgerError
from ledger.keys import generate_key, load_private_key, write_key_pair

from .errors import MirrorConfigError

CONFIG_FILE = "mirror.json"
KEY_FILE = "mirror.key"
VKEY_FILE = "mirror.vkey"
LEDGER_FILE = "ledger.db"
DEFAULT_NAME = "swiftchain.local/mirror"


class MirrorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    hub: str = Field(max_length=2048)
    """The hub's base URL (``http://host:port``); the mirror reads ``/api/v1/ledger/*``."""
    log_key: str = Field(max_length=1024)
    """The hub's signed-note verifier key, pinned at init."""
    name: str = Field(max_length=256)
    """The mirror's cosigner name (a schema-less URL, c2sp.org/tlog-cosignature)."""

    def verifier(self) -> NoteVerifier:
        return NoteVerifier.parse(self.log_key)


def check_hub_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MirrorConfigError(f"--hub {url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise MirrorConfigError(f"--hub {url!r}: give the hub's base URL, no query")
    return url.rstrip("/")


def read_log_key(value: str) -> NoteVerifier:
    """The verifier key as text, or a file holding it (``hub.vkey``)."""
    path = Path(value)
    try:
        text = path.read_text(encoding="utf-8").strip() if path.is_file() else value
    except (OSError, UnicodeDecodeError) as exc:
        raise MirrorConfigError(f"cannot read the log key in {value}: {exc}") from None
    try:
        return NoteVerifier.parse(text)
    except CheckpointError as exc:
        raise MirrorConfigError(
            f"--log-key is not a signed-note verifier key (<name>+<hash>+<base64>): {exc}"
        ) from None


def init_mirror(directory: Path, hub: str, log_key: str, name: str = DEFAULT_NAME) -> MirrorConfig:
    """Create a mirror's directory; MirrorConfigError if it already holds one."""
    verifier = read_log_key(log_key)
    try:
        # The name's rules are the cosigner's (signed-note key names): check before writing.
        CosignerSigner(name, generate_key(verifier.suite))
        config = MirrorConfig(hub=check_hub_url(hub), log_key=verifier.encode(), name=name)
    except (CheckpointError, ValidationError) as exc:
        raise MirrorConfigError(f"--name {name!r} is not a cosigner name: {exc}") from None
    directory = Path(directory)
    if (directory / CONFIG_FILE).exists() or (directory / KEY_FILE).exists():
        raise MirrorConfigError(f"{directory} already holds a mirror; use another --dir")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        key = write_key_pair(directory / KEY_FILE, suite=verifier.suite)
        signer = CosignerSigner(name, key)
        (directory / VKEY_FILE).write_text(signer.verifier.encode() + "\n", encoding="utf-8")
        tmp = directory / (CONFIG_FILE + ".tmp")
        tmp.write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, directory / CONFIG_FILE)
    except OSError as exc:
        raise MirrorConfigError(f"cannot write the mirror in {directory}: {exc}") from None
    except LedgerError as exc:
        raise MirrorConfigError(str(exc)) from None
    return config


def load_config(directory: Path) -> MirrorConfig:
    path = Path(directory) / CONFIG_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MirrorConfigError(
            f"no mirror in {directory}; make one with: swiftchain mirror init --dir {directory}"
            " --hub URL --log-key VKEY"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MirrorConfigError(f"cannot read {path}: {exc}") from None
    try:
        config = MirrorConfig.model_validate_json(raw)
        config.verifier()
    except (ValidationError, CheckpointError) as exc:
        raise MirrorConfigError(f"{path} is not a mirror's configuration: {exc}") from None
    return config


@dataclass
class MirrorCosigner:
    """Cosignature/v1 lines (c2sp.org/tlog-cosignature) by the mirror's key: the statement
    that it has durably logged the checkpoint's entries and serves them (tlog-mirror)."""

    signer: CosignerSigner
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    def load(cls, directory: Path, name: str) -> MirrorCosigner:
        try:
            return cls(CosignerSigner(name, load_private_key(Path(directory) / KEY_FILE)))
        except LedgerError as exc:
            raise MirrorConfigError(f"the mirror's key: {exc}") from None

    def cosign(self, note: str) -> str:
        # A cosignature/v1 timestamp is never 0 (tlog-witness, add-checkpoint).
        line = cosign(note, self.signer, max(1, int(self.clock())))
        return attach_cosignatures(note, [line])
