"""Loading a set of pilots: the packaged demonstration-zone definitions by default, or every
``*.yaml`` in a directory."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import PilotDefinitionError, Problem, UnknownPilot
from .loader import load_pilot, load_pilot_text
from .models import Pilot

PACKAGED = "pilots.definitions"


def packaged_definitions() -> list[tuple[str, bytes]]:
    """(file name, YAML bytes) of each packaged pilot definition, sorted by name."""
    root = resources.files(PACKAGED)
    return sorted(
        (entry.name, entry.read_bytes())
        for entry in root.iterdir()
        if entry.is_file() and entry.name.endswith(".yaml")
    )


def load_pilots(directory: str | Path | None = None) -> dict[str, Pilot]:
    """Every pilot in ``directory`` (``*.yaml``, sorted), or the packaged ones, by id.

    Raises PilotDefinitionError naming every bad file and line, and for two files that
    define the same pilot id.
    """
    loaded: list[tuple[str, Pilot]] = []
    problems: list[Problem] = []
    if directory is None:
        sources = [(f"{PACKAGED}/{name}", raw) for name, raw in packaged_definitions()]
        for name, raw in sources:
            try:
                loaded.append((name, load_pilot_text(raw, name)))
            except PilotDefinitionError as exc:
                problems.extend(exc.problems)
    else:
        folder = Path(directory)
        if not folder.is_dir():
            raise PilotDefinitionError([Problem((), "not a directory", file=str(folder))])
        for path in sorted(folder.glob("*.yaml")):
            try:
                loaded.append((str(path), load_pilot(path)))
            except PilotDefinitionError as exc:
                problems.extend(exc.problems)
    pilots: dict[str, Pilot] = {}
    first_file: dict[str, str] = {}
    for file, pilot in loaded:
        if pilot.id in pilots:
            problems.append(
                Problem(
                    ("id",),
                    f"pilot {pilot.id!r} is already defined in {first_file[pilot.id]}",
                    file=file,
                )
            )
            continue
        pilots[pilot.id] = pilot
        first_file[pilot.id] = file
    if problems:
        raise PilotDefinitionError(problems)
    return pilots


def get_pilot(pilots: dict[str, Pilot], pilot_id: str) -> Pilot:
    """``pilots[pilot_id]``, or UnknownPilot naming the ones there are."""
    try:
        return pilots[pilot_id]
    except KeyError:
        known = ", ".join(sorted(pilots)) or "none"
        raise UnknownPilot(f"no pilot {pilot_id!r} (known: {known})") from None
