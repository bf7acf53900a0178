"""Reading the documentation pages the docs tests check: sections by heading, the first
column of tables, fenced code blocks. Plain text functions over Markdown as we write it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FENCE = re.compile(r"^(```+|~~~+)\s*([\w+-]*)\s*$")


def read(name: str) -> str:
    """A page by its path from the repository root, e.g. ``docs/configure.md``."""
    return (ROOT / name).read_text(encoding="utf-8")


def _without_code(lines: list[str]) -> list[str | None]:
    """The lines, with those inside fenced code blocks replaced by None."""
    out: list[str | None] = []
    fence: str | None = None
    for line in lines:
        m = _FENCE.match(line.strip())
        if fence is None and m:
            fence = m.group(1)
            out.append(None)
        elif fence is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
            out.append(None)
        else:
            out.append(line)
    return out


def headings(text: str) -> list[str]:
    """Every heading's text, backticks removed, in order (code blocks skipped)."""
    found = []
    for line in _without_code(text.splitlines()):
        if line is not None and (m := _HEADING.match(line)):
            found.append(m.group(2).replace("`", ""))
    return found


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (backticks ignored) up to the next heading of the same
    or a higher level; KeyError if there is no such heading."""
    lines = text.splitlines()
    plain = _without_code(lines)
    start = level = None
    for i, line in enumerate(plain):
        if line is None or not (m := _HEADING.match(line)):
            continue
        if start is None:
            if m.group(2).replace("`", "") == heading:
                start, level = i + 1, len(m.group(1))
        elif level is not None and len(m.group(1)) <= level:
            return "\n".join(lines[start:i])
    if start is None:
        raise KeyError(f"no heading {heading!r}")
    return "\n".join(lines[start:])


def own_text(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of any level."""
    body = section(text, heading).splitlines()
    plain = _without_code(body)
    for i, line in enumerate(plain):
        if line is not None and _HEADING.match(line):
            return "\n".join(body[:i])
    return "\n".join(body)


def first_column(text: str) -> list[str]:
    """The first cell of every table row (header and separator rows left out)."""
    cells = []
    rows = [line for line in _without_code(text.splitlines()) if line and line.startswith("|")]
    for row in rows:
        first = re.split(r"(?<!\\)\|", row)[1].strip()
        if set(first) <= set("-: ") or first in ("setting", "option", "method", "command"):
            continue
        cells.append(first)
    return cells


def code_names(cell: str) -> list[str]:
    """The backticked names in a table cell: "`a`, `b`" -> ["a", "b"]."""
    return re.findall(r"`([^`]+)`", cell)


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i].strip())
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2)
        body = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence) and lines[i].strip().strip(fence[0]) == ""
        ):
            body.append(lines[i])
            i += 1
        blocks.append((lang, "\n".join(body)))
        i += 1
    return blocks


def shell_commands(block: str) -> list[str]:
    """The commands of a shell code block, continuation lines joined."""
    commands = []
    current = ""
    for line in block.splitlines():
        if current:
            current += " " + line.strip()
        else:
            current = line.strip()
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        if current:
            commands.append(current)
        current = ""
    if current:
        commands.append(current)
    return commands
