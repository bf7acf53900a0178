"""The edge agent's named errors.

``InvalidInput`` is what a source tells its sender (HTTP 4xx with an OperationOutcome, an
error line on stdin, a failed/ file's error note, an MQTT error message); the others are
the agent's own troubles, shown by the CLI as one message.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the edge agent raises on purpose."""


class ConfigError(EdgeError):
    """The agent's settings are missing, inconsistent, or point at unusable files."""


class InvalidInput(EdgeError):
    """Input from a source cannot become a record; nothing of it was stored.

    ``reason`` is a short machine-readable code, ``detail`` a sentence for the sender,
    ``where`` the place in the input (a FHIRPath-like location, a line or entry number) and
    ``status`` the HTTP status the HTTP source answers with.
    """

    def __init__(self, reason: str, detail: str, *, where: str | None = None, status: int = 422):
        super().__init__(f"{reason}: {detail}" + (f" (at {where})" if where else ""))
        self.reason = reason
        self.detail = detail
        self.where = where
        self.status = status

    def at(self, where: str) -> InvalidInput:
        """The same error, located inside a larger input (``where`` is prefixed)."""
        inner = f"{where}.{self.where}" if self.where else where
        return InvalidInput(self.reason, self.detail, where=inner, status=self.status)


class UnknownType(InvalidInput):
    """The data type is not one the pilot declares (or the agent knows)."""

    def __init__(self, type_id: str) -> None:
        super().__init__(
            "unknown_type",
            f"{type_id!r} is not a data type of this pilot",
            status=422,
        )
        self.type_id = type_id


class OutboxError(EdgeError):
    """The outbox database cannot be opened or written."""


class HubUnavailable(EdgeError):
    """The hub's HTTP API did not answer, or answered with an error."""


class ReceiptError(EdgeError):
    """A receipt cannot be trusted: bad checkpoint signature, wrong leaf hash, bad proof."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
