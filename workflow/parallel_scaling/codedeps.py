"""Which package code a command runs, derived from the source, and its content hash.

Why: a rule's outputs are stale when the code that computed them changes. Listing each rule's
modules by hand misses some (the answer extraction that the GRPO rewards call, say), so the list
is derived instead: a command's module (``cli.COMMANDS``), the CLI itself, and every module that
these import from the package, transitively, including imports inside functions (the heavy ones
are deferred there on purpose). Each rule passes ``code_hash(<its command>)`` as a Snakemake param:
editing a module reruns exactly the rules whose command can execute it, while a fresh clone (new
file times, same bytes) reruns nothing. Training jobs put the same hash into their resume key.

Imported while the Snakefile is parsed: standard library only.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path

PACKAGE = "parallel_scaling"
PACKAGE_DIR = Path(__file__).resolve().parent
#: modules every command runs: the entry point and the CLI dispatcher
ENTRY_MODULES = ("__init__", "__main__", "cli")


@lru_cache(maxsize=None)
def package_modules(package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Names of the package's modules (``study``, ``grpo``, ...), sorted."""
    return sorted(p.stem for p in package_dir.glob("*.py"))


#: import statements naming the package: ``from parallel_scaling[.x] import a, b``, ``from .x
#: import (a, b)``, ``from . import x``, ``import parallel_scaling.x`` (at any indentation: the heavy
#: imports sit inside functions). A regular expression, not ``ast``: planning parses every module
#: of the package at each ``snakemake`` call, and this is ten times faster. A docstring line that
#: looks like such an import only adds a dependency, never hides one.
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<base>\.+[\w.]*|" + PACKAGE + r"(?:\.[\w.]+)?)[ \t]+import[ \t]+"
    r"(?P<names>\([^)]*\)|[^\n#]*)|import[ \t]+" + PACKAGE + r"\.(?P<mod>\w+))",
    re.M,
)


def _imported(source: str, known: set[str]) -> set[str]:
    """Package modules named by the import statements of ``source``."""
    found: set[str] = set()
    for m in _IMPORT.finditer(source):
        if m["mod"]:
            found.add(m["mod"])
            continue
        base = m["base"].lstrip(".")
        if base.startswith(PACKAGE):
            base = base[len(PACKAGE):].lstrip(".")
        if base:
            found.add(base.split(".")[0])
        else:  # from parallel_scaling import x, y  /  from . import x
            found.update(n.split(" as ")[0].strip() for n in m["names"].strip("()").split(","))
    return found & known


@lru_cache(maxsize=None)
def direct_imports(module: str, package_dir: Path = PACKAGE_DIR) -> frozenset[str]:
    """Package modules that ``module`` imports anywhere in its source (top level or in functions)."""
    known = set(package_modules(package_dir))
    found = _imported((package_dir / f"{module}.py").read_text(encoding="utf-8"), known)
    found.discard(module)
    return frozenset(found)


def closure(modules: list[str] | tuple[str, ...], package_dir: Path = PACKAGE_DIR) -> list[str]:
    """``modules`` and everything they import from the package, transitively; sorted."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo.extend(direct_imports(mod, package_dir) - seen)
    return sorted(seen)


def command_module(command: str) -> str:
    """The module that implements a CLI command (``train-grpo`` -> ``grpo``)."""
    from parallel_scaling.cli import COMMANDS

    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {sorted(COMMANDS)}")
    return COMMANDS[command][0]


def command_modules(command: str, package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Every package module that ``python -m parallel_scaling <command>`` can execute."""
    return closure([*ENTRY_MODULES, command_module(command)], package_dir)


def code_hash(command: str, package_dir: Path = PACKAGE_DIR) -> str:
    """Content hash of the modules a command can execute (their names and bytes)."""
    h = hashlib.sha256()
    for mod in command_modules(command, package_dir):
        h.update(mod.encode() + b"\0")
        h.update((package_dir / f"{mod}.py").read_bytes())
    return h.hexdigest()[:16]
