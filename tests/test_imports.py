"""The package's shape: no import circles, no module over 500 lines.

Imports are read the way the code hashes read them (:func:`parallel_scaling.common.codedeps.direct_imports`:
top-level and function-level ``import``/``from ... import`` of the package's own modules), so a circle
hidden in a function body counts too.
"""

from __future__ import annotations

from parallel_scaling.common import codedeps

MAX_LINES = 500


def import_graph() -> dict[str, frozenset[str]]:
    return {m: codedeps.direct_imports(m) for m in codedeps.package_modules()}


def circles(graph: dict[str, frozenset[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_circle_finder_finds_a_circle_through_three_modules() -> None:
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}
    assert circles(graph) == [["a", "b", "c"]]


def test_the_package_has_no_import_circles() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the reader found the package
    assert "commands" in graph["cli"] and "cli" not in graph["common.codedeps"]
    assert circles(graph) == [], "import circles (each: the modules that import one another)"


def test_no_module_is_over_500_lines() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in codedeps.package_modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}
