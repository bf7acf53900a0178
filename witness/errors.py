"""The witness's named errors. ``Rejection`` and its kinds are answers to a submitter, each
with the HTTP status c2sp.org/tlog-witness prescribes; the rest are the operator's."""

from __future__ import annotations


class WitnessError(Exception):
    """Base of every error the witness raises."""


class WitnessHomeError(WitnessError):
    """The witness directory is missing, not initialised, already initialised, or unsafe
    (a key file others can read)."""


class LogConfigError(WitnessError):
    """A log cannot be added: a bad verifier key, or its origin is already witnessed with
    another key (never silently replaced)."""


class WitnessStorageError(WitnessError):
    """The witness's SQLite state cannot be read or written."""


class Rejection(WitnessError):
    """An add-checkpoint request the witness refuses; ``status`` is its HTTP status."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(Rejection):
    """400: the body is malformed, or the old size is larger than the checkpoint's."""

    status = 400


class NotTrusted(Rejection):
    """403: no signature by a trusted key of the log, or one that fails to verify."""

    status = 403


class UnknownLog(Rejection):
    """404: the witness does not witness the checkpoint's origin."""

    status = 404


class SizeConflict(Rejection):
    """409: the old size is not the size of the latest checkpoint cosigned for the log."""

    status = 409

    def __init__(self, known_size: int) -> None:
        super().__init__(f"the latest cosigned size is {known_size}")
        self.known_size = known_size


class Inconsistent(Rejection):
    """422: the consistency proof does not verify, or the checkpoint contradicts the last
    cosigned one (same size, another root; an empty tree with a non-empty root)."""

    status = 422
