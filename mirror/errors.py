"""The mirror's named errors (the CLI shows them as one line)."""

from __future__ import annotations


class MirrorError(Exception):
    """Base of the mirror's user-facing errors."""


class MirrorConfigError(MirrorError):
    """A mirror directory, a hub URL or a key that cannot be used as given."""


class HubFault(MirrorError):
    """The hub answered, but with something that does not verify or is not the API's shape:
    nothing of it is kept, and the mirror tries again later."""


class HubUnreachable(MirrorError):
    """The hub did not answer (connection refused, timeout, HTTP 5xx)."""
