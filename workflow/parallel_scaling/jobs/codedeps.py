"""Which package code a command runs, derived from the source, and its content hash.

Why: a rule's outputs are stale when the code that computed them changes. Listing each rule's
modules by hand misses some (the answer extraction that the GRPO rewards call, say), so the list
is derived instead: a command's module (``commands.COMMANDS``), the CLI itself, and every module that
these import from the package, transitively, including imports inside functions (the heavy ones
are deferred there on purpose) and the ``__init__`` of every sub-package on the way. Each rule
passes ``code_hash(<its command>)`` as a Snakemake param: editing a module reruns exactly the rules
whose command can execute it, while a fresh clone (new file times, same bytes) reruns nothing.
Training jobs put the same hash into their resume key.

Modules are named by their dotted path below the package (``train.grpo``; ``train`` is
``train/__init__.py``; ``__init__`` the package's own). Imported while the Snakefile is parsed:
standard library only.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

from parallel_scaling.dataio.paths import PACKAGE_DIR

PACKAGE = "parallel_scaling"
#: modules every command runs: the entry point and the CLI dispatcher
ENTRY_MODULES = ("__init__", "__main__", "cli", "commands")


@lru_cache(maxsize=None)
def package_modules(package_dir: Path = PACKAGE_DIR) -> dict[str, Path]:
    """Every module of the package by dotted name, with its file."""
    out: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


#: import statements naming the package: ``from parallel_scaling[.x.y] import a, b``, ``from ..x
#: import (a, b)``, ``from . import x``, ``import parallel_scaling.x.y`` (at any indentation: the
#: heavy imports sit inside functions). A regular expression, not ``ast``: planning reads every
#: module of the package at each ``snakemake`` call, and this is ten times faster. A docstring line
#: that looks like such an import only adds a dependency, never hides one.
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<base>\.+[\w.]*|" + PACKAGE + r"(?:\.[\w.]+)?)[ \t]+import[ \t]+"
    r"(?P<names>\([^)]*\)|[^\n#]*)|import[ \t]+" + PACKAGE + r"\.(?P<mod>[\w.]+))",
    re.M,
)


def _with_parents(dotted: str, known: dict[str, Path]) -> set[str]:
    """A module and the sub-packages whose ``__init__`` importing it runs."""
    parts = dotted.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(known)


def _imported(module: str, source: str, known: dict[str, Path]) -> set[str]:
    """Package modules named by the import statements of ``module``'s source."""
    is_package = known[module].name == "__init__.py" if module in known else False
    here = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str] = set()
    for m in _IMPORT.finditer(source):
        if m["mod"]:
            found |= _with_parents(m["mod"], known)
            continue
        base = m["base"]
        if base.startswith("."):
            level = len(base) - len(base.lstrip("."))
            anchor = here[: len(here) - (level - 1)] if level > 1 else here
            rest = base.lstrip(".")
            target = ".".join([*anchor, *([rest] if rest else [])])
        else:
            target = base[len(PACKAGE):].lstrip(".")
        if target:
            found |= _with_parents(target, known)
        names = [n.split(" as ")[0].strip() for n in m["names"].strip("()").split(",")]
        for name in names:  # from x import submodule
            dotted = f"{target}.{name}" if target else name
            if dotted in known:
                found |= _with_parents(dotted, known)
    return found


@lru_cache(maxsize=None)
def direct_imports(module: str, package_dir: Path = PACKAGE_DIR) -> frozenset[str]:
    """Package modules that ``module`` imports anywhere in its source (top level or in functions)."""
    known = package_modules(package_dir)
    found = _imported(module, known[module].read_text(encoding="utf-8"), known)
    found.discard(module)
    return frozenset(found)


def closure(modules: list[str] | tuple[str, ...], package_dir: Path = PACKAGE_DIR) -> list[str]:
    """``modules`` and everything they import from the package, transitively; sorted."""
    known = package_modules(package_dir)
    seen: set[str] = set()
    todo = [p for m in modules for p in _with_parents(m, known)]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(direct_imports(mod, package_dir) - seen)
    return sorted(seen)


def command_module(command: str) -> str:
    """The module that implements a CLI command (``train-grpo`` -> ``train.grpo``)."""
    from parallel_scaling.commands import COMMANDS

    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {sorted(COMMANDS)}")
    return COMMANDS[command][0].split(":")[0]


def command_modules(command: str, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Every package module that ``python -m parallel_scaling <command>`` can execute."""
    return closure([*ENTRY_MODULES, command_module(command)], package_dir)


def code_hash(command: str, package_dir: Path = PACKAGE_DIR) -> str:
    """The code hash the workflow tracks for a command: :func:`actual_code_hash`, unless the user
    pinned that code as standing for older code (:mod:`parallel_scaling.jobs.codepins`)."""
    from parallel_scaling.jobs import codepins

    return codepins.effective(command, actual_code_hash(command, package_dir))


def actual_code_hash(command: str, package_dir: Path = PACKAGE_DIR) -> str:
    """Content hash of the modules a command can execute (their names and bytes)."""
    known = package_modules(package_dir)
    h = hashlib.sha256()
    for mod in command_modules(command, package_dir):
        h.update(mod.encode() + b"\0")
        h.update(known[mod].read_bytes())
    return h.hexdigest()[:16]
