"""A member organisation's mirror of a hub's log: it follows the hub over its public ledger
API alone, verifies everything it copies (consistency, leaf hashes, record signatures
against the public registry on the log, checkpoint signatures against the pinned log key),
keeps a full copy of the public log in a ledger file of its own, serves the same read-only
ledger API, and cosigns the checkpoints it holds (c2sp.org/tlog-mirror). A fork stops it
and is kept as evidence. See docs/alliance.md, "Mirrors".
"""
