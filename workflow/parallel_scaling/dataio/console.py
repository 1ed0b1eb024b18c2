"""Warnings about data that is used anyway reach the console, not only the job's log.

Why: a rule's command writes its stdout and stderr to the job's log file, so a warning printed there
(a translation file that covers a sixth of the source, QC dropping half a language) is found only by
someone who opens the log or the QC table. The Snakefile's shell prefix keeps the console open on
descriptor 3 (``exec 3>&2``) and names it in ``PARALLEL_SCALING_CONSOLE_FD``; :func:`adopt_console`
(called first by the command-line entry point) takes it over, and :func:`warn` writes to the log
and to the console. A module of its own, so that every command can import it without depending on
the data checks (each rule's code hash covers what its command imports). Standard library only.
"""

from __future__ import annotations

import os
import sys
from typing import Any

CONSOLE_FD_VARIABLE = "PARALLEL_SCALING_CONSOLE_FD"
_CONSOLE: Any = None


def adopt_console() -> None:
    """Take over the console descriptor named in the environment and remove the variable, so that
    no child process writes to a descriptor number that means something else there."""
    global _CONSOLE
    value = os.environ.pop(CONSOLE_FD_VARIABLE, None)
    if not value or not value.isdigit():
        return
    try:
        os.fstat(int(value))
        _CONSOLE = os.fdopen(os.dup(int(value)), "w", encoding="utf-8", errors="replace")
    except OSError:
        _CONSOLE = None


def warn(message: str) -> None:
    """``warning: message`` into the job's log (stderr) and onto the console when there is one."""
    line = f"warning: {message}"
    print(line, file=sys.stderr, flush=True)
    if _CONSOLE is not None:
        try:
            _CONSOLE.write(line + "\n")
            _CONSOLE.flush()
        except OSError:
            pass
