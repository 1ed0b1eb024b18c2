"""Step 2 of ``verify-archive``: the provenance chain.

Each job's provenance record (``*.prov.json``) lists the files the job read, hashed before it ran;
every recorded input inside the archived results must be archived with that same hash (or, for a
file archived by reference, listed in the crate with it). Pure functions over the records, the
archive's hashes and the crate's results roots, so that the rule is read and tested on its own;
:mod:`.verify` gathers their inputs from the tarball.
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote

from rocrate.rocrate import ROCrate


def results_roots(crate: ROCrate) -> list[str]:
    """Archive paths of the run's results directories (the crate's Dataset entities but the root)."""
    roots = []
    for entity in crate.get_by_type("Dataset"):
        if entity.id not in ("./", "") and not entity.id.startswith(("http://", "https://", "#")):
            roots.append(unquote(entity.id).rstrip("/") + "/")
    return roots


def record_name(path: str, cwd: str | None) -> str | None:
    """A recorded path as an archive path (relative to the run directory), or None if outside it.

    Jobs run in the Snakemake working directory, which is the archive's root: a relative path is
    already an archive path; an absolute one is one when it lies under the record's ``cwd``.
    """
    p = PurePosixPath(path.replace(os.sep, "/"))
    if p.is_absolute():
        if not cwd:
            return None
        try:
            p = p.relative_to(PurePosixPath(cwd.replace(os.sep, "/")))
        except ValueError:
            return None
    norm = os.path.normpath(p.as_posix())
    return None if norm.startswith("..") else PurePosixPath(norm).as_posix()


def check_chain(records: dict[str, dict[str, Any]], hashes: dict[str, str], roots: list[str],
                referenced: dict[str, str] | None = None) -> tuple[list[str], int]:
    """Each recorded input inside the archived results is archived with the hash the job read.

    ``records`` maps a record's archive path to its content; ``referenced`` maps the path of each
    file archived by reference to its sha256 in the crate, which must be the hash the job read.
    Returns the problems and how many inputs were compared. A record's job is named by its record
    path (``logs/train_grpo/tiny/k1/s0.prov.json`` is the k1 GRPO checkpoint of seed 0).
    """
    referenced = referenced or {}
    problems: list[str] = []
    checked = 0
    for rec_name, rec in sorted(records.items()):
        job = f"{rec.get('command', '?')} ({rec_name})"
        for entry in rec.get("inputs") or []:
            name = record_name(str(entry.get("path", "")), rec.get("cwd"))
            if name is None or not any(name.startswith(root) for root in roots):
                continue
            recorded = entry.get("sha256")
            archived = hashes.get(name)
            checked += 1
            if archived is None and name in referenced:
                listed = referenced[name]
                if listed != recorded:
                    problems.append(f"{job}: recorded input {name} has sha256 {recorded}, the crate references "
                                    f"it with {listed}: the job did not read the referenced file")
            elif archived is None:
                problems.append(f"{job}: recorded input {name} (sha256 {recorded}) is not in the archive, "
                                "so the chain cannot be checked")
            elif archived != recorded:
                problems.append(f"{job}: recorded input {name} has sha256 {recorded}, the archived file "
                                f"has {archived}: the job did not read the archived file")
    return problems, checked
