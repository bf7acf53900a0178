"""A tlog-witness (c2sp.org/tlog-witness): cosigns a log's checkpoints once they are proven
consistent with the last one it cosigned, and keeps that state in SQLite."""
