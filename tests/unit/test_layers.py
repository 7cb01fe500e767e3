"""No module of Cutline imports another that imports it back, directly or through others.

``lint-imports`` (``.importlinter``) checks the layers; a layer's own modules may import
one another, so this checks that those imports, too, never close a loop. grimp, the graph
import-linter builds, counts imports inside functions as well.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cluster", "snapshots", "config")


def import_cycles(packages: tuple[str, ...]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(modules)))
    try:
        for module in modules:
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return groups


def test_no_module_imports_itself_back() -> None:
    assert import_cycles(PACKAGES) == []


def test_the_cycle_check_sees_a_cycle(tmp_path: Path) -> None:
    # Without this, the test above would also pass if the check could never see a cycle.
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loopy import b\n")
    (package / "b.py").write_text("def f():\n    from loopy import c\n")  # inside a function: counted
    (package / "c.py").write_text("import loopy.a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert import_cycles(("loopy",)) == [["loopy.a", "loopy.b", "loopy.c"]]
    finally:
        sys.path.remove(str(tmp_path))
