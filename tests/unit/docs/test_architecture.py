"""docs/architecture.md's table of parts is the rule for imports between our packages:
every package is in it, and no module imports a package of ours its row does not name
(lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

from .pages import ROOT, code_names, read, section

#: Folders with Python that are not parts of the product (they may import anything).
NOT_PARTS = frozenset({"tests", "bench"})


def our_packages() -> set[str]:
    return {
        p.parent.name
        for p in ROOT.glob("*/__init__.py")
        if p.parent.name not in NOT_PARTS and not p.parent.name.startswith(".")
    }


def allowed_imports() -> dict[str, set[str] | None]:
    """package -> the packages of ours it may import (None: any)."""
    table = section(read("docs/architecture.md"), "Parts and the direction of imports")
    rules: dict[str, set[str] | None] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        (package,) = code_names(cells[0])
        imports = cells[2]
        rules[package] = None if imports.startswith("any") else set(code_names(imports))
    return rules


def imports_of(package: str, ours: set[str], root: Path = ROOT) -> dict[str, set[str]]:
    """Imported package of ours -> the modules of ``package`` that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted((root / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ours and top != package:
                    found.setdefault(top, set()).add(str(path.relative_to(root)))
    return found


def test_every_package_has_a_row() -> None:
    assert set(allowed_imports()) == our_packages()


def test_no_package_imports_against_the_table() -> None:
    ours = our_packages()
    broken = []
    for package, allowed in allowed_imports().items():
        if allowed is None:
            continue
        for imported, where in imports_of(package, ours).items():
            if imported not in allowed:
                broken.append(f"{package} imports {imported} in {sorted(where)[:3]}")
    assert not broken, "docs/architecture.md forbids: " + "; ".join(broken)


def test_edge_and_gateway_meet_only_on_the_wire() -> None:
    rules = allowed_imports()
    assert "gateway" not in (rules["edge"] or {"gateway"})
    assert "edge" not in (rules["gateway"] or {"edge"})
    assert rules["ledger"] == set()


def test_the_walk_sees_lazy_imports(tmp_path: Path) -> None:
    # An import inside a function is an import all the same.
    (tmp_path / "edge").mkdir()
    (tmp_path / "edge" / "late.py").write_text(
        "def f():\n    from gateway.settings import HubSettings\n    import ledger.keys\n"
        "    from . import sibling\n"
    )
    found = imports_of("edge", {"edge", "gateway", "ledger"}, root=tmp_path)
    assert found == {"gateway": {"edge/late.py"}, "ledger": {"edge/late.py"}}
