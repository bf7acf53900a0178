"""Erasure by destroying keys: the data keys the ledger's erasable values are sealed under.

Each value the ledger keeps off the log and may have to erase -- a record's body (with its
commitment salt), the opening of a leaf's ``person`` commitment, a relayed record's device
origin -- is stored sealed under a *data key*, and the keys live in a store of their own
(:mod:`ledger.keystore`). Erasure destroys the key: every copy of the sealed value (a deleted
row PostgreSQL keeps until VACUUM, a replica, a WAL archive, a backup of the ledger) is then
ciphertext no one can open, while the leaves, and so every proof, stay as they are.

Scope: what one key covers
--------------------------
The two erasure paths cut the records along different lines: a Consent withdrawal with
erasure takes every body of (pilot, subject, Consent); retention takes the bodies of (pilot,
data type) observed before a cutoff, oldest first. A key may cover only values that every
path erases together, so its scope is the meet of the two partitions:

    (pilot, subject or none, Consent or none, data type, UTC day of observed_at)

Records about nobody (a city's sensors) have (pilot, none, none, type, day). Coarser is
wrong: without the person a withdrawal could not destroy a key without erasing other
people's records; without the day, retention could not destroy one before the person's
last record of that type goes. Finer costs keys without gaining an erasure: a key a record
would be one key-store row per ledger row. The day bounds how long an erased body stays
readable from old copies: at most a day past its own due time (below). At 10,000 people
with 3 types a day for a year, that is ~11 M keys (~1 GB of key store); a pilot whose
retention is shorter than a day or whose people are many more may want hours, which is
:func:`day_of`'s one line.

Openings of other entries follow their erasure path: a Consent entry's opening is erased
with the person (``blind``), so it has the scope (pilot, subject, Consent, ``@consent``,
no day); an access entry's with the person whatever the Consent, so (pilot, subject, none,
``@access``, no day) (:data:`ENTRY_TYPES`; ``@`` is in no data type id). Openings no path
ever erases (erasure entries, access entries about nobody) need no key.

When a key is destroyed
-----------------------
1. Withdrawal with erasure: every key of (pilot, subject, Consent), listed for the commit
   that erases the bodies and destroyed after it (:meth:`ledger.keystore.KeyStore.
   ids_of_scope`, below); the person's ``@access`` key with it, as their access openings
   are blinded then.
2. Any erasure of single records (retention, an erasure request): the rows go, and a key
   is destroyed once no held value sealed under it is left. Retention erases oldest first,
   so a day's key goes when the sweep passes that day's last record of the scope; until
   then the erased rows' old copies are under a live key (at most a day).
3. Backstop, after each retention sweep of (pilot, type): every key of that type for a day
   wholly past retention (``until(day + 1) <= now``: :func:`first_day_kept`) and before the
   oldest held body's day is destroyed (:meth:`ledger.keystore.KeyStore.ids_of`). It holds
   no held body by then; it catches keys a crash left without data (the key store commits
   first, below).

The two stores do not commit together, so each direction has its order:

- Making: a key is durable in the key store before anything is sealed under it (a value
  sealed under a key then lost would be unreadable, not erased). A crash between leaves a
  key with no data: harmless, reused by the next value of its scope, or destroyed by the
  rules above.
- Destroying: the ledger commits first -- the rows deleted, the ``erasure`` entries, and the
  ids of the keys to destroy (ids only: opaque) in the same transaction -- then the key
  store destroys them, then the ledger forgets the ids. A crash between is repaired at the
  next start by destroying the ids still noted (destroying twice is harmless). The other
  order could destroy the data of a withdrawal whose entry then failed to commit.

The AEAD
--------
AES-256-GCM (NIST SP 800-38D) with a 96-bit random nonce, from ``cryptography``, picked over
ChaCha20-Poly1305 by measurement: on the development machine (2-core Xeon with AES-NI,
cryptography 50, one thread), per operation with the cipher object cached a key
(:class:`DataKey`):

    ==========  =========  =========  ===========  ===========  ===========  ===========
    body        GCM seal   GCM open   ChaCha seal  ChaCha open  seal()       open_()
    ==========  =========  =========  ===========  ===========  ===========  ===========
    200 bytes   1.2 us     0.8 us     2.3 us       1.8 us       1.7 us       1.8 us
    4 KB        1.7 us     1.3 us     3.4 us       3.5 us       2.2 us       2.4 us
    ==========  =========  =========  ===========  ===========  ===========  ===========

The first four are the bare AEAD calls; :func:`seal` and :func:`open_` add the nonce, the
framing and the checks of table and index (~0.5 us; noisy to +-0.3 us between runs).
A new cipher object costs ~1 us more, hence the cache. Random nonces bound a key to 2^32
seals (SP 800-38D 8.3); a day key of a type sealing 1,000 records a second seals 2^26.4.

A sealed value is ``version (1 byte) || nonce (12) || ciphertext || tag (16)``, 29 bytes over
the plaintext. The associated data binds it to its place: the table, the log index and the
key id, so a value copied to another row, index or key's slot does not open.

Pure functions; the key store is :mod:`ledger.keystore`.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from hashlib import sha256
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .canonical import canonical_json
from .errors import KeyDestroyed, KeyFileError, RangeError, SealError
from .keys import b64url_decode, b64url_encode
from .sealed import SALT_BYTES
from .sqlite import MAX_INTEGER

#: Bytes of a data key, of the master key and of the key store's secret (AES-256).
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
#: The first byte of every sealed value: the format above.
VERSION = 1
_VERSION_BYTE = bytes([VERSION])
#: The tables whose values are sealed (what the associated data names).
TABLES = ("bodies", "openings", "origins")
#: The data type slot of the scopes of openings of other entry kinds than ``record``.
ENTRY_TYPES = {"consent": "@consent", "access": "@access"}
#: The day slot of a scope that no retention erases.
NO_DAY = ""

_DAY = re.compile(r"^(\d{4}-\d\d-\d\d)T\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def day_of(timestamp: str) -> str:
    """The UTC day (``YYYY-MM-DD``) of an RFC 3339 UTC time, as the envelope spells it."""
    m = _DAY.match(timestamp) if isinstance(timestamp, str) else None
    if m is None:
        raise RangeError(f"not an RFC 3339 UTC time: {timestamp!r}")
    return m.group(1)


def first_day_kept(until: Callable[[datetime], datetime], now: datetime) -> str:
    """The first UTC day not wholly past retention at ``now`` (YYYY-MM-DD), for the backstop:
    a day D is wholly past once a body observed at its last instant is due, that is
    ``until(D + 1 day, 00:00Z) <= now`` (``until``: an observation time's due time, which
    only grows with it, as :meth:`pilots.retention.Retention.until`)."""

    def kept(day: date) -> bool:
        return until(datetime.combine(day + timedelta(days=1), dt_time(0), tzinfo=UTC)) > now

    low, high = date(1, 1, 1), now.astimezone(UTC).date()  # a day not over yet is kept
    if kept(low):
        return low.isoformat()
    # kept(low) is false, kept(high) true: bisect (at most 20 steps over 9999 years).
    while high.toordinal() - low.toordinal() > 1:
        middle = date.fromordinal((low.toordinal() + high.toordinal()) // 2)
        if kept(middle):
            high = middle
        else:
            low = middle
    return high.isoformat()


def _text(value: object, what: str, *, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise RangeError(f"{what} must be a string, not {value!r}")


@dataclass(frozen=True)
class Scope:
    """What one data key covers (module docstring): as the ledger knows it. The key store
    files it under a keyed digest of (pilot, subject, consent), never the pseudonym."""

    pilot: str
    subject: str | None
    consent: str | None
    data_type: str
    day: str

    def __post_init__(self) -> None:
        _text(self.pilot, "pilot")
        _text(self.subject, "subject", optional=True)
        _text(self.consent, "consent", optional=True)
        _text(self.data_type, "data type")
        _text(self.day, "day")
        if self.day != NO_DAY and not re.fullmatch(r"\d{4}-\d\d-\d\d", self.day):
            raise RangeError(f"a scope's day is YYYY-MM-DD, not {self.day!r}")

    @classmethod
    def of_record(
        cls,
        *,
        pilot: str,
        subject: str | None,
        consent: str | None,
        data_type: str,
        observed_at: str,
    ) -> Scope:
        """The scope of a record's body, opening and origin."""
        return cls(pilot, subject, consent, data_type, day_of(observed_at))

    @classmethod
    def of_entry(cls, kind: str, *, pilot: str, subject: str, consent: str | None) -> Scope:
        """The scope of the opening of a ``consent`` or ``access`` entry about ``subject``
        (a Consent entry's names its Consent; an access entry's none)."""
        if kind not in ENTRY_TYPES:
            raise RangeError(f"no scope for the openings of {kind!r} entries")
        return cls(
            pilot, subject, consent if kind == "consent" else None, ENTRY_TYPES[kind], NO_DAY
        )


@dataclass(frozen=True)
class DataKey:
    """A data key: its opaque id (what the data tables carry) and its secret."""

    id: int
    secret: bytes = field(repr=False)
    _aead: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_key_id(self.id)
        if not isinstance(self.secret, bytes) or len(self.secret) != KEY_BYTES:
            raise RangeError(f"a data key is {KEY_BYTES} bytes")
        object.__setattr__(self, "_aead", AESGCM(self.secret))


def check_key_id(value: object) -> int:
    """``value`` if it is a key id (1 .. 2^63 - 1: an SQL BIGINT, never 0); RangeError else."""
    if type(value) is not int or not 0 < value <= MAX_INTEGER:
        raise RangeError(f"a key id is a positive 63-bit integer, not {value!r}")
    return value


def new_key_id() -> int:
    """A random key id: opaque, derived from nothing (the data tables must not carry
    anything linkable). 63 random bits: an id taken already is a conflict the key store
    retries (at 10^7 keys, one new id in 10^12)."""
    while True:
        value = int.from_bytes(os.urandom(8), "big") >> 1
        if value:
            return value


def new_key() -> DataKey:
    return DataKey(new_key_id(), os.urandom(KEY_BYTES))


#: The associated data's start for each table (the index and key id follow, 8 bytes each).
_AAD = {table: b"swiftchain/sealed/v1\n" + table.encode() + b"\n" for table in TABLES}


def _aad(table: str, index: int, key_id: int) -> bytes:
    prefix = _AAD.get(table)
    if prefix is None:
        raise RangeError(f"no sealed values in table {table!r}; one of {', '.join(TABLES)}")
    if type(index) is not int or not 0 <= index <= MAX_INTEGER:
        raise RangeError(f"a log index is a non-negative integer, not {index!r}")
    return prefix + index.to_bytes(8, "big") + key_id.to_bytes(8, "big")


def seal(key: DataKey, table: str, index: int, plaintext: bytes) -> bytes:
    """``plaintext`` sealed under ``key`` for row ``index`` of ``table``."""
    if not isinstance(plaintext, bytes):
        raise RangeError(f"only bytes are sealed, not {type(plaintext).__name__}")
    nonce = os.urandom(NONCE_BYTES)
    return _VERSION_BYTE + nonce + key._aead.encrypt(nonce, plaintext, _aad(table, index, key.id))


def open_(key: DataKey, table: str, index: int, sealed: bytes | bytearray | memoryview) -> bytes:
    """The plaintext :func:`seal` sealed for row ``index`` of ``table`` under ``key``;
    SealError if it was sealed for another place or key, or damaged."""
    aad = _aad(table, index, key.id)
    if not isinstance(sealed, bytes | bytearray | memoryview):
        raise SealError(f"a sealed value is bytes, not {type(sealed).__name__}")
    raw = sealed if isinstance(sealed, bytes) else bytes(sealed)
    if len(raw) < 1 + NONCE_BYTES + TAG_BYTES or raw[0] != VERSION:
        raise SealError(f"the value at {table} {index} is not a sealed value of version {VERSION}")
    try:
        return key._aead.decrypt(raw[1 : 1 + NONCE_BYTES], raw[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise SealError(
            f"the value at {table} {index} does not open under key {key.id}:"
            " damaged, or moved from another row"
        ) from None


def open_with(
    keys: Mapping[int, DataKey],
    key_id: int,
    table: str,
    index: int,
    sealed: bytes | bytearray | memoryview,
) -> bytes:
    """:func:`open_` with the key of ``key_id`` from ``keys`` (what the key store gave for a
    batch); KeyDestroyed if it is not among them."""
    key = keys.get(key_id)
    if key is None:
        raise KeyDestroyed(f"the key of the value at {table} {index} is destroyed: it is erased")
    return open_(key, table, index, sealed)


# -- bodies --------------------------------------------------------------------------------


def body_plaintext(payload: bytes, salt: str) -> bytes:
    """What is sealed of a body: its commitment salt (16 bytes), then JCS(payload).

    The salt is sealed too: with the salt of an erased body left in the open, its public
    commitment SHA-256(salt || JCS(payload)) would let anyone test guesses of a small
    payload (a heart rate) against the leaf."""
    try:
        raw = b64url_decode(salt)
    except ValueError:
        raw = b""
    if len(raw) != SALT_BYTES:
        raise RangeError(f"a body's salt is {SALT_BYTES} bytes")
    return raw + payload


def body_parts(plaintext: bytes) -> tuple[bytes, str]:
    """(payload, salt) of an opened :func:`body_plaintext`."""
    if len(plaintext) < SALT_BYTES:
        raise SealError("an opened body is shorter than its salt")
    return plaintext[SALT_BYTES:], b64url_encode(plaintext[:SALT_BYTES])


# -- the key store's secret: person tags and the resource index ----------------------------


def derive(secret: bytes, label: bytes) -> bytes:
    """A key for one use, from the key store's secret (HMAC-SHA-256 as a PRF, RFC 2104)."""
    return hmac.new(secret, b"swiftchain/keystore/" + label, sha256).digest()


def person_tag(tag_key: bytes, pilot: str, subject: str | None, consent: str | None) -> str:
    """What the key store files a scope's person under (hex): a keyed digest of (pilot,
    subject, consent), so that the key store, its WAL and its backups name no one. ``""``
    for a scope about nobody."""
    if subject is None and consent is None:
        return ""
    message = canonical_json([pilot, subject, consent])
    return hmac.new(tag_key, message, sha256).hexdigest()


def resource_digest(index_key: bytes, pilot: str, data_type: str, resource_id: str) -> bytes:
    """What the ledger indexes a body's FHIR ``id`` by in place of the id (which a data table
    must not hold in the open): HMAC-SHA-256 under the ledger-wide index key, truncated to
    16 bytes (collisions are checked against the opened body)."""
    for value, what in ((pilot, "pilot"), (data_type, "data type"), (resource_id, "id")):
        _text(value, what)
    message = canonical_json([pilot, data_type, resource_id])
    return hmac.new(index_key, message, sha256).digest()[:16]


# -- wrapping under the operator's master key ----------------------------------------------


def wrap(master: AESGCM, label: bytes, secret: bytes) -> bytes:
    """``secret`` sealed under the master key (AES-256-GCM, not AES-KW: the ``label``, a key
    id, binds the wrapped key to its row). nonce || ciphertext || tag, 60 bytes a key."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + master.encrypt(nonce, secret, b"swiftchain/keystore/wrap\n" + label)


def unwrap(master: AESGCM, label: bytes, wrapped: bytes) -> bytes:
    try:
        return master.decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], b"swiftchain/keystore/wrap\n" + label
        )
    except (InvalidTag, ValueError):
        raise SealError(
            "a wrapped key does not unwrap under this master key: damaged, or another key's"
        ) from None


def write_master_key(path: Path, *, overwrite: bool = False) -> bytes:
    """A new master key in ``path`` (mode 0600, one line of unpadded base64url); returns it."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a master key")
    secret = os.urandom(KEY_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(b64url_encode(secret) + "\n")
        os.chmod(path, 0o600)
    except OSError as exc:
        raise KeyFileError(f"cannot write master key {path}: {exc.strerror}") from None
    return secret


def load_master_key(path: Path) -> bytes:
    """The master key in ``path`` (:func:`write_master_key`); KeyFileError if it is not one."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read master key {path}: {exc}") from None
    try:
        secret = b64url_decode(text)
    except ValueError:
        secret = b""
    if len(secret) != KEY_BYTES:
        raise KeyFileError(
            f"{path} is not a master key (one line of {KEY_BYTES} bytes in unpadded base64url)"
        )
    return secret
