"""Command ``archive``: pack a finished run into one Workflow Run RO-Crate tarball.

Researchers archive a run with its results so that anyone can later see *which workflow, config,
code and inputs* produced each number. The archive is a ``.tar.gz`` with
``ro-crate-metadata.json`` at its root and every packed file under its path relative to the
workflow directory (``results/...``, ``logs/...``, ``config/config.yaml``, ``workflow/Snakefile``).
Paths outside the workflow directory fall back to ``results/``, ``logs/``, ``config/`` or
``report/`` plus their path below the given location.

The crate follows Workflow Run RO-Crate 0.5 (RO-Crate 1.1, Workflow RO-Crate 1.0) and declares the
Process, Workflow and Provenance Run Crate profiles:

* main entity: the Snakefile, a ``ComputationalWorkflow``/``HowTo`` in the Snakemake language, with
  one ``HowToStep`` per pipeline command and that command's tool (``SoftwareApplication``
  ``python -m parallel_scaling <command>``) in its ``hasPart``;
* one ``CreateAction`` for the whole run (instrument: the workflow; object: the config and the
  inputs no job produced; result: every result file) inside an ``OrganizeAction`` of Snakemake;
* one ``CreateAction`` per job, from the ``*.prov.json`` records under the logs directory (see
  :mod:`parallel_scaling.provenance`): start/end time, status, ``object`` = its inputs, ``result`` =
  its outputs that are packed with the same SHA-256. The Provenance Run Crate profile requires
  that the instrument of a job action be the *tool* it ran, so it is the command's
  ``SoftwareApplication`` (a ``hasPart`` of the workflow), and a ``ControlAction`` ties each job to
  its workflow step. The record file itself is packed, ``about`` its action;
* every packed file as a ``File`` with ``sha256`` and ``contentSize``; the package versions each
  command ran with as ``softwareRequirements`` of its tool.

Inputs outside the archive (models, datasets) appear as ``CreativeWork`` entities carrying their
original path and SHA-256, so they can still be checked against a copy.

What is left out, on purpose:

* files whose name marks a secret (``.env*``, ``.netrc``, ``*.pem``/``*.key``, SSH keys, Hugging
  Face ``stored_tokens``, and names with a *word* token/secret/password/credential(s)/apikey --
  ``hf_token`` yes, ``tokenizer.json`` or ``special_tokens_map.json`` no, since checkpoints need
  those); files up to 1 MiB that contain a Hugging Face token; the environment is never read.
  A config file that is excluded this way is an error, as the crate would be incomplete;
* under the results directory, files matching ``--exclude GLOB`` (repeatable, matched against the
  path relative to the results directory; ``**/`` also matches at the top). By default the
  optimizer and scheduler state of checkpoints (``**/optimizer.pt``, ``**/optimizer.bin``,
  ``**/scheduler.pt``): they only serve to resume training, are the largest files of a checkpoint
  and never feed a reported number. Model weights stay, as they *are* results.
  ``--no-default-excludes`` packs everything.

:func:`verify_archive` re-opens an archive with rocrate and lists what is wrong with it.
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
import sys
import tarfile
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote

from rocrate.model.computationalworkflow import ComputationalWorkflow
from rocrate.model.contextentity import ContextEntity
from rocrate.model.entity import Entity
from rocrate.rocrate import ROCrate

from parallel_scaling.provenance import HF_TOKEN_PATTERN, load_record

METADATA_NAME = "ro-crate-metadata.json"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
PROFILES = {
    "https://w3id.org/ro/wfrun/process/0.5": ("Process Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/workflow/0.5": ("Workflow Run Crate", "0.5"),
    "https://w3id.org/ro/wfrun/provenance/0.5": ("Provenance Run Crate", "0.5"),
    "https://w3id.org/workflowhub/workflow-ro-crate/1.0": ("Workflow RO-Crate", "1.0"),
}
DEFAULT_EXCLUDES = ("**/optimizer.pt", "**/optimizer.bin", "**/scheduler.pt")
PROV_SUFFIX = ".prov.json"
SNAKEFILE_CANDIDATES = ("workflow/Snakefile", "Snakefile", "workflow/snakefile", "snakefile")
SCAN_LIMIT = 1 << 20  # bytes: smaller files are scanned for tokens before packing

_SECRET_NAMES = frozenset({".netrc", ".pgpass", ".git-credentials", "stored_tokens", "credentials"})
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
_SECRET_PREFIXES = (".env", "id_rsa", "id_ed25519", "id_ecdsa", "id_dsa")
_SECRET_WORDS = frozenset({"token", "secret", "secrets", "password", "passwd", "credential",
                           "credentials", "apikey"})
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """A run cannot be archived as asked (missing inputs, unsafe or clashing files)."""


@dataclass(frozen=True)
class Member:
    """A file to pack: where it is, where it goes in the crate, and what it is for the run."""

    source: Path
    name: str  # posix path inside the archive (unquoted crate id)
    role: str  # workflow | source | config | result | log | provenance | report


@dataclass
class Packed:
    """A member after it was written to the tarball, with what was measured while writing it."""

    member: Member
    sha256: str
    size: int


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


def collect_members(results: Path, logs: Path | None, config: Path, workflow_dir: Path,
                    snakefile: Path, report: Path | None, excludes: tuple[str, ...],
                    skip: tuple[Path, ...] = ()) -> list[Member]:
    """Every file to pack, with secrets and excluded checkpoint state left out.

    Raises ArchiveError when a required path is missing, the config looks secret, or two
    different files would land at the same place in the archive.
    """
    if not results.is_dir():
        raise ArchiveError(f"results directory {results} does not exist (nothing to archive)")
    if not config.is_file():
        raise ArchiveError(f"config file {config} does not exist")
    if logs is not None and not logs.is_dir():
        raise ArchiveError(f"logs directory {logs} does not exist")
    if report is not None and not report.is_file():
        raise ArchiveError(f"report {report} does not exist")
    if is_secret_name(config.name) or has_secret_content(config):
        raise ArchiveError(f"config file {config} looks like it holds a secret; remove it first")
    base = workflow_dir.resolve()
    members: list[Member] = []
    taken: dict[str, Path] = {}
    skipped = {p.resolve() for p in skip}

    def add(path: Path, name: str, role: str) -> None:
        real = path.resolve()
        if real in skipped or any(m.source == real for m in members):
            return
        if name in taken and taken[name] != real:
            raise ArchiveError(f"{path} and {taken[name]} would both be archived as {name}")
        taken[name] = real
        members.append(Member(real, name, role))

    add(snakefile, crate_name(snakefile, base, f"workflow/{snakefile.name}"), "workflow")
    for rule_file in sorted(snakefile.parent.rglob("*.smk")):
        fallback = f"workflow/{rule_file.relative_to(snakefile.parent).as_posix()}"
        add(rule_file, crate_name(rule_file, base, fallback), "source")
    add(config, crate_name(config, base, f"config/{config.name}"), "config")
    if report is not None:
        add(report, crate_name(report, base, f"report/{report.name}"), "report")
    trees = ([(logs, "logs")] if logs is not None else []) + [(results, "results")]
    for root, label in trees:
        for path in _walk(root):
            rel = path.relative_to(root).as_posix()
            if is_secret_name(path.name) or has_secret_content(path):
                _warn(f"left out {path}: it looks like a secret")
                continue
            if label == "results" and matches_any(rel, excludes):
                continue
            role = ("provenance" if path.name.endswith(PROV_SUFFIX) else "log") if label == "logs" \
                else "result"
            add(path, crate_name(path, base, f"{label}/{rel}"), role)
    return members


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


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


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


class _CrateBuilder:
    """Turns packed files and provenance records into the RO-Crate graph."""

    def __init__(self, packed: list[Packed], name: str, license_id: str | None):
        self.crate = ROCrate(version="1.1")
        self.crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
        self.crate.metadata.extra_terms["sha256"] = "http://schema.org/sha256"
        self.packed = packed
        self.by_source: dict[str, Packed] = {str(p.member.source): p for p in packed}
        self.by_name: dict[str, Packed] = {p.member.name: p for p in packed}
        self.files: dict[str, Entity] = {}
        root = self.crate.root_dataset
        root["name"] = name
        root["description"] = ("Results, logs, configuration and per-job provenance of one run of the "
                               "parallel-scaling Snakemake workflow.")
        root["datePublished"] = _now()
        if license_id:
            lic = _ctx(self.crate, f"https://spdx.org/licenses/{license_id}",
                       {"@type": "CreativeWork", "name": license_id, "identifier": license_id})
            root["license"] = lic
        root["conformsTo"] = [
            _ctx(self.crate, pid, {"@type": "CreativeWork", "name": pname, "version": pver})
            for pid, (pname, pver) in PROFILES.items()
        ]

    # -- data entities --------------------------------------------------------------------

    def add_files(self, records: list[dict[str, Any]]) -> Entity:
        """Add every packed file; returns the main workflow entity."""
        workflow = None
        snakemake_version = _most_common(r.get("packages", {}).get("snakemake") for r in records) \
            or _version("snakemake")
        for item in self.packed:
            m = item.member
            props: dict[str, Any] = {"name": m.name, "sha256": item.sha256,
                                     "contentSize": str(item.size)}
            fmt = _media_type(m.name)
            if fmt:
                props["encodingFormat"] = fmt
            if m.role == "workflow":
                # HowTo: the Provenance Run Crate profile requires it of a workflow with steps
                props["@type"] = [*ComputationalWorkflow.TYPES, "HowTo"]
                workflow = self.crate.add_workflow(
                    source=m.source, dest_path=m.name, main=True, lang="snakemake",
                    lang_version=snakemake_version, properties=props)
                self.files[m.name] = workflow
                continue
            props["description"] = _ROLE_DESCRIPTIONS[m.role]
            self.files[m.name] = self.crate.add_file(source=m.source, dest_path=m.name, properties=props)
        if workflow is None:
            raise ArchiveError("internal error: no Snakefile was packed")
        workflow["name"] = "parallel-scaling Snakemake workflow"
        commit = _most_common((r.get("code_version") or {}).get("commit") for r in records)
        if commit:
            workflow["version"] = commit
        return workflow

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

    # -- provenance -----------------------------------------------------------------------

    def add_jobs(self, records: list[tuple[Packed, dict[str, Any]]], workflow: Entity) -> \
            tuple[list[Entity], list[Entity]]:
        """One CreateAction + ControlAction per record; returns (job actions, control actions)."""
        crate = self.crate
        tools: dict[str, Entity] = {}
        steps: dict[str, Entity] = {}
        jobs: list[Entity] = []
        controls: list[Entity] = []
        ordered = sorted(records, key=lambda pr: str(pr[1].get("start_time")))
        for packed, rec in ordered:
            command = str(rec["command"])
            if command not in tools:
                tools[command] = _ctx(crate, f"#tool-{command}", {
                    "@type": "SoftwareApplication", "name": f"parallel_scaling {command}",
                    "description": f"python -m parallel_scaling {command}"})
                version = (rec.get("packages") or {}).get("parallel-scaling")
                if version:
                    tools[command]["softwareVersion"] = version
                steps[command] = _ctx(crate, f"#step-{command}", {
                    "@type": "HowToStep", "name": command, "position": str(len(steps)),
                    "workExample": tools[command]})
                workflow.append_to("hasPart", tools[command])
                workflow.append_to("step", steps[command])
            for req in _requirements(crate, rec.get("packages") or {}):
                if req.id not in {r["@id"] for r in tools[command]._jsonld.get("softwareRequirements", [])}:
                    tools[command].append_to("softwareRequirements", req)
            rid = str(rec.get("id") or uuid.uuid5(uuid.NAMESPACE_URL, packed.member.name))
            cwd = rec.get("cwd")
            objects = _unique(self.file_for(e, cwd) for e in rec.get("inputs") or [])
            objects += self._parameters(rid, rec)
            results = _unique(f for f in (self.packed_file(e, cwd) for e in rec.get("outputs") or [])
                              if f is not None)
            ok = rec.get("status") == "ok"
            props: dict[str, Any] = {
                "@type": "CreateAction",
                "name": f"Run of {command} ({PurePosixPath(packed.member.name).name})",
                "description": shlex.join(["python", "-m", "parallel_scaling", command,
                                           *map(str, rec.get("argv") or [])]),
                "startTime": rec.get("start_time"), "endTime": rec.get("end_time"),
                "actionStatus": {"@id": "http://schema.org/CompletedActionStatus" if ok
                                 else "http://schema.org/FailedActionStatus"},
            }
            if not ok:
                props["error"] = f"exit code {rec.get('exit_code')}, exception {rec.get('exception')}"
            props = {k: v for k, v in props.items() if v is not None}
            job = crate.add_action(tools[command], identifier=f"#job-{rid}", object=objects or None,
                                   result=results or None, properties=props)
            self.files[packed.member.name]["about"] = job
            control = crate.add(ContextEntity(crate, f"#control-{rid}", properties={
                "@type": "ControlAction", "name": f"orchestrate {command}",
                "instrument": steps[command], "object": job}))
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
                controls: list[Entity]) -> Entity:
        """The CreateAction of the whole run and the OrganizeAction of Snakemake around it."""
        crate = self.crate
        starts = sorted(str(r["start_time"]) for r in records if r.get("start_time"))
        ends = sorted(str(r["end_time"]) for r in records if r.get("end_time"))
        produced = {ref["@id"] for job in jobs for ref in _refs(job.get("result"))}
        consumed: list[Entity] = []
        for job in jobs:
            for ref in _refs(job.get("object")):
                entity = crate.get(ref["@id"])
                if entity is not None and ref["@id"] not in produced and \
                        "PropertyValue" not in _types(entity) and entity not in consumed:
                    consumed.append(entity)
        config = [self.files[p.member.name] for p in self.packed if p.member.role == "config"]
        results = [self.files[p.member.name] for p in self.packed if p.member.role == "result"]
        failed = _unresolved_failures(records)
        run_id = uuid.uuid4()
        props: dict[str, Any] = {
            "@type": "CreateAction", "name": "Run of the parallel-scaling workflow",
            "startTime": starts[0] if starts else None, "endTime": ends[-1] if ends else _now(),
            "actionStatus": {"@id": "http://schema.org/FailedActionStatus" if failed
                             else "http://schema.org/CompletedActionStatus"},
        }
        if failed:
            props["error"] = "failed jobs: " + ", ".join(failed)
        props = {k: v for k, v in props.items() if v is not None}
        run = crate.add_action(workflow, identifier=f"#run-{run_id}", object=config + consumed or None,
                               result=results or None, properties=props)
        for p in self.packed:
            if p.member.role in {"log", "report"}:
                self.files[p.member.name]["about"] = run
        engine_version = _most_common((r.get("packages") or {}).get("snakemake") for r in records) \
            or _version("snakemake")
        engine = _ctx(crate, "#snakemake", {
            "@type": "SoftwareApplication", "name": "Snakemake",
            "url": "https://snakemake.readthedocs.io"})
        if engine_version:
            engine["softwareVersion"] = engine_version
        organize = {"@type": "OrganizeAction", "name": "Snakemake orchestration of the run",
                    "instrument": engine, "result": run}
        if controls:
            organize["object"] = controls
        if starts:
            organize["startTime"] = starts[0]
        if ends:
            organize["endTime"] = ends[-1]
        crate.add(ContextEntity(crate, f"#organize-{run_id}", properties=organize))
        crate.root_dataset["mentions"] = [run]
        return run


_ROLE_DESCRIPTIONS = {
    "source": "Snakemake rule file included by the main workflow.",
    "config": "Workflow configuration used for the run.",
    "result": "Result file of the run.",
    "log": "Log written during the run.",
    "provenance": "Per-job provenance record (parallel_scaling.provenance).",
    "report": "Snakemake report of the run.",
}


def _media_type(name: str) -> str | None:
    if name.endswith(".jsonl"):
        return "application/jsonl"
    if name.endswith((".yaml", ".yml")):
        return "application/yaml"
    if name.endswith(".log"):
        return "text/plain"
    return mimetypes.guess_type(name)[0]


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


def _types(entity: Entity | dict[str, Any]) -> list[str]:
    t = entity.get("@type", []) if isinstance(entity, dict) else entity.type
    return list(t) if isinstance(t, list) else [t]


def _requirements(crate: ROCrate, packages: dict[str, Any]) -> list[Entity]:
    """SoftwareApplication entities for the package versions a job ran with."""
    reqs: list[Entity] = []
    for name, version in sorted(packages.items()):
        if not version or name == "parallel-scaling":
            continue
        identifier = (f"https://www.python.org/downloads/release/python-{str(version).replace('.', '')}/"
                      if name == "python" else f"https://pypi.org/project/{name}/{version}/")
        reqs.append(_ctx(crate, identifier, {"@type": "SoftwareApplication", "name": name,
                                             "softwareVersion": str(version)}))
    return reqs


def _unresolved_failures(records: list[dict[str, Any]]) -> list[str]:
    """Commands that failed and never succeeded later with the same arguments (retries excluded)."""
    last: dict[str, tuple[str, str]] = {}
    for rec in sorted(records, key=lambda r: str(r.get("start_time"))):
        key = json.dumps([rec.get("command"), rec.get("argv")])
        last[key] = (str(rec.get("command")), str(rec.get("status")))
    return sorted({cmd for cmd, status in last.values() if status != "ok"})


# --------------------------------------------------------------------------------------------
# entry points


def build_archive(results: Path, config: Path, out: Path, logs: Path | None = None,
                  report: Path | None = None, workflow_dir: Path = Path("."),
                  snakefile: Path | None = None, excludes: tuple[str, ...] = DEFAULT_EXCLUDES,
                  name: str | None = None, license_id: str | None = None) -> Path:
    """Pack a run into ``out`` (a .tar.gz Workflow Run RO-Crate); returns ``out``.

    The tarball is written beside ``out`` under a temporary name and renamed at the end, so an
    interrupted run never leaves a truncated archive that looks complete.
    """
    workflow_dir = Path(workflow_dir)
    snakefile = Path(snakefile) if snakefile else find_snakefile(workflow_dir)
    if not snakefile.is_file():
        raise ArchiveError(f"Snakefile {snakefile} does not exist")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    members = collect_members(Path(results), Path(logs) if logs else None, Path(config), workflow_dir,
                              snakefile, Path(report) if report else None, tuple(excludes),
                              skip=(out, tmp))
    records: list[tuple[Member, dict[str, Any]]] = [
        (m, load_record(m.source)) for m in members if m.role == "provenance"]
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            packed = [_add_file(tar, m) for m in members]
            title = name or f"parallel-scaling run archived {_now()[:10]}"
            builder = _CrateBuilder(packed, title, license_id)
            recs = [r for _, r in records]
            workflow = builder.add_files(recs)
            by_member = {p.member: p for p in packed}
            jobs, controls = builder.add_jobs([(by_member[m], r) for m, r in records], workflow)
            builder.add_run(workflow, recs, jobs, controls)
            payload = json.dumps(builder.crate.metadata.generate(), indent=2, sort_keys=True,
                                 ensure_ascii=False).encode("utf-8")
            tar.addfile(_tarinfo(METADATA_NAME, len(payload), _dt.datetime.now().timestamp()),
                        io.BytesIO(payload))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _safe_name(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts


def _hash_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str:
    digest = hashlib.sha256()
    handle = tar.extractfile(info)
    assert handle is not None
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _check_structure(crate: ROCrate) -> list[str]:
    """Profile-level checks: conformsTo, main workflow, run action, resolvable action links."""
    problems: list[str] = []
    declared = {ref.get("@id") if isinstance(ref, dict) else getattr(ref, "id", ref)
                for ref in _as_list(crate.root_dataset.get("conformsTo"))}
    for profile in PROFILES:
        if profile not in declared:
            problems.append(f"root dataset does not declare conformsTo {profile}")
    main = crate.mainEntity
    if not isinstance(main, Entity):
        problems.append("root dataset has no mainEntity")
    else:
        if "ComputationalWorkflow" not in _types(main):
            problems.append(f"mainEntity {main.id} is not a ComputationalWorkflow")
        if not main.get("programmingLanguage"):
            problems.append(f"mainEntity {main.id} has no programmingLanguage")
    actions = crate.get_by_type("CreateAction")
    if not actions:
        problems.append("no CreateAction in the crate")
    if isinstance(main, Entity) and not any(_id(a.get("instrument")) == main.id for a in actions):
        problems.append("no CreateAction has the main workflow as instrument")
    for action in actions + crate.get_by_type("ControlAction") + crate.get_by_type("OrganizeAction"):
        if action.get("instrument") is None:
            problems.append(f"action {action.id} has no instrument")
        for prop in ("instrument", "object", "result"):
            for ref in _as_list(action.get(prop)):
                if isinstance(ref, str) or (isinstance(ref, dict) and crate.get(ref.get("@id", "")) is None):
                    problems.append(f"action {action.id}: {prop} {ref!r} is not an entity of the crate")
    return problems


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else ([] if value is None else [value])


def _id(value: Any) -> str | None:
    if isinstance(value, Entity):
        return value.id
    if isinstance(value, dict):
        return value.get("@id")
    return None


def verify_archive(path: str | os.PathLike[str]) -> list[str]:
    """Problems with an archive made by :func:`build_archive` (empty list: it checks out).

    Loads the crate with rocrate, checks the Workflow Run Crate essentials and that every packed
    file is described, present, and matches its recorded ``sha256`` and ``contentSize``.
    """
    path = Path(path)
    try:
        tar = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as exc:
        return [f"{path}: not a readable tar archive ({exc})"]
    with tar:
        infos = {i.name: i for i in tar.getmembers()}
        problems = [f"{path}: unsafe member name {n!r}" for n in infos if not _safe_name(n)]
        if METADATA_NAME not in infos:
            return problems + [f"{path}: no {METADATA_NAME} at the root of the archive"]
        handle = tar.extractfile(infos[METADATA_NAME])
        assert handle is not None
        try:
            with tempfile.TemporaryDirectory(prefix="verify_crate_") as tmp:
                Path(tmp, METADATA_NAME).write_bytes(handle.read())
                crate = ROCrate(tmp)
        except (ValueError, KeyError) as exc:
            return problems + [f"{path}: {METADATA_NAME} is not a valid RO-Crate ({exc})"]
        problems += [f"{path}: {p}" for p in _check_structure(crate)]
        described: set[str] = {METADATA_NAME}
        for entity in crate.data_entities:
            if "File" not in _types(entity) or entity.id.startswith(("http://", "https://", "#")):
                continue
            name = unquote(entity.id)
            described.add(name)
            info = infos.get(name)
            if info is None or not info.isfile():
                problems.append(f"{path}: {name} is described in the crate but missing from the archive")
                continue
            expected = entity.get("sha256")
            if not expected:
                problems.append(f"{path}: {name} has no sha256 in the crate")
            elif _hash_member(tar, info) != expected:
                problems.append(f"{path}: {name} does not match its sha256 (checksum mismatch)")
            size = entity.get("contentSize")
            if size is not None and str(size) != str(info.size):
                problems.append(f"{path}: {name} is {info.size} bytes, the crate says {size}")
        for name, info in infos.items():
            if info.isfile() and name not in described:
                problems.append(f"{path}: {name} is in the archive but not described in the crate")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``archive``: pack results, logs, report, config and provenance into an RO-Crate tarball."""
    parser = argparse.ArgumentParser(
        prog="parallel_scaling archive",
        description="Pack a finished run into a Workflow Run RO-Crate (.tar.gz).")
    parser.add_argument("--results", required=True, type=Path, help="results directory of the run")
    parser.add_argument("--logs", type=Path, help="logs directory (holds the *.prov.json records)")
    parser.add_argument("--report", type=Path, help="Snakemake report (report.zip or .html)")
    parser.add_argument("--config", required=True, type=Path, help="workflow config file")
    parser.add_argument("--workflow-dir", type=Path, default=Path("."),
                        help="Snakemake working directory; archive paths are relative to it")
    parser.add_argument("--snakefile", type=Path, help="main Snakefile (default: found in --workflow-dir)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="leave out results files matching GLOB (relative to --results); repeatable")
    parser.add_argument("--no-default-excludes", action="store_true",
                        help=f"also pack {', '.join(DEFAULT_EXCLUDES)}")
    parser.add_argument("--name", help="name of the archived run")
    parser.add_argument("--license", dest="license_id", help="SPDX license id for the archive, e.g. CC-BY-4.0")
    parser.add_argument("--out", required=True, type=Path, help="output .tar.gz")
    args = parser.parse_args(argv)
    excludes = tuple(args.exclude) + (() if args.no_default_excludes else DEFAULT_EXCLUDES)
    try:
        out = build_archive(args.results, args.config, args.out, logs=args.logs, report=args.report,
                            workflow_dir=args.workflow_dir, snakefile=args.snakefile,
                            excludes=excludes, name=args.name, license_id=args.license_id)
    except ArchiveError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # an unreadable provenance record names its file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problems = verify_archive(out)  # re-read what was written: a bad archive must not pass silently
    for problem in problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(out)
    return 1 if problems else 0
