"""How a benchmark hands its figures to ``make bench`` (bench/report.py): a JSON list of rows,
each a measure, its result, its target and whether the target was met."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path


def write_rows(path: Path, rows: Iterable[tuple[str, str, str, bool]]) -> None:
    """Write ``(measure, result, target, met)`` rows as JSON to ``path``."""
    out = [{"measure": m, "result": r, "target": t, "met": bool(ok)} for m, r, t, ok in rows]
    Path(path).write_text(json.dumps(out, indent=2) + "\n")
