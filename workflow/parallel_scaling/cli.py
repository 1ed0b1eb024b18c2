"""Command-line entry point: ``python -m parallel_scaling <command> [args]``.

Each command is the ``main(argv)`` function of one module, imported only when that command runs,
so that ``--help`` and light commands never pay for importing torch.
"""

from __future__ import annotations

import importlib
import sys

#: command name -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m parallel_scaling <command> [options]\n\ncommands:")
        for name, (_, desc) in sorted(COMMANDS.items()):
            print(f"  {name:<16} {desc}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose from {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"parallel_scaling.{COMMANDS[name][0]}")
    return int(module.main(rest) or 0)
