"""The package's shape: no import circles, each part imports only the parts below it, no module over
500 lines (docs/architecture.md shows the layers).

Imports are read the way the code hashes read them (:func:`parallel_scaling.jobs.codedeps.direct_imports`:
top-level and function-level ``import``/``from ... import`` of the package's own modules), so a circle
hidden in a function body counts too.
"""

from __future__ import annotations

from parallel_scaling.jobs import codedeps

MAX_LINES = 500

#: what each top-level part of the package may import besides itself, lowest first: how answers are
#: judged (scoring) depends on nothing; data I/O on scoring only (gold answers must parse); the job
#: machinery on data I/O; what generation needs (common) on both; a stage never imports another
#: stage; plan (read by the Snakefile) may read the data stage to check the study's files, and the
#: evaluate stage's prediction summary (answer-lengths reads prediction rows as that summary does)
ALLOWED: dict[str, set[str]] = {
    "__init__": set(),
    "commands": set(),
    "scoring": set(),
    "dataio": {"scoring"},
    "jobs": {"commands", "dataio", "scoring"},
    "common": {"dataio", "jobs", "scoring"},
    "data": {"common", "dataio", "jobs", "scoring"},
    "train": {"common", "dataio", "jobs", "scoring"},
    "evaluate": {"common", "dataio", "jobs", "scoring"},
    "analysis": {"common", "dataio", "jobs", "scoring"},
    "archive": {"commands", "common", "dataio", "jobs", "scoring"},
    "plan": {"commands", "common", "data", "dataio", "evaluate", "jobs", "scoring"},
    "cli": {"commands", "dataio", "jobs"},
    "__main__": {"cli"},
}


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
    assert "commands" in graph["cli"] and "cli" not in graph["jobs.codedeps"]
    assert circles(graph) == [], "import circles (each: the modules that import one another)"


def test_each_part_imports_only_the_parts_below_it() -> None:
    graph = import_graph()
    top = {m: m.split(".")[0] for m in graph}
    assert set(top.values()) <= set(ALLOWED), f"parts with no layer: {set(top.values()) - set(ALLOWED)}"
    crossing = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                      if top[d] != top[m] and top[d] not in ALLOWED[top[m]] | {"__init__"})
    assert crossing == []


def test_no_module_is_over_500_lines() -> None:
    sizes = {m: len(p.read_text(encoding="utf-8").splitlines()) for m, p in codedeps.package_modules().items()}
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}
