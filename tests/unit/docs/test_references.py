"""The repository explains itself: no code, test or page points readers to a design paper
outside it or to numbered tickets, and every file a page names exists."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from .pages import ROOT

# Spelled in pieces so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        [
            r"\b" + "DES" + r"IGN\b",
            "design" + r"\s+doc",
            r"\b[Ii]" + r"ssue\s+#?\d",
            r"\b[Ii]" + r"ssues'",
            r"\bwork[- ]" + r"items?\b",
        ]
    )
)
PARTS = (
    "ledger",
    "gateway",
    "edge",
    "pilots",
    "simulators",
    "swiftchain",
    "witness",
    "tests",
    "bench",
    "docs",
)
#: A repository path in a page; ``swiftchain/v1/...`` is an MQTT topic, not a path.
NAMED_PATH = re.compile(rf"(?<![\w./-])((?!swiftchain/v1/)(?:{'|'.join(PARTS)})/[\w./-]*)")
PAGES = ("README.md", "docs", "tests/security/README.md")


def project_files(*suffixes: str) -> Iterator[Path]:
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and not d.endswith(".egg-info")]
        for name in files:
            if name.endswith(suffixes):
                yield Path(folder) / name


def test_no_reference_to_outside_documents_or_issue_numbers() -> None:
    found = []
    for path in project_files(".py", ".md", ".toml", ".yaml", ".yml"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not found, "say it in the repository's own words instead:\n" + "\n".join(found)


def test_every_path_a_page_names_exists() -> None:
    pages: list[Path] = []
    for name in PAGES:
        target = ROOT / name
        pages += sorted(target.glob("*.md")) if target.is_dir() else [target]
    missing = []
    for page in pages:
        for named in NAMED_PATH.findall(page.read_text(encoding="utf-8")):
            named = named.rstrip(".,:")
            if not (ROOT / named).exists():
                missing.append(f"{page.relative_to(ROOT)} names {named}")
    assert not missing, "\n".join(missing)
