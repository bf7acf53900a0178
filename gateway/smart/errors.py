"""OAuth 2.0 errors (RFC 6749 section 5.2), each with the status the token endpoint sends."""

from __future__ import annotations

from ..errors import HubError


class OAuthError(HubError):
    """An OAuth error response: ``error`` is the RFC 6749 code, ``status`` the HTTP status."""

    status = 400

    def __init__(self, error: str, description: str, status: int | None = None) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        if status is not None:
            self.status = status


class InvalidToken(HubError):
    """A bearer access token is missing, malformed, expired or not ours (RFC 6750 3.1)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description
