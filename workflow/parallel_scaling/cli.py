"""Command-line entry point: ``python -m parallel_scaling <command> [args]``.

Each command is one function (``main`` unless named) of one module, imported only when that
command runs, so that ``--help`` and light commands never pay for importing torch. A rule's command
has the rule's name (rule ``build_init_model`` runs ``build-init-model``, in
``train/build_init_model.py``); the stage sub-packages are named as the rule files are.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

from parallel_scaling.commands import COMMANDS


def main(argv: list[str] | None = None) -> int:
    """Run one command; with ``PARALLEL_SCALING_WARM=1`` (local runs) in a worker forked from a
    process that has imported torch & co. already (:mod:`parallel_scaling.jobs.warm`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from parallel_scaling.jobs import warm as warm_start

    if argv and argv[0] not in {"-h", "--help"} and warm_start.eligible():
        code = warm_start.run_warm(argv)
        if code is not None:
            return code
    from parallel_scaling.dataio.console import adopt_console

    adopt_console()  # first: the console descriptor a rule's shell keeps open (console.warn)
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m parallel_scaling <command> [options]\n\ncommands:")
        for name, (_, desc) in sorted(COMMANDS.items()):
            print(f"  {name:<16} {desc}")
        return 0
    provenance: str | None = None
    if argv[0] == "--provenance":
        if len(argv) < 3:
            print("error: --provenance needs a path and a command", file=sys.stderr)
            return 2
        provenance, argv = argv[1], argv[2:]
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose from {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    module_name, _, function = COMMANDS[name][0].partition(":")
    entry = getattr(importlib.import_module(f"parallel_scaling.{module_name}"), function or "main")

    def run() -> int:
        try:
            return int(entry(rest) or 0)
        except OSError as exc:
            full = disk_full_message(exc)
            if full is None and not isinstance(exc, FileNotFoundError):
                raise
            print(f"error [{name}]: {full or exc}", file=sys.stderr)
            return 2
        except (ValueError, RuntimeError) as exc:
            # user-facing failures (bad config value, malformed row, missing file): one clear line
            print(f"error [{name}]: {disk_full_message(exc) or exc}", file=sys.stderr)
            return 2

    if provenance is None or int(os.environ.get("RANK", "0")) != 0:
        # one record per job: under `accelerate launch` only rank 0 writes it (it saves the outputs)
        return run()
    from parallel_scaling.jobs.provenance import run_with_provenance

    return run_with_provenance(Path(provenance), name, rest, run)


def disk_full_message(exc: BaseException) -> str | None:
    """A message for a full disk or an exceeded quota (else None): it says so, names the file and
    the folder to free, and that a rerun of the same command resumes (finished work is kept)."""
    import errno

    code = getattr(exc, "errno", None)
    text = str(exc)
    if code not in {errno.ENOSPC, errno.EDQUOT} and not any(
            s in text for s in ("No space left on device", "Disk quota exceeded")):
        return None  # (torch and safetensors wrap the OSError of a full disk in their own errors)
    what = "the disk quota is exceeded" if code == errno.EDQUOT or "quota" in text else "the disk is full"
    filename = getattr(exc, "filename", None)
    where = filename or "an output file"
    folder = os.path.dirname(os.path.abspath(str(filename))) if filename else "."
    return (f"{what} (No space left on device) while writing {where}; free space there (`df -h {folder}`) and "
            "rerun the same command: finished jobs are kept and only the unfinished ones run again")
