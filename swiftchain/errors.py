"""The root of the CLI package's own named errors (the demo's broker and the like); the
mapping of every package's errors to a CLI message is in ``swiftchain.commands.errors``."""


class SwiftchainError(Exception):
    """Base of every error ``swiftchain`` itself raises on purpose."""
