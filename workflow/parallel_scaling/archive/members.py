"""Which files of a run go into its archive, under which names, and what each one is.

Why a module of its own: choosing the files decides what a reviewer can check, independently of
how they are described (:mod:`.crate`) or packed (:mod:`.pack`). Every packed file lies under its
path relative to the run's working directory (``results/...``, ``logs/...``, ``workflow/...``, the
config files); a path outside it falls back to ``results/``, ``logs/``, ``config/``, ``report/`` or
``workflow/`` plus its path below the given location. The config goes in three forms: the files
given to Snakemake in their order, the ``--config`` overrides and the merged config.

**Only the run's files.** With the run's DAG (:mod:`.dag`), only files the run's jobs wrote or read
are packed from the results directory: the DAG's outputs, and the outputs and inputs each job's
provenance record lists there (a checkpoint directory holds more than its declared marker file).
Files an earlier configuration left in ``results/`` (e.g. after K was lowered) are left out and
listed as stale. Without the DAG the whole results directory is packed.

**What is left out, on purpose.** Files whose name marks a secret or, up to 1 MiB, whose content
holds one (the rules of :mod:`parallel_scaling.jobs.redact`); a config file that looks secret is
an error, as the archive would be incomplete. Under the results directory, files matching the
exclude globs (``**/`` also matches at the top); by default the optimizer and scheduler state of
checkpoints (:data:`DEFAULT_EXCLUDES`): they only serve to resume training, are the largest files of
a checkpoint and never feed a reported number. (The checkpoints under ``results/`` hold none: the
resumable state lives in the job's work directory, outside the results, and is never archived.)

**Model weights by reference.** Weights *are* results, but at 7-8B parameters a study's 24
checkpoints weigh hundreds of GB. With ``weights="reference"`` (the default; config
``archive.weights``) a result file that :func:`is_weights` names is a member with ``referenced``
set: it is hashed where it lies and described in the crate by its path relative to the run's
working directory, size and sha256, but its bytes are not packed. The small files of a checkpoint
(config, tokenizer, generation config, training args, curves, settings) are always packed.
``weights="copy"`` packs the weights like every other file.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from parallel_scaling.archive import ArchiveError
from parallel_scaling.archive.dag import DagJob, in_run
from parallel_scaling.jobs.provenance import RECORD_SUFFIX, load_record
from parallel_scaling.jobs.redact import contains_secret, is_secret_name

DEFAULT_EXCLUDES = ("**/optimizer.pt", "**/optimizer.bin", "**/scheduler.pt")
#: File names of model weights (Hugging Face's names, shards included: ``model-00001-of-00004.
#: safetensors``, ``pytorch_model-00001-of-00002.bin``), archived by reference unless copied. By name,
#: not by suffix alone: a checkpoint's ``training_args.bin`` is a small pickle of settings, not weights.
WEIGHT_GLOBS = ("*.safetensors", "*.gguf", "pytorch_model*.bin", "adapter_model*.bin", "model*.bin",
                "consolidated*.pth", "consolidated*.pt")
#: What ``weights`` of :func:`collect_members` (config ``archive.weights``) may be.
WEIGHT_MODES = ("reference", "copy")
SNAKEFILE_CANDIDATES = ("workflow/Snakefile", "Snakefile", "workflow/snakefile", "snakefile")
#: Next to the Snakefile: the workflow's code and how to install it, packed as its source.
SOURCE_DIRS = ("workflow", "rules", "envs", "profiles", "slurm")
SOURCE_FILES = ("pyproject.toml",)
SCAN_LIMIT = 1 << 20  # bytes: smaller files are scanned for secrets before packing
RUN_CONFIG_NAME = "config/run-config.yaml"
OVERRIDES_NAME = "config/overrides.yaml"
_SKIP_DIRS = frozenset({"__pycache__", ".git", ".snakemake", ".venv", ".pytest_cache"})
#: What a packed file is for the run, by its role (a member may say more).
ROLE_DESCRIPTIONS = {
    "source": "Source file of the workflow (rules, package, resources, environments).",
    "config": "Workflow configuration of the run.",
    "result": "Result file of the run.",
    "log": "Log written during the run.",
    "provenance": "Per-job provenance record (parallel_scaling.jobs.provenance).",
    "report": "Snakemake report of the run, built from the run's config.",
    "readme": "What this archive holds and how to check it.",
}
#: Media types by suffix, fixed here rather than read from the machine's mime.types, so that an
#: archive describes its files the same way wherever it is built.
MEDIA_TYPES = {
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


@dataclass(frozen=True)
class Member:
    """A file to pack: where it is, where it goes in the crate, and what it is for the run."""

    source: Path
    name: str  # posix path inside the archive (unquoted crate id)
    role: str  # workflow | source | config | result | log | provenance | report | readme
    description: str | None = None
    #: model weights listed in the crate by path, size and sha256, their bytes not packed
    referenced: bool = False


@dataclass
class Selection:
    """What :func:`collect_members` chose: the members, the jobs' records, and what it left out."""

    members: list[Member]
    records: list[tuple[Member, dict[str, Any]]]
    stale: list[str] = field(default_factory=list)  # results files no job of the run wrote or read


def warn(message: str) -> None:
    """A note for the archive's log (stderr): what was left out, and why."""
    print(f"archive: {message}", file=sys.stderr)


def media_type(name: str) -> str:
    """The encodingFormat of a packed file (every File gets one; unknown bytes are octet-stream)."""
    base = PurePosixPath(name).name
    if base.lower() in {"snakefile", "makefile"}:
        return "text/plain"
    suffix = PurePosixPath(base).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(base)[0] or "application/octet-stream"


def is_weights(name: str) -> bool:
    """True for a file of model weights (:data:`WEIGHT_GLOBS`, matched on the file's own name)."""
    base = PurePosixPath(name).name
    return any(fnmatch.fnmatchcase(base, pattern) for pattern in WEIGHT_GLOBS)


def describe(member: Member) -> str:
    """What a packed file is for the run: its own description, else its role's."""
    return member.description or ROLE_DESCRIPTIONS[member.role]


# --------------------------------------------------------------------------------------------
# paths


def _secret_keys(path: Path) -> str:
    """`` at key(s) a.b, c`` for a YAML/JSON config holding secrets (never the values), else ''."""
    import yaml

    from parallel_scaling.jobs.redact import find_secrets

    try:
        keys = [key for key, _ in find_secrets(yaml.safe_load(path.read_text(encoding="utf-8")))]
    except (OSError, ValueError, yaml.YAMLError):
        return ""
    return f" at key(s) {', '.join(keys)}" if keys else ""


def has_secret_content(path: Path) -> bool:
    """True when a small file (<= :data:`SCAN_LIMIT`) holds a secret value."""
    try:
        if path.stat().st_size > SCAN_LIMIT:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return contains_secret(data.decode("utf-8", errors="ignore"))


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


def expand(paths: list[Path]) -> list[Path]:
    """Files of each path (a directory's files, sorted), existing ones only."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += _walk(path)
        elif path.is_file():
            out.append(path)
    return out


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
# choosing what to pack


def _record_paths(rec: dict[str, Any], key: str) -> list[Path]:
    cwd = rec.get("cwd")
    out = []
    for entry in rec.get(key) or []:
        p = Path(str(entry.get("path", "")))
        out.append(p if p.is_absolute() or not cwd else Path(cwd) / p)
    return out


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


def collect_members(results: Path, logs: Path | None, configs: list[Member], workflow_dir: Path,
                    snakefile: Path, report: Path | None, excludes: tuple[str, ...],
                    skip: tuple[Path, ...] = (), dag: list[DagJob] | None = None,
                    weights: str = "reference") -> Selection:
    """Every file to pack, with secrets and excluded checkpoint state left out.

    ``configs`` are the config members (files given to Snakemake, overrides, merged config). With
    ``dag``, logs are the DAG's log files and results are what its jobs wrote or read (see the
    module docstring); without it, the whole logs and results directories. With ``weights=
    "reference"``, results that are model weights are members with ``referenced`` set (see the
    module docstring). Raises ArchiveError when a required path is missing, a config looks secret,
    two different files would land at the same place in the archive, or ``weights`` is unknown.
    """
    if weights not in WEIGHT_MODES:
        raise ArchiveError(f"weights must be one of {', '.join(WEIGHT_MODES)}, not {weights!r} "
                           "(config archive.weights, option --weights)")
    if not results.is_dir():
        raise ArchiveError(f"results directory {results} does not exist (nothing to archive)")
    if not configs:
        raise ArchiveError("no config file given (--config)")
    for member in configs:
        if not member.source.is_file():
            raise ArchiveError(f"config file {member.source} does not exist")
        if is_secret_name(member.source.name) or has_secret_content(member.source):
            raise ArchiveError(f"config {member.name} holds a secret{_secret_keys(member.source)}; remove it "
                               "from the config and rerun")
    if logs is not None and not logs.is_dir():
        raise ArchiveError(f"logs directory {logs} does not exist")
    if report is not None and not report.is_file():
        raise ArchiveError(f"report {report} does not exist")
    base = workflow_dir.resolve()
    members: list[Member] = []
    taken: dict[str, Path] = {}
    # a set, not a scan of members: a study of 10,000 jobs packs some 200,000 files, and a scan per
    # file made the selection quadratic; and each path resolved once (resolving costs an lstat per
    # component, and was done up to ten times per file) (bench/large_steps.py, docs/performance.md)
    packed: set[Path] = set()
    resolved: dict[Path, Path] = {}

    def real(path: Path) -> Path:
        hit = resolved.get(path)
        if hit is None:
            hit = resolved[path] = path.resolve()
            resolved[hit] = hit
        return hit

    def name_of(path: Path, fallback: str) -> str:  # crate_name, with the cache
        try:
            return real(path).relative_to(base).as_posix()
        except ValueError:
            return fallback

    skipped = {real(p) for p in skip}
    results_real = real(results)
    logs_real = real(logs) if logs is not None else None
    report_real = real(report) if report is not None else None

    def add(path: Path, name: str, role: str, description: str | None = None, referenced: bool = False) -> None:
        resolved_path = real(path)
        if resolved_path in skipped or resolved_path in packed:
            return
        if name in taken and taken[name] != resolved_path:
            raise ArchiveError(f"{path} and {taken[name]} would both be archived as {name}")
        taken[name] = resolved_path
        packed.add(resolved_path)
        members.append(Member(resolved_path, name, role, description, referenced))

    def safe(path: Path) -> bool:
        if is_secret_name(path.name) or has_secret_content(path):
            warn(f"left out {path}: it looks like a secret")
            return False
        return True

    add(snakefile, name_of(snakefile, f"workflow/{snakefile.name}"), "workflow")
    for path in source_files(snakefile):
        if safe(path):
            fallback = f"workflow/{path.relative_to(snakefile.parent).as_posix()}"
            add(path, name_of(path, fallback), "source")
    for member in configs:
        add(member.source, member.name, "config", member.description)
    if report is not None:
        add(report, name_of(report, f"report/{report.name}"), "report")

    # logs and provenance records
    if dag is None:
        log_files = _walk(logs) if logs is not None else []
    else:
        log_files = expand([in_run(p, workflow_dir) for job in dag for p in job.logs])
    for path in log_files:
        if not safe(path):
            continue
        inside_logs = logs_real is not None and real(path).is_relative_to(logs_real)
        rel = real(path).relative_to(logs_real).as_posix() if inside_logs else path.name
        role = "provenance" if path.name.endswith(RECORD_SUFFIX) else "log"
        add(path, name_of(path, f"logs/{rel}"), role)
    records = [(m, load_record(m.source)) for m in members if m.role == "provenance"]

    # results
    all_results = _walk(results)
    if dag is None:
        chosen = all_results
    else:
        wanted = {real(p) for p in expand([in_run(o, workflow_dir) for job in dag for o in job.outputs])}
        for _, rec in records:
            for path in _record_paths(rec, "outputs") + _record_paths(rec, "inputs"):
                if path.is_file() and real(path).is_relative_to(results_real):
                    wanted.add(real(path))
        chosen = sorted(wanted)
    stale: list[str] = []
    chosen_set = {real(p) for p in chosen}
    for path in all_results:
        if real(path) not in chosen_set and real(path) != report_real:
            rel = path.relative_to(results).as_posix()
            if not matches_any(rel, excludes) and not is_secret_name(path.name):
                stale.append(rel)
    for path in chosen:
        if not safe(path):
            continue
        if real(path).is_relative_to(results_real):
            rel = real(path).relative_to(results_real).as_posix()
            if matches_any(rel, excludes):
                continue
            fallback = f"results/{rel}"
        else:
            fallback = f"results/{path.name}"
        name = name_of(path, fallback)
        add(path, name, "result", referenced=weights == "reference" and is_weights(name))
    return Selection(members, records, stale)


# --------------------------------------------------------------------------------------------
# the job of a provenance record


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
    return parts[-1][: -len(RECORD_SUFFIX)] if parts and parts[-1].endswith(RECORD_SUFFIX) else "job"


def rule_and_outputs(member: Member, dag_jobs: dict[Path, DagJob], workflow_dir: Path, logs_root: str) -> \
        tuple[str, list[Path]]:
    """The rule of a record's job and its declared outputs: from the DAG, else from the record's path."""
    job = dag_jobs.get(member.source)
    if job is None:
        return record_rule(member, logs_root), []
    return job.rule, [in_run(o, workflow_dir) for o in job.outputs]
