"""Content manifests of output directories: what a finished job wrote, and whether it is still there.

Why: a model directory (an initial model built here, a GRPO/SFT checkpoint) or a predictions
directory is one declared Snakemake output, but Snakemake only sees whether the directory exists,
and it never rebuilds a missing intermediate output whose consumers are up to date. A deleted or
truncated weight file would go unnoticed and be read by every later job. So the job that writes
such a directory ends by writing ``<dir>.manifest.json`` beside it (a second declared output):
every file's size, mtime and sha256, plus the job's *rebuild token*.

While planning, each producing rule passes :func:`state` as a param. It is the manifest's token
while the directory matches its manifest (a ``stat`` per file; a file is hashed only when its size
matches but its mtime does not), and a new token when a file is missing or changed, or the whole
directory is gone while its manifest remains: the param differs from the one Snakemake stored, so
the job reruns (and what follows). The job is handed that token and writes it into its new
manifest, so the next plan sees the stored value again and nothing reruns twice.

:func:`digest` names a model by content, never by path: resume keys and provenance use it, so a
rebuilt initial model can never be mistaken for the old one.

Imported while the Snakefile is parsed: standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path
from typing import Any

SUFFIX = ".manifest.json"
#: the token of a directory built for the first time
NEW = "new"
_CHUNK = 1 << 20


def manifest_path(root: str | Path) -> Path:
    """``results/.../s0`` -> ``results/.../s0.manifest.json``."""
    root = Path(root)
    return root.with_name(root.name + SUFFIX)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks so multi-GB checkpoints never sit in memory
    (the one file hash of the package: manifests, provenance records, resume identities)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _files(root: Path) -> list[Path]:
    """Regular files under ``root`` except Snakemake's timestamp marker, sorted."""
    out = []
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if name != ".snakemake_timestamp":
                out.append(Path(dirpath) / name)
    return out


def write_manifest(root: str | Path, token: str = NEW, manifest: str | Path | None = None) -> dict[str, Any]:
    """Record every file of ``root`` (size, mtime, sha256) and ``token`` in its manifest.

    ``manifest`` defaults to ``<root>.manifest.json``; a job that builds ``root`` under a
    temporary name passes the final one, and renames the directory before writing."""
    root = Path(root)
    files = {}
    for p in _files(root):
        st = p.stat()
        files[p.relative_to(root).as_posix()] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                 "sha256": sha256_file(p)}
    record = {"token": token, "files": files}
    target = Path(manifest) if manifest else manifest_path(root)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)
    return record


def read_manifest(root: str | Path) -> dict[str, Any] | None:
    try:
        data = json.loads(manifest_path(root).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def _problems(root: Path, manifest: dict[str, Any], full: bool) -> list[str]:
    if not root.is_dir():
        return [f"{root}: missing"]
    problems = []
    for rel, rec in manifest["files"].items():
        p = root / rel
        try:
            st = p.stat()
        except OSError:
            problems.append(f"{p}: missing")
            continue
        if st.st_size != rec["size"]:
            problems.append(f"{p}: {st.st_size} bytes, {rec['size']} written")
        elif (full or st.st_mtime_ns != rec["mtime_ns"]) and sha256_file(p) != rec["sha256"]:
            problems.append(f"{p}: content differs from what was written (sha256)")
    return problems


def check(root: str | Path) -> list[str]:
    """Problems of a directory against its manifest ([] when intact, or when neither exists)."""
    manifest = read_manifest(root)
    if manifest is None:
        return [] if not Path(root).exists() else [f"{manifest_path(root)}: missing or unreadable"]
    return _problems(Path(root), manifest, full=False)


def verify(root: str | Path) -> list[str]:
    """Like :func:`check`, but hashes every file (what a reviewer runs)."""
    manifest = read_manifest(root)
    if manifest is None:
        return [f"{manifest_path(root)}: missing or unreadable"]
    return _problems(Path(root), manifest, full=True)


def state(root: str | Path) -> tuple[str, list[str]]:
    """The rebuild token of an output directory while planning, and its problems.

    The manifest's token when the directory is intact, :data:`NEW` when neither it nor its
    manifest exists; otherwise a token derived from the old one and the problems (never equal to
    a token used before), so that the job producing the directory reruns exactly once."""
    root = Path(root)
    manifest = read_manifest(root)
    if manifest is None:
        if not root.exists():
            return NEW, []
        problems = [f"{manifest_path(root)}: missing or unreadable"]
        old = NEW
    else:
        problems = _problems(root, manifest, full=False)
        old = str(manifest.get("token", NEW))
        if not problems:
            return old, []
    blob = json.dumps([old, problems]).encode()
    return "rebuild-" + hashlib.sha256(blob).hexdigest()[:12], problems


def digest(path: str | Path) -> str:
    """A content identity for a model: a local directory by the sha256 of its files (taken from an
    intact manifest, else computed), a hub id by its name and the cached revision, if any."""
    root = Path(path)
    if not root.is_dir():
        return f"hub:{path}@{_cached_revision(str(path)) or 'unknown'}"
    manifest = read_manifest(root)
    if manifest is not None and not check(root):
        entries = {rel: rec["sha256"] for rel, rec in manifest["files"].items()}
    else:
        entries = {p.relative_to(root).as_posix(): sha256_file(p) for p in _files(root)}
    blob = json.dumps(entries, sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def cached_hub_file(repo_id: str, name: str = "config.json") -> str | None:
    """Where a hub model's file is in the local Hugging Face cache (what its jobs would load), found
    without the network; None when it is not cached, the id is not a repo id, or huggingface_hub
    is missing."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, name)
    except Exception:  # not a valid repo id: nothing cached under it
        return None
    return found if isinstance(found, str) else None


def _cached_revision(repo_id: str) -> str | None:
    """The commit of a hub model in the local Hugging Face cache (what a job would load)."""
    found = cached_hub_file(repo_id)
    if found:
        parts = Path(found).parts
        if "snapshots" in parts:
            return parts[parts.index("snapshots") + 1]
    return None


#: a local model directory up to this size is fingerprinted by its content (the shipped tiny model:
#: a git checkout or a copy gives its files new times, not new bytes); larger ones by file times
CONTENT_FINGERPRINT_MAX_BYTES = 64 * 1024 * 1024


def fingerprint(path: str | Path) -> str:
    """A stand-in for a local directory's content while planning: the sha256 of its files when the
    directory is small, else names, sizes and mtimes.

    Used as a param for models given by path (not built here), so that replacing the files of a
    local model reruns what was computed from it without hashing gigabytes at every plan.
    """
    root = Path(path)
    if not root.is_dir():
        return f"name:{path}"
    files = list(_files(root))
    h = hashlib.sha256()
    if sum(p.stat().st_size for p in files) <= CONTENT_FINGERPRINT_MAX_BYTES:
        for p in files:
            h.update(f"{p.relative_to(root).as_posix()}\0{sha256_file(p)}\n".encode())
        return "sha:" + h.hexdigest()[:16]
    for p in files:
        st = p.stat()
        h.update(f"{p.relative_to(root).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return "stat:" + h.hexdigest()[:16]


def add_token_argument(p: argparse.ArgumentParser) -> None:
    """``--manifest-token``: what the rule's ``state`` param was when this job was planned; the
    job writes it into the output's manifest (:func:`write_manifest`)."""
    p.add_argument("--manifest-token", default="new",
                   help="rebuild token to record in the output's manifest (set by the rule)")
