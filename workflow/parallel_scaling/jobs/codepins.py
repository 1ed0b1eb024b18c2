"""Code pins: the researcher's decision that a code change does not affect a command's results.

Why: every rule tracks the content hash of the package code its command runs
(:mod:`parallel_scaling.jobs.codedeps`), and every training run puts it in its resume key. A
``git pull`` in the middle of a campaign that touches a training module (a fix in a log message,
a new command in the CLI) would therefore retrain every finished GRPO run and restart every running
one from scratch. A pin, written by ``python -m parallel_scaling pin-code`` after the user has
looked at the change, says: for this command, the code whose hash is now ``actual`` stands for the
code ``pinned`` that the finished jobs ran. :func:`effective` then gives the pinned hash wherever
the code hash is used (the rules' ``code`` param, resume keys, provenance), so nothing reruns and
killed runs resume. A pin holds for exactly that code: any further edit changes ``actual`` and the
pin no longer applies (the change must be pinned again, or it reruns as usual).

The pins live in ``code-pins.json`` in the working directory (where Snakemake runs and its jobs
start), with who pinned what, when, from which commit, which modules changed, and why; every job
run under a pin records it in its provenance. Standard library only: imported while the Snakefile
is parsed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PINS_FILE = "code-pins.json"


def pins_path(workdir: str | Path | None = None) -> Path:
    return Path(workdir or Path.cwd()) / PINS_FILE


def load(workdir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every pin ever made here, oldest first ([] when there is no pins file)."""
    path = pins_path(workdir)
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); it is written by `python -m parallel_scaling "
                         "pin-code`, restore it from your history or delete it (pinned jobs then rerun)") from None
    pins = data.get("pins") if isinstance(data, dict) else None
    if not isinstance(pins, list):
        raise ValueError(f"{path}: expected {{\"pins\": [...]}}")
    return pins


def pin_for(command: str, actual: str, workdir: str | Path | None = None) -> dict[str, Any] | None:
    """The newest pin of ``command`` made for exactly the code hashed ``actual``, if any."""
    for pin in reversed(load(workdir)):
        if pin.get("command") == command and pin.get("actual") == actual:
            return pin
    return None


def effective(command: str, actual: str, workdir: str | Path | None = None) -> str:
    """The code hash the workflow tracks for ``command``: the pinned one when the code hashed
    ``actual`` was pinned, else ``actual``."""
    pin = pin_for(command, actual, workdir)
    return str(pin["pinned"]) if pin else actual


def add(pin: dict[str, Any], workdir: str | Path | None = None) -> Path:
    """Append a pin to the pins file (written whole, then renamed: never half a file)."""
    path = pins_path(workdir)
    pins = load(workdir) + [pin]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"pins": pins}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
