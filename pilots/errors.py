"""The named errors of ``pilots``. Decisions are values (``Decision``), never exceptions:
these are for definitions that cannot be loaded and inputs that are not what they claim."""

from __future__ import annotations

from dataclasses import dataclass


class PilotError(Exception):
    """Base of every error ``pilots`` raises."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a pilot definition, where it is, and what to do about it.

    ``path`` is the place inside the document (``("read", 2, "role")``); ``line`` and
    ``column`` are 1-based positions in ``file`` when the definition came from YAML.
    """

    path: tuple[str | int, ...]
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def where(self) -> str:
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else p for p in self.path)
        dotted = dotted.replace(".[", "[")
        place = self.file or ""
        if self.file is not None and self.line is not None:
            place = f"{self.file}:{self.line}:{self.column}"
        return ": ".join(part for part in (place, dotted) if part) or "(document)"

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class PilotDefinitionError(PilotError):
    """A pilot definition is not valid YAML, not a valid pilot, or refers to things it does
    not define. ``problems`` lists every problem found, each with its file:line:column."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        lines = [str(p) for p in self.problems]
        head = lines[0] if len(lines) == 1 else f"{len(lines)} problems:"
        super().__init__("\n  ".join([head, *lines]) if len(lines) > 1 else head)


class UnknownPilot(PilotError):
    """No pilot of that id is loaded."""


class ConsentError(PilotError):
    """A Consent resource cannot be parsed, or a consent cannot be built from the values
    given (bad organisation id, unknown purpose of use, naive datetime, ...)."""
