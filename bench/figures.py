"""How a benchmark hands its figures to ``make bench`` (bench/report.py): a JSON list of rows.

A row is a measure and its result text, and either a target the benchmark decides itself
(``met``), or a number (``value``) with a bound on it (``op``, ``bound``: p99 <= 100 ms), or
a number read against a reference figure (``reference``: the name of a figure of the
reference yardsticks in /work/shared/limits, see bench/limits.py) whose bound is on the
ratio ``value / reference`` measured in the same run. Only the report knows the reference's
figures, so it decides those rows; a benchmark run alone reports them as not decided.

A benchmark may also measure its own yardstick beside ours, alternately in the same run
(the hub on SQLite beside the hub on PostgreSQL, pgbench beside a driver): ``beside`` is
that yardstick's result and ``ratio`` the text of ours / it, which the report shows in its
reference and ratio columns.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Figure:
    measure: str
    result: str
    target: str = ""
    """Text of the target; derived from ``op`` and ``bound`` when empty."""
    met: bool | None = None
    """Decided by the benchmark; None: decided from ``op`` and ``bound`` (or no target)."""
    value: float | None = None
    unit: str = ""
    reference: str | None = None
    """A reference figure (``ingest.hub_cpu_us``); the bound is then on value / reference."""
    op: str | None = None
    bound: float | None = None
    beside: str = ""
    """The result of a yardstick the benchmark measured itself, beside ours."""
    ratio: str = ""
    """Ours / ``beside``, each round's and their mean, as text."""

    def target_text(self) -> str:
        if self.target:
            return self.target
        if self.op is None or self.bound is None:
            return "-"
        if self.reference is not None:
            return f"ratio {self.op} {self.bound:g}"
        return f"{self.op} {self.bound:g} {self.unit}".strip()

    def decide(self, ratio: float | None = None) -> bool | None:
        """Whether the target is met: ``ratio`` is value / reference for a reference row."""
        if self.met is not None:
            return self.met
        if self.op is None or self.bound is None:
            return None
        measured = ratio if self.reference is not None else self.value
        if measured is None:
            return None
        return OPS[self.op](measured, self.bound)

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["target"] = self.target_text()
        out["met"] = self.decide()
        return out

    @classmethod
    def from_json(cls, row: dict[str, object]) -> Figure:
        known = {k: v for k, v in row.items() if k in cls.__dataclass_fields__}
        if known.get("reference") is not None:
            # The benchmark alone could not decide a row read against a reference.
            known["met"] = None
        return cls(**known)  # type: ignore[arg-type]


def write_figures(path: Path, figures: Iterable[Figure]) -> None:
    """Write ``figures`` as JSON to ``path``."""
    Path(path).write_text(json.dumps([f.to_json() for f in figures], indent=2) + "\n")


def write_rows(path: Path, rows: Iterable[tuple[str, str, str, bool] | Figure]) -> None:
    """Write ``(measure, result, target, met)`` rows (or Figures) as JSON to ``path``."""
    write_figures(
        path,
        (r if isinstance(r, Figure) else Figure(r[0], r[1], r[2], bool(r[3])) for r in rows),
    )


def ratio_text(ratios: list[float]) -> str:
    """Each round's ratio and, for more than one, their mean: ``0.81 / 0.86 (mean 0.84)``."""
    text = " / ".join(f"{r:.2f}" for r in ratios)
    if len(ratios) > 1:
        text += f" (mean {sum(ratios) / len(ratios):.2f})"
    return text
