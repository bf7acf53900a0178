"""The access tests' fixtures live in ``tests/support/access_fixtures.py`` (the security
suite uses them too)."""

from tests.support.access_fixtures import access_hub, auditor, hospital

__all__ = ["access_hub", "auditor", "hospital"]
