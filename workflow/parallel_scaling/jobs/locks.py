"""A run killed by any means resumes with the same command: stale Snakemake locks are released.

Why: Snakemake locks a working directory by writing ``.snakemake/locks/N.input.lock`` and
``N.output.lock`` and removes them when it ends. A run killed with SIGKILL (the OOM killer, a
pre-empted allocation, a closed laptop) cannot remove them, and the next ``snakemake`` refuses to
start ("Directory cannot be locked") until the user runs ``snakemake --unlock``, a step the user
must know of and must only take when no other Snakemake works in the directory.

The Snakefile calls :func:`release_stale_locks` while it is parsed, which is before Snakemake
takes its lock, in the main process of a run that locks (not in cluster jobs, not with
``--nolock``). It removes the lock files only when no other Snakemake process runs in the
directory on this machine (from ``/proc``: its command line names snakemake and its working
directory, or its ``--directory``, is this one; not a Snakemake run with ``--nolock``, which holds
no lock: the Snakemake inside each cluster job, seen here when a job runs on this machine). That is what ``--unlock`` would do, with the
check a careful user makes first. Not seen: a Snakemake started in the same directory on *another*
machine of a shared filesystem; do not run one study from two machines at once (docs/data-checks.md).
Standard library only (imported while the Snakefile is parsed).
"""

from __future__ import annotations

import os
from pathlib import Path

LOCK_DIR = Path(".snakemake") / "locks"


def lock_files(workdir: str | Path) -> list[Path]:
    """Snakemake's lock files of ``workdir`` (none when no run holds it, or after a clean end)."""
    folder = Path(workdir) / LOCK_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith((".input.lock", ".output.lock")))


def ancestors(pid: int) -> set[int]:
    """``pid`` and its parents up to init, from /proc (a process that is gone ends the chain)."""
    out = set()
    while pid > 1:
        out.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return out


def is_snakemake(argv: list[str]) -> bool:
    """``snakemake ...``, ``python -m snakemake ...`` (not a job whose arguments merely mention it)."""
    if not argv:
        return False
    name = Path(argv[0]).name
    if name == "snakemake":
        return True
    if name.startswith("python"):
        rest = argv[1:]
        return rest[:2] == ["-m", "snakemake"] or (bool(rest) and Path(rest[0]).name == "snakemake")
    return False


def _directory(argv: list[str], cwd: Path) -> Path:
    """The working directory a Snakemake command line works in (``--directory``/``-d``, else cwd)."""
    for i, token in enumerate(argv):
        if token in {"--directory", "-d"} and i + 1 < len(argv):
            return (cwd / argv[i + 1]).resolve()
        if token.startswith("--directory="):
            return (cwd / token.split("=", 1)[1]).resolve()
    return cwd


def other_snakemakes(workdir: str | Path) -> list[int]:
    """Ids of the Snakemake processes, other than this one and its parents, that work in
    ``workdir`` on this machine; a Snakemake whose directory cannot be read (another user's) counts."""
    target = Path(workdir).resolve()
    mine = ancestors(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        argv = [a for a in argv if a]
        if not is_snakemake(argv) or "--nolock" in argv:
            continue  # a job's own Snakemake (a cluster job, even on this machine) runs with --nolock
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            found.append(int(entry.name))  # cannot tell: assume it works here
            continue
        if _directory(argv, cwd) == target:
            found.append(int(entry.name))
    return found


def release_stale_locks(workdir: str | Path = ".") -> str | None:
    """Remove ``workdir``'s Snakemake locks when no other Snakemake holds it; the message to print
    (None when there was nothing to do, or another Snakemake runs there and its lock must stay)."""
    stale = lock_files(workdir)
    if not stale or not Path("/proc/self").exists():
        return None
    others = other_snakemakes(workdir)
    if others:
        return None  # a live run: Snakemake's own "cannot be locked" message is the right one
    for path in stale:
        try:
            path.unlink()
        except OSError:
            return None
    return (f"Released the lock of a killed Snakemake run in {Path(workdir).resolve()} (no other Snakemake process "
            "runs there); resuming: finished jobs are kept.")
