"""The ledger's named errors. Every public function raises one of these for bad input."""


class LedgerError(Exception):
    """Base of every error the ledger core raises."""


class InvalidEnvelope(LedgerError):
    """A record envelope is malformed, oversize, or inconsistent.

    `reason` is a short machine-readable code used in `rejected` receipts.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class EncodingError(LedgerError, ValueError):
    """Text is not the encoding it should be (base64url, hex). Also a ValueError, so callers
    written against the plain ValueError keep working."""


class SignatureError(LedgerError):
    """A signature does not verify, or cannot be decoded."""


class KeyFileError(LedgerError):
    """A key file or key string cannot be read or is of the wrong kind."""


class SuiteError(LedgerError, ValueError):
    """An unknown crypto suite, or a key or log of another suite than the one required."""


class ProofError(LedgerError):
    """A proof is malformed, or does not verify against the given root."""


class CheckpointError(LedgerError):
    """A checkpoint note cannot be parsed or its signature does not verify."""


class StoreError(LedgerError):
    """The store cannot do what was asked (missing or corrupt file, a malformed batch)."""


class RangeError(StoreError):
    """A bad argument: an index, size or range outside the log, a value of the wrong type, an
    unknown entry kind. The caller's mistake (the hub answers 400)."""


class StorageError(StoreError):
    """The storage cannot take the write now (disk or quota full, I/O error, a lock held
    past the busy timeout); nothing of it was written, and the same write may succeed later."""


class PolicyError(LedgerError):
    """A trust policy cannot be read or is inconsistent (an undefined name, a duplicate key,
    a threshold out of range). ``problems`` lists every one found, each as (line, message)
    with the 1-based line of the policy text it is on (None when not from text)."""

    def __init__(
        self, problems: list[tuple[int | None, str]] | str, *, file: str | None = None
    ) -> None:
        self.problems = [(None, problems)] if isinstance(problems, str) else list(problems)
        self.file = file
        lines = [self.place(line) + message for line, message in self.problems]
        text = lines[0] if len(lines) == 1 else f"{len(lines)} problems:\n  " + "\n  ".join(lines)
        super().__init__(text)

    def place(self, line: int | None) -> str:
        if self.file is None:
            return "" if line is None else f"line {line}: "
        return f"{self.file}: " if line is None else f"{self.file}:{line}: "


class FencedError(StorageError):
    """A write was refused because this process no longer holds the log's lease: another
    sequencer took over (:mod:`ledger.lease`). Nothing of the write was committed, and this
    process must not try again as the writer."""


class SealError(StoreError):
    """A sealed value does not open: damaged, moved to another row or index, sealed under
    another key, or not a sealed value of ours (:mod:`ledger.datakeys`)."""


class KeyDestroyed(StoreError):
    """The data key a value was sealed under is destroyed: the value is erased, and every
    copy of it left anywhere is ciphertext no one can open (:mod:`ledger.datakeys`)."""
