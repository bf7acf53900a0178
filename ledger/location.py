"""Where a store lives, as its settings name it: a file path, ``sqlite:`` + a path (SQLite),
or a ``postgresql://`` URL (:mod:`ledger.postgres`). Pure: nothing here opens anything.

``sqlite:`` takes the rest of the text as the path, the way a ``file:`` URI of RFC 8089
section 2 does (``sqlite:///var/lib/hub/ledger.db.access`` is absolute, ``sqlite:data/x``
relative), without its percent-decoding: a path is taken as written. A location naming a
host (``sqlite://host/x``) or any other scheme is refused with a StoreError.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import StoreError
from .postgres import Url, is_url, redacted

#: ``scheme://``, a scheme as RFC 3986 section 3.1 spells it: a location with one is a URL,
#: and only PostgreSQL's are ours (``sqlite:`` is matched first). A path may hold a colon.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SQLITE = "sqlite:"

Location = Path | Url
"""A SQLite file, or a PostgreSQL database and schema."""


def sqlite_path(location: Path | str) -> Path | None:
    """The SQLite file ``location`` names, or None for a PostgreSQL URL; StoreError for
    anything else."""
    if isinstance(location, Path):
        return location
    if is_url(location):
        return None
    if not location.lower().startswith(_SQLITE):
        if _URL.match(location):
            raise StoreError(
                f"unknown store {redacted(location)}: give a path, sqlite:///path"
                " or postgresql://..."
            )
        if not location:
            raise StoreError("an empty store location")
        return Path(location)
    rest = location[len(_SQLITE) :]
    if rest.startswith("//"):
        rest = rest[2:]
        if rest and not rest.startswith("/"):
            raise StoreError(f"{location}: a sqlite: location names a file, not a host")
    if not rest:
        raise StoreError(f"{location}: no path after sqlite:")
    return Path(rest)


def parse(location: Path | str, *, default_schema: str) -> Location:
    """The store ``location`` names: a path, or the PostgreSQL URL with its schema
    (``default_schema`` unless the URL has ``?schema=``). StoreError if it names neither."""
    path = sqlite_path(location)
    if path is not None:
        return path
    assert isinstance(location, str)
    return Url(location, default_schema=default_schema)


def beside(ledger: Path | str, *, suffix: str, schema: str, ledger_schema: str) -> Path | str:
    """The default location of a store kept beside the ledger at ``ledger``: the file
    ``<ledger><suffix>`` beside a SQLite ledger; in the same database as a PostgreSQL
    ledger, schema ``schema`` -- or ``<S>_<schema>`` when the ledger's URL picks a schema S
    other than its default ``ledger_schema``, so that two hubs sharing a database with
    ledgers in schemas of their own share no other store either."""
    path = sqlite_path(ledger)
    if path is not None:
        return path.with_name(path.name + suffix)
    assert isinstance(ledger, str)
    parts = urlsplit(ledger)
    query = parse_qsl(parts.query, keep_blank_values=True)
    chosen = next((v for k, v in query if k == "schema"), ledger_schema)
    rest = [(k, v) for k, v in query if k != "schema"]
    rest.append(("schema", schema if chosen == ledger_schema else f"{chosen}_{schema}"))
    url = urlunsplit(parts._replace(query=urlencode(rest)))
    Url(url, default_schema=schema)  # StoreError now if the derived schema is no SQL name
    return url
