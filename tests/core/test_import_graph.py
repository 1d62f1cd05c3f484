"""The import graph (issue 30): no import cycles, checked on grimp's graph (import-linter's).

The layers, independence and purity rules are import-linter contracts in pyproject.toml
(`make contracts`). Cycles are checked here, module by module, function-level and
TYPE_CHECKING imports included, for the whole package: there are none.
"""

from __future__ import annotations

import sys

import grimp


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan: the import cycles, each as the sorted modules of one strongly connected set."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return out


def test_import_graph_when_built_then_no_cycle() -> None:
    cycles = strongly_connected(grimp.build_graph("mmbot"))
    assert cycles == []


def test_cycle_finder_when_two_modules_import_each_other_then_found(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "knotpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from knotpkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from knotpkg import a\n")
    (pkg / "c.py").write_text("from knotpkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert strongly_connected(grimp.build_graph("knotpkg", cache_dir=None)) == [["knotpkg.a", "knotpkg.b"]]
