"""Command ``archive``: pack a finished run into one Workflow Run RO-Crate tarball.

Researchers hand a run to a reviewer as an archive, so that anyone can later see *which workflow,
config, code and inputs* produced each number, and check it (``verify-archive``, in
:mod:`parallel_scaling.archive.verify`). The archive is a ``.tar.gz`` with ``ro-crate-metadata.json``
and a ``README.md`` at its root and every packed file under its path relative to the run's working
directory (``results/...``, ``logs/...``, ``workflow/...``, the config files). Paths outside it fall
back to ``results/``, ``logs/``, ``config/`` or ``report/`` plus their path below the given location.

**What the run was.** ``snakemake archive`` passes ``--snakemake-dag`` with the config exactly as
Snakemake merged and validated it (``--run-config``), the config files in their order and the
``--config`` overrides. The command then asks Snakemake, with that same config, for the run's DAG
(``snakemake --summary``: every job's rule, outputs and log files) and for the report (``--report``),
so that the report describes the archived study and nothing else. Only files the run's jobs wrote
or read are packed from the results directory: the DAG's outputs, and the outputs and inputs each
job's provenance record lists there (a checkpoint directory holds more than its declared marker
file). Files an earlier configuration left in ``results/`` (e.g. after K was lowered) are left out,
and counted on stderr. Without ``--snakemake-dag`` the whole results directory is packed.

The crate follows Workflow Run RO-Crate 0.5 (RO-Crate 1.1, Workflow RO-Crate 1.0) and declares the
Process, Workflow and Provenance Run Crate profiles; ``verify-archive`` checks it against all four
with roc-validator. Its graph:

* main entity: the Snakefile, a ``File``/``SoftwareSourceCode``/``ComputationalWorkflow``/``HowTo``
  in the Snakemake language (conforming to the Bioschemas ComputationalWorkflow profile), with one
  ``HowToStep`` per Snakemake rule that ran (``step``) and each rule's tool in ``hasPart``: the
  ``SoftwareApplication`` ``python -m parallel_scaling <command>``, whose ``url`` is its source file
  in the crate and whose ``softwareRequirements`` are the package versions it ran with (PyPI ids);
* one ``CreateAction`` for the whole run (instrument: the workflow; object: the config files, the
  overrides, the merged config and the inputs no job produced; result: every result file) inside an
  ``OrganizeAction`` of Snakemake;
* one ``CreateAction`` per job, from the ``*.prov.json`` records (see
  :mod:`parallel_scaling.common.provenance`): agent, start/end time, status, ``object`` = its inputs, seeds
  and settings, ``result`` = its outputs packed with the same SHA-256, ``instrument`` = its tool; a
  ``ControlAction`` ties it to its rule's step. The record file itself is packed, ``about`` its
  action. Every action is in the root's ``mentions``;
* the agent of each action is a ``Person``: ``--agent`` (the study's ``archive.agent``, with
  ``--agent-id``, e.g. an ORCID), else the login name recorded with the job; the same person is the
  crate's ``author``. ``--license`` (an SPDX id) is the crate's license; ``--organization`` is the
  agent's affiliation and the crate's publisher;
* every packed file as a ``File`` with ``sha256``, ``contentSize`` and ``encodingFormat``; the results
  directory as a ``Dataset``.

Inputs outside the archive (models, datasets) appear as ``CreativeWork`` entities carrying their
original path and SHA-256, so they can still be checked against a copy.

What is left out, on purpose:

* files whose name marks a secret (``.env*``, ``.netrc``, ``*.pem``/``*.key``, SSH keys, Hugging
  Face ``stored_tokens``, and names with a *word* token/secret/password/credential(s)/apikey --
  ``hf_token`` yes, ``tokenizer.json`` or ``special_tokens_map.json`` no, since checkpoints need
  those); files up to 1 MiB that contain a Hugging Face token; the environment is never read (the
  login name aside). A config file that is excluded this way is an error, as the crate would be
  incomplete;
* under the results directory, files matching ``--exclude GLOB`` (repeatable, matched against the
  path relative to the results directory; ``**/`` also matches at the top). By default the
  optimizer and scheduler state of checkpoints (``**/optimizer.pt``, ``**/optimizer.bin``,
  ``**/scheduler.pt``): they only serve to resume training, are the largest files of a checkpoint
  and never feed a reported number. Model weights stay, as they *are* results.
  ``--no-default-excludes`` packs everything.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import hashlib
import importlib.metadata
import io
import json
import mimetypes
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import yaml
from rocrate.model.computationalworkflow import ComputationalWorkflow
from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.rocrate import ROCrate

from parallel_scaling.cli import COMMANDS
from parallel_scaling.common.provenance import HF_TOKEN_PATTERN, load_record, login_name

METADATA_NAME = "ro-crate-metadata.json"
README_NAME = "README.md"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": ("Provenance Run Crate", "0.5"),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": ("Workflow RO-Crate", "1.0"),
}
PROVENANCE_PROFILE = "https://w3id.org/ro/wfrun/provenance/0.5"
BIOSCHEMAS_WORKFLOW = "https://bioschemas.org/profiles/ComputationalWorkflow/1.0-RELEASE"
COMPLETED = "http://schema.org/CompletedActionStatus"
FAILED = "http://schema.org/FailedActionStatus"
#: License of the archived results unless the study says otherwise (config archive.license): the
#: RO-Crate specification requires one, and CC-BY is the usual choice for shared research data.
DEFAULT_LICENSE = "CC-BY-4.0"
DEFAULT_EXCLUDES = ("**/optimizer.pt", "**/optimizer.bin", "**/scheduler.pt")
PROV_SUFFIX = ".prov.json"
SNAKEFILE_CANDIDATES = ("workflow/Snakefile", "Snakefile", "workflow/snakefile", "snakefile")
#: Next to the Snakefile: the workflow's code and how to install it, packed as its source.
SOURCE_DIRS = ("workflow", "rules", "envs", "profiles", "slurm")
SOURCE_FILES = ("pyproject.toml",)
SCAN_LIMIT = 1 << 20  # bytes: smaller files are scanned for tokens before packing
RUN_CONFIG_NAME = "config/run-config.yaml"
OVERRIDES_NAME = "config/overrides.yaml"

_SECRET_NAMES = frozenset({".netrc", ".pgpass", ".git-credentials", "stored_tokens", "credentials"})
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
_SECRET_PREFIXES = (".env", "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa")
_SECRET_WORDS = frozenset({"token", "secret", "secrets", "password", "passwd", "credential",
                           "credentials", "apikey"})
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".snakemake", ".venv", ".pytest_cache"})
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """A run cannot be archived as asked (missing inputs, unsafe or clashing files)."""


@dataclass(frozen=True)
class Member:
    """A file to pack: where it is, where it goes in the crate, and what it is for the run."""

    source: Path
    name: str  # posix path inside the archive (unquoted crate id)
    role: str  # workflow | source | config | result | log | provenance | report | readme
    description: str | None = None


@dataclass
class Packed:
    """A member after it was written to the tarball, with what was measured while writing it."""

    member: Member
    sha256: str
    size: int


@dataclass(frozen=True)
class DagJob:
    """One job of the run's DAG as Snakemake plans it: its rule, output paths and log files."""

    rule: str
    outputs: tuple[str, ...]
    logs: tuple[str, ...]


@dataclass(frozen=True)
class Attribution:
    """Who ran the study and under which terms the archive is shared."""

    license_id: str | None = None
    agent: str | None = None
    agent_id: str | None = None
    organization: str | None = None  # the agent's affiliation and the archive's publisher
    organization_id: str | None = None


@dataclass
class Selection:
    """What :func:`collect_members` chose: the members, the jobs' records, and what it left out."""

    members: list[Member]
    records: list[tuple[Member, dict[str, Any]]]
    stale: list[str] = field(default_factory=list)  # results files no job of the run wrote or read


# --------------------------------------------------------------------------------------------
# small helpers shared with archive_verify


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else ([] if value is None else [value])


def entity_id(value: Any) -> str | None:
    """The @id of an entity, a reference dict, or a plain string id."""
    if isinstance(value, Entity):
        return value.id
    if isinstance(value, dict):
        return value.get("@id")
    return value if isinstance(value, str) else None


def types(entity: Entity | dict[str, Any]) -> list[str]:
    t = entity.get("@type", []) if isinstance(entity, dict) else entity.type
    return list(t) if isinstance(t, list) else [t]


# --------------------------------------------------------------------------------------------
# selecting files


def is_secret_name(name: str) -> bool:
    """True when a file or directory name marks a secret (see the module docstring)."""
    lower = name.lower()
    if lower in _SECRET_NAMES or lower.endswith(_SECRET_SUFFIXES) or lower.startswith(_SECRET_PREFIXES):
        return True
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    words = [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]
    words += [a + b for a, b in zip(words, words[1:])]
    return any(w in _SECRET_WORDS for w in words)


def has_secret_content(path: Path) -> bool:
    """True when a small file (<= 1 MiB) contains something shaped like a Hugging Face token."""
    try:
        if path.stat().st_size > SCAN_LIMIT:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return HF_TOKEN_PATTERN.search(data.decode("utf-8", errors="ignore")) is not None


def matches_any(rel: str, patterns: tuple[str, ...]) -> bool:
    """fnmatch on a posix relative path; ``**/x`` also matches ``x`` at the top level."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(rel, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:]):
            return True
    return False


def _walk(root: Path) -> list[Path]:
    """Files under ``root`` in a stable order; secret-named directories are not entered."""
    found: list[Path] = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not is_secret_name(d))
        found.extend(Path(dirpath) / f for f in sorted(files))
    return [p for p in found if p.is_file()]


def crate_name(path: Path, base: Path, fallback: str) -> str:
    """Archive path of ``path``: relative to ``base`` when inside it, else ``fallback``."""
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return fallback


def find_snakefile(workflow_dir: Path) -> Path:
    """The Snakefile Snakemake would pick in ``workflow_dir`` (its standard locations)."""
    for candidate in SNAKEFILE_CANDIDATES:
        path = workflow_dir / candidate
        if path.is_file():
            return path
    raise ArchiveError(f"no Snakefile in {workflow_dir} (looked for {', '.join(SNAKEFILE_CANDIDATES)});"
                       " pass --snakefile")


def _warn(message: str) -> None:
    print(f"archive: {message}", file=sys.stderr)


def source_files(snakefile: Path) -> list[Path]:
    """The workflow's code beside its Snakefile: the rule files, the package, resources, schemas,
    environments and profiles (:data:`SOURCE_DIRS`), and ``pyproject.toml``; no caches."""
    base = snakefile.parent
    found: list[Path] = []
    for name in SOURCE_DIRS:
        root = base / name
        if root.is_dir() and root.resolve() != base.resolve():
            for dirpath, dirs, files in os.walk(root):
                dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not is_secret_name(d))
                found += [Path(dirpath) / f for f in sorted(files) if not f.endswith((".pyc", ".pyo"))]
    found += [base / name for name in SOURCE_FILES if (base / name).is_file()]
    return [p for p in found if p.is_file()]


# --------------------------------------------------------------------------------------------
# the run's DAG and report, from Snakemake itself


def snakemake_command(snakefile: Path, configfile: Path, *args: str) -> list[str]:
    """``snakemake`` with the run's merged config as its only config file.

    A study given with ``--configfile`` replaces config.yaml (common.smk), so this file alone
    reproduces the run's config; ``--nolock`` because the archive job runs inside that Snakemake.
    """
    return [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--configfile",
            str(configfile), "--nolock", "--cores", "1", *args]


def _run_snakemake(cmd: list[str], cwd: Path, what: str) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ArchiveError(f"snakemake {what} failed ({proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


def parse_summary(text: str) -> list[DagJob]:
    """Jobs from ``snakemake --summary`` (columns output_file, date, rule, log-file(s), ...).

    The summary has one line per output file; a job is a rule plus its log files (each job of this
    workflow has its own logs), and a job without logs is one line of its own.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or "output_file" not in lines[0].split("\t"):
        raise ArchiveError("snakemake --summary printed no table (expected a header with output_file)")
    header = lines[0].split("\t")
    try:
        col_out, col_rule, col_log = (header.index(c) for c in ("output_file", "rule", "log-file(s)"))
    except ValueError as exc:
        raise ArchiveError(f"snakemake --summary has an unexpected header {header}") from exc
    jobs: dict[tuple[str, tuple[str, ...]], tuple[str, list[str], tuple[str, ...]]] = {}
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) <= max(col_out, col_rule, col_log):
            raise ArchiveError(f"snakemake --summary: cannot read the line {line!r}")
        rule, out = cells[col_rule], cells[col_out]
        logs = tuple(p for p in cells[col_log].split(",") if p and p != "-")
        key = (rule, logs) if logs else (rule, ("", out))
        jobs.setdefault(key, (rule, [], logs))[1].append(out)
    return [DagJob(rule, tuple(outs), logs) for rule, outs, logs in jobs.values()]


def plan_run(snakefile: Path, workdir: Path, run_config: Path) -> list[DagJob]:
    """The run's DAG for the default target, planned by Snakemake with the run's config."""
    return parse_summary(_run_snakemake(snakemake_command(snakefile, run_config, "--summary"), workdir,
                                        "--summary"))


def build_report(snakefile: Path, workdir: Path, run_config: Path, report: Path) -> Path:
    """The Snakemake report of the run, built from the run's config (not config.yaml's)."""
    report.parent.mkdir(parents=True, exist_ok=True)
    _run_snakemake(snakemake_command(snakefile, run_config, "--report", str(report)), workdir, "--report")
    if not report.is_file():
        raise ArchiveError(f"snakemake --report wrote no {report}")
    return report


# --------------------------------------------------------------------------------------------
# choosing what to pack


def _expand(paths: list[Path]) -> list[Path]:
    """Files of each path (a directory's files, sorted), existing ones only."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += _walk(path)
        elif path.is_file():
            out.append(path)
    return out


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _in_run(path: str, workdir: Path) -> Path:
    """A path Snakemake printed (relative to its working directory) as a usable path."""
    p = Path(path)
    return p if p.is_absolute() else workdir / p


def _record_paths(rec: dict[str, Any], key: str) -> list[Path]:
    cwd = rec.get("cwd")
    out = []
    for entry in rec.get(key) or []:
        p = Path(str(entry.get("path", "")))
        out.append(p if p.is_absolute() or not cwd else Path(cwd) / p)
    return out


def collect_members(results: Path, logs: Path | None, configs: list[Member], workflow_dir: Path,
                    snakefile: Path, report: Path | None, excludes: tuple[str, ...],
                    skip: tuple[Path, ...] = (), dag: list[DagJob] | None = None) -> Selection:
    """Every file to pack, with secrets and excluded checkpoint state left out.

    ``configs`` are the config members (files given to Snakemake, overrides, merged config). With
    ``dag``, logs are the DAG's log files and results are what its jobs wrote or read (see the
    module docstring); without it, the whole logs and results directories. Raises ArchiveError
    when a required path is missing, a config looks secret, or two different files would land at
    the same place in the archive.
    """
    if not results.is_dir():
        raise ArchiveError(f"results directory {results} does not exist (nothing to archive)")
    if not configs:
        raise ArchiveError("no config file given (--config)")
    for member in configs:
        if not member.source.is_file():
            raise ArchiveError(f"config file {member.source} does not exist")
        if is_secret_name(member.source.name) or has_secret_content(member.source):
            raise ArchiveError(f"config file {member.source} looks like it holds a secret; remove it first")
    if logs is not None and not logs.is_dir():
        raise ArchiveError(f"logs directory {logs} does not exist")
    if report is not None and not report.is_file():
        raise ArchiveError(f"report {report} does not exist")
    base = workflow_dir.resolve()
    members: list[Member] = []
    taken: dict[str, Path] = {}
    skipped = {p.resolve() for p in skip}

    def add(path: Path, name: str, role: str, description: str | None = None) -> None:
        real = path.resolve()
        if real in skipped or any(m.source == real for m in members):
            return
        if name in taken and taken[name] != real:
            raise ArchiveError(f"{path} and {taken[name]} would both be archived as {name}")
        taken[name] = real
        members.append(Member(real, name, role, description))

    def safe(path: Path) -> bool:
        if is_secret_name(path.name) or has_secret_content(path):
            _warn(f"left out {path}: it looks like a secret")
            return False
        return True

    add(snakefile, crate_name(snakefile, base, f"workflow/{snakefile.name}"), "workflow")
    for path in source_files(snakefile):
        if safe(path):
            fallback = f"workflow/{path.relative_to(snakefile.parent).as_posix()}"
            add(path, crate_name(path, base, fallback), "source")
    for member in configs:
        add(member.source, member.name, "config", member.description)
    if report is not None:
        add(report, crate_name(report, base, f"report/{report.name}"), "report")

    # logs and provenance records
    if dag is None:
        log_files = _walk(logs) if logs is not None else []
    else:
        log_files = _expand([_in_run(p, workflow_dir) for job in dag for p in job.logs])
    for path in log_files:
        if not safe(path):
            continue
        rel = path.resolve().relative_to(logs.resolve()).as_posix() if logs is not None and _inside(path, logs) \
            else path.name
        role = "provenance" if path.name.endswith(PROV_SUFFIX) else "log"
        add(path, crate_name(path, base, f"logs/{rel}"), role)
    records = [(m, load_record(m.source)) for m in members if m.role == "provenance"]

    # results
    all_results = _walk(results)
    if dag is None:
        chosen = all_results
    else:
        wanted = {p.resolve() for p in _expand([_in_run(o, workflow_dir) for job in dag for o in job.outputs])}
        for _, rec in records:
            for path in _record_paths(rec, "outputs") + _record_paths(rec, "inputs"):
                if path.is_file() and _inside(path, results):
                    wanted.add(path.resolve())
        chosen = sorted(wanted)
    stale: list[str] = []
    chosen_set = {p.resolve() for p in chosen}
    for path in all_results:
        if path.resolve() not in chosen_set and (report is None or path.resolve() != report.resolve()):
            rel = path.relative_to(results).as_posix()
            if not matches_any(rel, excludes) and not is_secret_name(path.name):
                stale.append(rel)
    for path in chosen:
        if not safe(path):
            continue
        if _inside(path, results):
            rel = path.resolve().relative_to(results.resolve()).as_posix()
            if matches_any(rel, excludes):
                continue
            fallback = f"results/{rel}"
        else:
            fallback = f"results/{path.name}"
        add(path, crate_name(path, base, fallback), "result")
    return Selection(members, records, stale)


# --------------------------------------------------------------------------------------------
# writing the tarball


class _HashingReader:
    """File wrapper that hashes what tarfile reads, so each file is read from disk only once."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    """Anonymous tar header: no user or group names of the machine that packed the run."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_file(tar: tarfile.TarFile, member: Member) -> Packed:
    stat = member.source.stat()
    with open(member.source, "rb") as handle:
        reader = _HashingReader(handle)
        tar.addfile(_tarinfo(member.name, stat.st_size, stat.st_mtime), reader)  # type: ignore[arg-type]
    if reader.count != stat.st_size:
        raise ArchiveError(f"{member.source} changed size while being archived")
    return Packed(member, reader.digest.hexdigest(), stat.st_size)


# --------------------------------------------------------------------------------------------
# building the crate


def iso_ms(value: Any) -> str | None:
    """A time as ISO 8601 in UTC with milliseconds, ``2026-01-02T03:04:05.678+00:00``.

    Provenance records keep microseconds; the Process Run Crate checks read start and end times
    only in this shape (an offset written ``+HH:MM``, at most three fractional digits). A naive
    time is taken as UTC; text that is not a time is returned unchanged.
    """
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        moment = value
    else:
        try:
            moment = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")


def _now() -> str:
    return iso_ms(_dt.datetime.now(_dt.timezone.utc)) or ""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _ctx(crate: ROCrate, identifier: str, properties: dict[str, Any]) -> Entity:
    """Get or add a contextual entity (ids are shared between records, e.g. package versions)."""
    existing = crate.get(identifier)
    if existing is not None:
        return existing
    return crate.add(ContextEntity(crate, identifier, properties=properties))


def _resolve_record_path(path: str, cwd: str | None) -> str:
    p = Path(path)
    if not p.is_absolute() and cwd:
        p = Path(cwd) / p
    return os.path.normpath(str(p))


def record_rule(member: Member, logs_root: str = "logs") -> str:
    """The Snakemake rule of a record from its path, when the DAG is not known.

    Rules write their records to ``<logs>/<rule>/...`` or ``<logs>/<rule>.prov.json``; ``logs_root``
    is the logs directory's path in the archive.
    """
    parts = PurePosixPath(member.name).parts
    root = PurePosixPath(logs_root).parts
    if parts[:len(root)] == root:
        parts = parts[len(root):]
    if len(parts) > 1:
        return parts[0]
    return parts[-1][: -len(PROV_SUFFIX)] if parts and parts[-1].endswith(PROV_SUFFIX) else "job"


class _CrateBuilder:
    """Turns packed files and provenance records into the RO-Crate graph."""

    def __init__(self, packed: list[Packed], name: str, attribution: Attribution,
                 records: list[dict[str, Any]]):
        self.crate = ROCrate(version="1.1")
        self.crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
        self.crate.metadata.extra_terms["sha256"] = "http://schema.org/sha256"
        self.packed = packed
        self.attribution = attribution
        self.by_source: dict[str, Packed] = {str(p.member.source): p for p in packed}
        self.by_name: dict[str, Packed] = {p.member.name: p for p in packed}
        self.files: dict[str, Entity] = {}
        crate = self.crate
        root = crate.root_dataset
        root["name"] = name
        root["description"] = ("Results, logs, configuration, code and per-job provenance of one run of the "
                               "parallel-scaling Snakemake workflow.")
        root["datePublished"] = _now()
        if attribution.license_id:
            lid = attribution.license_id
            url = f"https://spdx.org/licenses/{lid}"
            root["license"] = _ctx(crate, url, {"@type": "CreativeWork", "name": lid, "identifier": lid,
                                                "url": url})
        # the Provenance Run Crate profile describes tool runs: declared only when there are some
        root["conformsTo"] = [
            _ctx(crate, pid, {"@type": "CreativeWork", "name": pname, "version": pver})
            for pid, (pname, pver) in PROFILES.items() if records or pid != PROVENANCE_PROFILE
        ]
        self.organization = None
        if attribution.organization:
            oid = attribution.organization_id or f"#organization-{_slug(attribution.organization)}"
            props: dict[str, Any] = {"@type": "Organization", "name": attribution.organization}
            if attribution.organization_id:
                props["url"] = attribution.organization_id
            self.organization = _ctx(crate, oid, props)
            root["publisher"] = self.organization
        self.run_agent = self.person(attribution.agent, attribution.agent_id) if attribution.agent else \
            self.person(_most_common(r.get("user") for r in records) or login_name() or "unknown")
        root["author"] = self.run_agent

    def person(self, name: str, identifier: str | None = None) -> Entity:
        """A Person entity: ``identifier`` (e.g. an ORCID URL) as its id, else one from the name;
        affiliated with the study's organization when one is named."""
        props: dict[str, Any] = {"@type": "Person", "name": name}
        if self.organization is not None:
            props["affiliation"] = self.organization
        return _ctx(self.crate, identifier or f"#person-{_slug(name)}", props)

    def agent_of(self, rec: dict[str, Any]) -> Entity:
        """Who ran a job: the study's agent if named, else the login name recorded with the job."""
        if self.attribution.agent or not rec.get("user"):
            return self.run_agent
        return self.person(str(rec["user"]))

    # -- data entities --------------------------------------------------------------------

    def add_files(self, records: list[dict[str, Any]]) -> Entity:
        """Add every packed file; returns the main workflow entity."""
        workflow = None
        engine_version = _most_common((r.get("packages") or {}).get("snakemake") for r in records) \
            or _version("snakemake")
        for item in self.packed:
            m = item.member
            props: dict[str, Any] = {"name": m.name, "sha256": item.sha256, "contentSize": str(item.size),
                                     "encodingFormat": media_type(m.name)}
            if m.role == "workflow":
                # HowTo: the Provenance Run Crate profile requires it of a workflow with steps
                props["@type"] = [*ComputationalWorkflow.TYPES, "HowTo"]
                workflow = self.crate.add_workflow(
                    source=m.source, dest_path=m.name, main=True, lang="snakemake",
                    lang_version=engine_version, properties=props)
                self.files[m.name] = workflow
                continue
            props["description"] = m.description or _ROLE_DESCRIPTIONS[m.role]
            if m.role == "readme":
                props["about"] = self.crate.root_dataset
            self.files[m.name] = self.crate.add_file(source=m.source, dest_path=m.name, properties=props)
        if workflow is None:
            raise ArchiveError("internal error: no Snakefile was packed")
        workflow["name"] = "parallel-scaling Snakemake workflow"
        workflow["conformsTo"] = _ctx(self.crate, BIOSCHEMAS_WORKFLOW, {
            "@type": "CreativeWork", "name": "Bioschemas ComputationalWorkflow profile",
            "version": "1.0-RELEASE"})
        commit = _most_common((r.get("code_version") or {}).get("commit") for r in records)
        version = commit or _most_common((r.get("packages") or {}).get("parallel-scaling") for r in records) \
            or _version("parallel-scaling")
        if version:
            workflow["version"] = version
        return workflow

    def add_results_dataset(self, name: str) -> Entity | None:
        """The results directory as a Dataset whose parts are the packed result files."""
        prefix = name.rstrip("/") + "/"
        parts = [self.files[p.member.name] for p in self.packed
                 if p.member.role in {"result", "report"} and p.member.name.startswith(prefix)]
        if not parts:
            return None
        dataset = self.crate.add_dataset(dest_path=prefix, properties={
            "name": prefix, "description": "Results directory of the run (only the files its jobs wrote "
                                           "or read, when archived from Snakemake's DAG)."})
        dataset["hasPart"] = parts
        return dataset

    def packed_file(self, entry: dict[str, Any], cwd: str | None) -> Entity | None:
        """The packed File for a recorded file, if it was packed with the recorded bytes.

        Looked up by absolute path, then by real path, then by its relative path as a crate id
        (for archives built where the run's mount point differs).
        """
        path = str(entry.get("path", ""))
        absolute = _resolve_record_path(path, cwd)
        packed = self.by_source.get(absolute) or self.by_source.get(os.path.realpath(absolute)) \
            or self.by_name.get(PurePosixPath(path).as_posix())
        if packed is not None and packed.sha256 == entry.get("sha256"):
            return self.files[packed.member.name]
        return None

    def file_for(self, entry: dict[str, Any], cwd: str | None) -> Entity:
        """Crate entity for a recorded file: the packed File if same bytes, else an external one."""
        packed = self.packed_file(entry, cwd)
        if packed is not None:
            return packed
        path = str(entry.get("path", ""))
        sha = entry.get("sha256")
        key = hashlib.sha256(f"{_resolve_record_path(path, cwd)}\0{sha}".encode()).hexdigest()[:16]
        props: dict[str, Any] = {"@type": "CreativeWork", "name": path, "sha256": sha,
                                 "description": "File used or made by a job but not packed in this "
                                                "archive (or packed with different content)."}
        if entry.get("size") is not None:
            props["contentSize"] = str(entry["size"])
        return _ctx(self.crate, f"#file-{key}", props)

    # -- software -------------------------------------------------------------------------

    def requirements(self, packages: dict[str, Any]) -> list[Entity]:
        """SoftwareApplication entities (absolute PyPI / python.org ids) for a job's package versions."""
        reqs: list[Entity] = []
        for name, version in sorted(packages.items()):
            if not version or name == "parallel-scaling":
                continue
            reqs.append(self.package(name, str(version)))
        return reqs

    def package(self, name: str, version: str) -> Entity:
        if name == "python":
            return _ctx(self.crate, f"https://www.python.org/downloads/release/python-{version.replace('.', '')}/",
                        {"@type": "SoftwareApplication", "name": "Python", "softwareVersion": version,
                         "url": "https://www.python.org/"})
        return _ctx(self.crate, f"https://pypi.org/project/{name}/{version}/", {
            "@type": "SoftwareApplication", "name": name, "softwareVersion": version,
            "url": f"https://pypi.org/project/{name}/"})

    def tool(self, command: str, rec: dict[str, Any]) -> Entity:
        """The SoftwareApplication ``python -m parallel_scaling <command>``; its url is its source file
        in the crate (the command's module), its version the package's."""
        identifier = f"#tool-{command}"
        existing = self.crate.get(identifier)
        if existing is not None:
            return existing
        props: dict[str, Any] = {"@type": "SoftwareApplication", "name": f"parallel_scaling {command}",
                                 "description": f"python -m parallel_scaling {command}"}
        version = (rec.get("packages") or {}).get("parallel-scaling") or _version("parallel-scaling")
        if version:
            props["softwareVersion"] = str(version)
        module = COMMANDS.get(command, (None,))[0]
        source = next((n for n in self.files if module and n.endswith(f"parallel_scaling/{module}.py")), None)
        if source is not None:
            props["url"] = {"@id": self.files[source].id}
        return _ctx(self.crate, identifier, props)

    def engine(self, records: list[dict[str, Any]]) -> Entity:
        version = _most_common((r.get("packages") or {}).get("snakemake") for r in records) \
            or _version("snakemake")
        if version:
            entity = self.package("snakemake", str(version))
        else:
            entity = _ctx(self.crate, "https://pypi.org/project/snakemake/", {
                "@type": "SoftwareApplication", "name": "snakemake"})
        entity["url"] = "https://snakemake.readthedocs.io"
        entity["description"] = "Snakemake, the workflow engine that ran the jobs"
        return entity

    # -- provenance -----------------------------------------------------------------------

    def add_jobs(self, records: list[tuple[Packed, dict[str, Any], str, list[Path]]], workflow: Entity) -> \
            tuple[list[Entity], list[Entity]]:
        """One CreateAction + ControlAction per job; returns (job actions, controls).

        Each job is (its record, the record, its rule, its outputs as Snakemake declares them). A job's
        ``result`` is what its record hashed after the run, plus its declared outputs that are packed
        (a command that writes files through options other than --out, like qc-table's --csv, has them
        only there).
        """
        crate = self.crate
        steps: dict[str, Entity] = {}
        jobs: list[Entity] = []
        controls: list[Entity] = []
        for packed, rec, rule, declared in sorted(records, key=lambda pr: str(pr[1].get("start_time"))):
            command = str(rec["command"])
            tool = self.tool(command, rec)
            if tool.id not in {entity_id(t) for t in as_list(workflow.get("hasPart"))}:
                workflow.append_to("hasPart", tool)
            if rule not in steps:
                steps[rule] = _ctx(crate, f"#step-{_slug(rule)}", {
                    "@type": "HowToStep", "name": rule, "position": len(steps), "workExample": tool,
                    "description": f"Snakemake rule {rule}"})
                workflow.append_to("step", steps[rule])
            elif tool.id not in {entity_id(t) for t in as_list(steps[rule].get("workExample"))}:
                steps[rule].append_to("workExample", tool)
            known = {entity_id(r) for r in as_list(tool.get("softwareRequirements"))}
            for req in self.requirements(rec.get("packages") or {}):
                if req.id not in known:
                    tool.append_to("softwareRequirements", req)
                    known.add(req.id)
            rid = str(rec.get("id") or uuid.uuid5(uuid.NAMESPACE_URL, packed.member.name))
            cwd = rec.get("cwd")
            objects = _unique(self.file_for(e, cwd) for e in rec.get("inputs") or [])
            objects += self._parameters(rid, rec)
            results = _unique([
                *(f for f in (self.packed_file(e, cwd) for e in rec.get("outputs") or []) if f is not None),
                *(self.files[p.member.name] for p in (self.by_source.get(str(f.resolve()))
                                                      for f in _expand(declared)) if p is not None)])
            ok = rec.get("status") == "ok"
            props: dict[str, Any] = {
                "@type": "CreateAction",
                "name": f"Run of {command} ({PurePosixPath(packed.member.name).name})",
                "description": shlex.join(["python", "-m", "parallel_scaling", command,
                                           *map(str, rec.get("argv") or [])]),
                "startTime": iso_ms(rec.get("start_time")), "endTime": iso_ms(rec.get("end_time")),
                "actionStatus": COMPLETED if ok else FAILED,
                "agent": self.agent_of(rec),
            }
            if not ok:
                props["error"] = f"exit code {rec.get('exit_code')}, exception {rec.get('exception')}"
            props = {k: v for k, v in props.items() if v is not None}
            job = crate.add_action(tool, identifier=f"#job-{rid}", object=objects or None,
                                   result=results or None, properties=props)
            self.files[packed.member.name]["about"] = job
            control = crate.add(ContextEntity(crate, f"#control-{rid}", properties={
                "@type": "ControlAction", "name": f"orchestrate {rule}",
                "instrument": steps[rule], "object": job}))
            jobs.append(job)
            controls.append(control)
        return jobs, controls

    def _parameters(self, rid: str, rec: dict[str, Any]) -> list[Entity]:
        """Seeds and settings of a job as PropertyValues, so they read as inputs of the action."""
        values: list[Entity] = []
        if rec.get("seeds"):
            seeds = rec["seeds"]
            values.append(_ctx(self.crate, f"#job-{rid}-seed", {
                "@type": "PropertyValue", "name": "seed",
                "value": str(seeds[0]) if len(seeds) == 1 else json.dumps(seeds)}))
        if rec.get("settings") is not None:
            values.append(_ctx(self.crate, f"#job-{rid}-settings", {
                "@type": "PropertyValue", "name": "settings",
                "value": json.dumps(rec["settings"], sort_keys=True)}))
        return values

    def add_run(self, workflow: Entity, records: list[dict[str, Any]], jobs: list[Entity],
                controls: list[Entity], description: str) -> Entity:
        """The CreateAction of the whole run and the OrganizeAction of Snakemake around it."""
        crate = self.crate
        starts = sorted(t for t in (iso_ms(r.get("start_time")) for r in records) if t)
        ends = sorted(t for t in (iso_ms(r.get("end_time")) for r in records) if t)
        produced = {ref["@id"] for job in jobs for ref in _refs(job.get("result"))}
        consumed: list[Entity] = []
        for job in jobs:
            for ref in _refs(job.get("object")):
                entity = crate.get(ref["@id"])
                if entity is not None and ref["@id"] not in produced and \
                        "PropertyValue" not in types(entity) and entity not in consumed:
                    consumed.append(entity)
        config = [self.files[p.member.name] for p in self.packed if p.member.role == "config"]
        results = [self.files[p.member.name] for p in self.packed if p.member.role == "result"]
        failed = _unresolved_failures(records)
        run_id = uuid.uuid4()
        props: dict[str, Any] = {
            "@type": "CreateAction", "name": "Run of the parallel-scaling workflow",
            "description": description,
            "startTime": starts[0] if starts else None, "endTime": ends[-1] if ends else _now(),
            "actionStatus": FAILED if failed else COMPLETED,
            "agent": self.run_agent,
        }
        if failed:
            props["error"] = "failed jobs: " + ", ".join(failed)
        props = {k: v for k, v in props.items() if v is not None}
        run = crate.add_action(workflow, identifier=f"#run-{run_id}", object=config + consumed or None,
                               result=results or None, properties=props)
        for p in self.packed:
            if p.member.role in {"log", "report"}:
                self.files[p.member.name]["about"] = run
        organize: dict[str, Any] = {"@type": "OrganizeAction", "name": "Snakemake orchestration of the run",
                                    "instrument": self.engine(records), "result": run,
                                    "agent": self.run_agent}
        if controls:
            organize["object"] = controls
        if starts:
            organize["startTime"] = starts[0]
        if ends:
            organize["endTime"] = ends[-1]
        crate.add(ContextEntity(crate, f"#organize-{run_id}", properties=organize))
        crate.root_dataset["mentions"] = [run, *jobs]
        return run

    def payload(self) -> bytes:
        """``ro-crate-metadata.json``: single values written as such, not one-element lists (the
        RO-Crate 1.1 compact form the validator recommends)."""
        metadata = self.crate.metadata.generate()
        for entity in metadata["@graph"]:
            for key, value in list(entity.items()):
                if not key.startswith("@") and isinstance(value, list) and len(value) == 1:
                    entity[key] = value[0]
        return json.dumps(metadata, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


_ROLE_DESCRIPTIONS = {
    "source": "Source file of the workflow (rules, package, resources, environments).",
    "config": "Workflow configuration of the run.",
    "result": "Result file of the run.",
    "log": "Log written during the run.",
    "provenance": "Per-job provenance record (parallel_scaling.common.provenance).",
    "report": "Snakemake report of the run, built from the run's config.",
    "readme": "What this archive holds and how to check it.",
}

#: Media types by suffix, fixed here rather than read from the machine's mime.types, so that an
#: archive describes its files the same way wherever it is built.
_MEDIA_TYPES = {
    ".jsonl": "application/jsonl", ".json": "application/json", ".yaml": "application/yaml",
    ".yml": "application/yaml", ".toml": "application/toml", ".csv": "text/csv",
    ".tsv": "text/tab-separated-values", ".md": "text/markdown", ".rst": "text/x-rst",
    ".txt": "text/plain", ".log": "text/plain", ".py": "text/x-python", ".smk": "text/plain",
    ".sh": "application/x-sh", ".tex": "application/x-tex", ".png": "image/png",
    ".pdf": "application/pdf", ".svg": "image/svg+xml", ".html": "text/html", ".zip": "application/zip",
    ".gz": "application/gzip", ".parquet": "application/vnd.apache.parquet",
    ".safetensors": "application/octet-stream", ".bin": "application/octet-stream",
    ".pt": "application/octet-stream", ".model": "application/octet-stream",
}


def media_type(name: str) -> str:
    """The encodingFormat of a packed file (every File gets one; unknown bytes are octet-stream)."""
    base = PurePosixPath(name).name
    if base.lower() in {"snakefile", "makefile"}:
        return "text/plain"
    suffix = PurePosixPath(base).suffix.lower()
    return _MEDIA_TYPES.get(suffix) or mimetypes.guess_type(base)[0] or "application/octet-stream"


def _most_common(values: Any) -> Any:
    counts = Counter(v for v in values if v)
    return counts.most_common(1)[0][0] if counts else None


def _unique(entities: Any) -> list[Entity]:
    out: list[Entity] = []
    for e in entities:
        if all(e.id != o.id for o in out):
            out.append(e)
    return out


def _refs(value: Any) -> list[dict[str, Any]]:
    items = value if isinstance(value, list) else ([] if value is None else [value])
    return [{"@id": i.id} if isinstance(i, Entity) else i for i in items if i is not None]


def _unresolved_failures(records: list[dict[str, Any]]) -> list[str]:
    """Commands that failed and never succeeded later with the same arguments (retries excluded)."""
    last: dict[str, tuple[str, str]] = {}
    for rec in sorted(records, key=lambda r: str(r.get("start_time"))):
        key = json.dumps([rec.get("command"), rec.get("argv")])
        last[key] = (str(rec.get("command")), str(rec.get("status")))
    return sorted({cmd for cmd, status in last.values() if status != "ok"})


# --------------------------------------------------------------------------------------------
# entry points


def write_yaml(data: Any, path: Path, header: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {header}\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    return path


def config_members(configs: list[Path], base: Path, run_config: dict[str, Any] | None,
                   overrides: dict[str, Any] | None, tmpdir: Path) -> list[Member]:
    """The run's configuration as archive members: every config file in the order Snakemake read
    them, the ``--config`` overrides, and the merged config (written to ``tmpdir``)."""
    members: list[Member] = []
    n = len(configs)
    for i, path in enumerate(configs, 1):
        order = f" {i} of {n}" if n > 1 else ""
        later = " (later files override earlier ones)" if n > 1 else ""
        members.append(Member(Path(path), crate_name(Path(path), base, f"config/{Path(path).name}"), "config",
                              f"Config file{order} given to Snakemake for the run{later}."))
    if overrides:
        members.append(Member(
            write_yaml(overrides, tmpdir / "overrides.yaml", "--config overrides of the run"),
            OVERRIDES_NAME, "config",
            "The run's --config overrides, typed as the workflow reads them; they override the config files."))
    if run_config is not None:
        members.append(Member(
            write_yaml(run_config, tmpdir / "run-config.yaml",
                       "the config of the run as Snakemake merged and validated it (parallel_scaling archive)"),
            RUN_CONFIG_NAME, "config",
            "The config of the run as Snakemake merged and validated it: the config files, then the "
            "overrides, with the schema's defaults filled in. The report in this archive was built from it."))
    return members


def readme_text(title: str, selection: Selection, dag: list[DagJob] | None, excludes: tuple[str, ...],
                attribution: Attribution) -> str:
    """The archive's README.md: what it holds, what was left out, and how to check it."""
    members = selection.members
    count = Counter(m.role for m in members)
    configs = [m for m in members if m.role == "config"]
    lines = [
        f"# {title}: an archived run of the parallel-scaling workflow", "",
        "This archive is an RO-Crate (`ro-crate-metadata.json`) conforming to the Workflow Run Crate, "
        "Provenance Run Crate and Process Run Crate 0.5 profiles and Workflow RO-Crate 1.0. It describes "
        "the workflow (its Snakemake rules as steps), every job as an action with its agent, times, "
        "inputs, outputs and software, and the config of the run.", "",
        "## What is inside", "",
        f"* {count['result']} result files, {count['provenance']} per-job provenance records "
        f"(`*.prov.json`: inputs hashed before the job, outputs after, settings, package versions, host) "
        f"and {count['log']} logs.",
        "* The configuration: " + ", ".join(f"`{m.name}`" for m in configs) + ". "
        f"`{RUN_CONFIG_NAME}` is the config exactly as Snakemake merged and validated it; "
        "`snakemake --configfile " + RUN_CONFIG_NAME + "` plans the same run.",
        f"* The code: the Snakefile and {count['source']} source files (rules, the `parallel_scaling` "
        "package, resources, environments).",
    ]
    if count["report"]:
        lines.append("* The Snakemake report, built from the run's config.")
    lines += ["", "## Left out", ""]
    why = " (optimizer and scheduler state: they only resume training)" if set(excludes) == set(
        DEFAULT_EXCLUDES) else ""
    lines.append(f"* Under the results directory, files matching {', '.join(f'`{g}`' for g in excludes)}{why}."
                 if excludes else "* Nothing by pattern.")
    if dag is not None:
        n = len(selection.stale)
        lines.append(f"* {n} file{'s' if n != 1 else ''} in the results directory that none of the run's "
                     f"{len(dag)} jobs wrote or read (left there by an earlier configuration).")
    lines.append("* Anything whose name or content looks like a secret (tokens, keys, credentials).")
    if attribution.license_id:
        lines += ["", f"License of the archived results: {attribution.license_id}."]
    lines += [
        "", "## How to check it", "",
        "With the workflow's code (a clone of its repository, `pip install -e .` or the `.venv` of "
        "`make setup`):", "",
        "```bash",
        "python -m parallel_scaling verify-archive <this .tar.gz>",
        "```", "",
        "It checks every file against its sha256 in the crate, each job's recorded inputs against the "
        "archived files (a checkpoint's initial model and mixture must be the archived ones), and the "
        "crate against each declared profile with roc-validator 0.13.0, offline; it prints `OK` or the "
        "problems. roc-validator alone, on the unpacked archive (it fetches the JSON-LD contexts):", "",
        "```bash",
        "pip install roc-validator==0.13.0",
        "rocrate-validator validate -p provenance-run-crate-0.5 --requirement-severity RECOMMENDED <unpacked dir>",
        "```", ""]
    return "\n".join(lines)


def build_archive(results: Path, config: Path | list[Path], out: Path, logs: Path | None = None,
                  report: Path | None = None, workflow_dir: Path = Path("."),
                  snakefile: Path | None = None, excludes: tuple[str, ...] = DEFAULT_EXCLUDES,
                  name: str | None = None, license_id: str | None = None,
                  run_config: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
                  snakemake_dag: bool = False, attribution: Attribution | None = None) -> Path:
    """Pack a run into ``out`` (a .tar.gz Workflow Run RO-Crate); returns ``out``.

    With ``snakemake_dag`` (needs ``run_config``), Snakemake is asked, with the run's merged config,
    to build ``report`` and to list the run's DAG, and only the DAG's files are packed. The tarball
    is written beside ``out`` under a temporary name and renamed at the end, so an interrupted run
    never leaves a truncated archive that looks complete.
    """
    workflow_dir = Path(workflow_dir)
    snakefile = Path(snakefile) if snakefile else find_snakefile(workflow_dir)
    if not snakefile.is_file():
        raise ArchiveError(f"Snakefile {snakefile} does not exist")
    if snakemake_dag and run_config is None:
        raise ArchiveError("--snakemake-dag needs the run's merged config (--run-config)")
    attribution = attribution or Attribution(license_id=license_id)
    configs = [Path(c) for c in (config if isinstance(config, list) else [config])]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as scratch:
        config_list = config_members(configs, workflow_dir.resolve(), run_config, overrides, Path(scratch))
        dag = None
        if snakemake_dag:
            run_config_file = next(m.source for m in config_list if m.name == RUN_CONFIG_NAME)
            if report is not None:
                build_report(snakefile.resolve(), workflow_dir, run_config_file, Path(report))
            dag = plan_run(snakefile.resolve(), workflow_dir, run_config_file)
        selection = collect_members(Path(results), Path(logs) if logs else None, config_list, workflow_dir,
                                    snakefile, Path(report) if report else None, tuple(excludes),
                                    skip=(out, tmp), dag=dag)
        if selection.stale:
            more = " ..." if len(selection.stale) > 5 else ""
            _warn(f"left out {len(selection.stale)} files under {results} that no job of this run wrote "
                  f"or read (from an earlier configuration?): {', '.join(selection.stale[:5])}{more}")
        title = name or f"parallel-scaling run archived {_now()[:10]}"
        readme = Path(scratch) / README_NAME
        readme.write_text(readme_text(title, selection, dag, tuple(excludes), attribution), encoding="utf-8")
        members = [*selection.members, Member(readme, README_NAME, "readme")]
        dag_jobs = _jobs_of(dag, workflow_dir)
        logs_root = crate_name(Path(logs), workflow_dir.resolve(), "logs") if logs else "logs"
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                packed = [_add_file(tar, m) for m in members]
                recs = [r for _, r in selection.records]
                builder = _CrateBuilder(packed, title, attribution, recs)
                workflow = builder.add_files(recs)
                results_name = crate_name(Path(results), workflow_dir.resolve(), "results")
                builder.add_results_dataset(results_name)
                by_member = {p.member: p for p in packed}
                jobs, controls = builder.add_jobs(
                    [(by_member[m], r, *_rule_and_outputs(m, dag_jobs, workflow_dir, logs_root))
                     for m, r in selection.records],
                    workflow)
                n_jobs = len(dag) if dag is not None else len(jobs)
                configs_text = " ".join(f"--configfile {m.name}" for m in config_list
                                        if m.name not in (RUN_CONFIG_NAME, OVERRIDES_NAME))
                builder.add_run(workflow, recs, jobs, controls,
                                f"snakemake {configs_text}{' --config ...' if overrides else ''}: the study "
                                f"{title}, {n_jobs} jobs ({len(jobs)} with a provenance record)")
                payload = builder.payload()
                tar.addfile(_tarinfo(METADATA_NAME, len(payload), _dt.datetime.now().timestamp()),
                            io.BytesIO(payload))
            os.replace(tmp, out)
        finally:
            if tmp.exists():
                tmp.unlink()
    return out


def _jobs_of(dag: list[DagJob] | None, workflow_dir: Path) -> dict[Path, DagJob]:
    """Log file (resolved) -> its job in the DAG (a record is one of its job's log files)."""
    if dag is None:
        return {}
    return {_in_run(log, workflow_dir).resolve(): job for job in dag for log in job.logs}


def _rule_and_outputs(member: Member, dag_jobs: dict[Path, DagJob], workflow_dir: Path, logs_root: str) -> \
        tuple[str, list[Path]]:
    """The rule of a record's job and its declared outputs: from the DAG, else from the record's path."""
    job = dag_jobs.get(member.source)
    if job is None:
        return record_rule(member, logs_root), []
    return job.rule, [_in_run(o, workflow_dir) for o in job.outputs]


def _json_arg(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ArchiveError(f"{option} is not valid JSON ({exc})") from exc


def main(argv: list[str] | None = None) -> int:
    """``archive``: pack results, logs, report, config and provenance into an RO-Crate tarball."""
    parser = argparse.ArgumentParser(
        prog="parallel_scaling archive",
        description="Pack a finished run into a Workflow Run RO-Crate (.tar.gz), then check it as "
                    "verify-archive does.")
    parser.add_argument("--results", required=True, type=Path, help="results directory of the run")
    parser.add_argument("--logs", type=Path, help="logs directory (holds the *.prov.json records)")
    parser.add_argument("--report", type=Path, help="Snakemake report (report.zip or .html); with "
                        "--snakemake-dag it is (re)built there from the run's config")
    parser.add_argument("--config", action="append", default=[], type=Path, metavar="FILE",
                        help="config file given to Snakemake; repeat in the order they were given")
    parser.add_argument("--overrides", metavar="JSON", help="the run's --config overrides, as JSON")
    parser.add_argument("--run-config", metavar="JSON",
                        help="the config as Snakemake merged and validated it, as JSON")
    parser.add_argument("--snakemake-dag", action="store_true",
                        help="ask Snakemake (with --run-config) for the run's DAG and report: pack only "
                             "the files the run's jobs wrote or read")
    parser.add_argument("--workflow-dir", type=Path, default=Path("."),
                        help="Snakemake working directory; archive paths are relative to it")
    parser.add_argument("--snakefile", type=Path, help="main Snakefile (default: found in --workflow-dir)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="leave out results files matching GLOB (relative to --results); repeatable")
    parser.add_argument("--no-default-excludes", action="store_true",
                        help=f"also pack {', '.join(DEFAULT_EXCLUDES)}")
    parser.add_argument("--name", help="name of the archived run")
    parser.add_argument("--license", dest="license_id", default=DEFAULT_LICENSE,
                        help=f"SPDX license id of the archived results (default: {DEFAULT_LICENSE})")
    parser.add_argument("--agent", help="who ran the study (default: the login name recorded with each job)")
    parser.add_argument("--agent-id", help="URL identifying the agent, e.g. https://orcid.org/...")
    parser.add_argument("--organization", help="the agent's organization: their affiliation and the "
                        "archive's publisher")
    parser.add_argument("--organization-id", help="URL of the organization, e.g. https://ror.org/...")
    parser.add_argument("--out", required=True, type=Path, help="output .tar.gz")
    parser.add_argument("--no-profile-check", action="store_true",
                        help="check only files and provenance chain after packing, not the RO-Crate "
                             "profiles (verify-archive still checks them)")
    args = parser.parse_args(argv)
    excludes = tuple(args.exclude) + (() if args.no_default_excludes else DEFAULT_EXCLUDES)
    attribution = Attribution(args.license_id, args.agent, args.agent_id, args.organization,
                              args.organization_id)
    try:
        if not args.config:
            raise ArchiveError("no config file given (--config FILE)")
        out = build_archive(args.results, args.config, args.out, logs=args.logs, report=args.report,
                            workflow_dir=args.workflow_dir, snakefile=args.snakefile,
                            excludes=excludes, name=args.name,
                            run_config=_json_arg(args.run_config, "--run-config"),
                            overrides=_json_arg(args.overrides, "--overrides"),
                            snakemake_dag=args.snakemake_dag, attribution=attribution)
    except ValueError as exc:  # ArchiveError, or an unreadable provenance record naming its file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from parallel_scaling.archive.verify import render, verify

    # re-read what was written: a bad archive must not pass silently
    result = verify(out, profiles=None if args.no_profile_check else "inherited")
    print(render(result), file=sys.stderr)
    print(out)
    return 1 if result.problems else 0


def verify_archive(path: str | os.PathLike[str], profiles: str | None = "each") -> list[str]:
    """Problems with an archive (empty list: it checks out); see :mod:`parallel_scaling.archive.verify`."""
    from parallel_scaling.archive.verify import verify_archive as _verify

    return _verify(path, profiles=profiles)
