"""Files this pipeline writes are as readable as the rest of their folder.

Why: on a shared cluster collaborators read each other's results through the group bits, which the
user's umask grants to every ordinary file (``0644`` or ``0664``). Two writers do not follow it:
``tempfile.mkstemp`` (the atomic writes of :mod:`parallel_scaling.dataio.jsonl`) and safetensors'
``save_file`` (the weights of every checkpoint) create files with mode ``0600``. :func:`share` gives
such files the bits an ordinary file would have had; it only adds bits the umask allows, never
removes any, and leaves a user who chose ``umask 077`` with private files. Standard library only.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def umask() -> int:
    """This process's umask (read once: setting it is the only way to read it portably)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def ordinary_mode() -> int:
    """The mode ``open()`` gives a new file under this umask (``0o644`` under ``022``)."""
    return 0o666 & ~umask()


def share(path: str | Path) -> None:
    """Give ``path`` (a file, or every file and folder below a folder) the permission bits an
    ordinary new file (folder) would have had under the umask, keeping the bits it already has."""
    path = Path(path)
    file_bits, dir_bits = ordinary_mode(), 0o777 & ~umask()
    targets = [path]
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            targets += [Path(root) / d for d in dirs] + [Path(root) / f for f in files]
    for target in targets:
        try:
            st = target.lstat()
        except OSError:
            continue
        if target.is_symlink():
            continue
        bits = dir_bits if target.is_dir() else file_bits
        if (st.st_mode & bits) != bits:
            os.chmod(target, (st.st_mode & 0o7777) | bits)
