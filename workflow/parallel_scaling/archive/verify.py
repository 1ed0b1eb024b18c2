"""Command ``verify-archive``: what a reviewer runs on an archive tarball they received.

``python -m parallel_scaling verify-archive archive/<study>.tar.gz`` re-checks, from the tarball
alone, the three things an archive made by ``archive`` (:mod:`parallel_scaling.archive.pack`) claims:

1. **Files.** Every file in the tarball is described in ``ro-crate-metadata.json``, every described
   file is in the tarball, and each one's bytes match the crate's ``sha256`` and ``contentSize``.
2. **Provenance chain.** Each job's provenance record (``*.prov.json``) lists the files the job read,
   hashed before it ran. Every recorded input that lies inside the archived results must be archived
   with that same hash: a checkpoint whose recorded initial-model files (or mixture) differ from the
   ones in the archive was not trained from them, and the check names the job, the file and both
   hashes. Inputs outside the run directory (pretrained models, datasets) are not part of the
   archive and are not checked. A recorded input archived by reference (model weights) must have
   the sha256 the crate lists for it.
3. **Profiles.** The crate passes an independent validator, roc-validator, for every profile it
   declares in ``conformsTo``, with no REQUIRED issue, offline (:mod:`parallel_scaling.archive.
   profiles`). Without roc-validator installed this step is skipped with a clear note
   (``pip install roc-validator==0.13.0``); the test suite requires it.

**Model weights archived by reference** (a ``File`` with a ``#`` id and ``localPath``, see
:mod:`parallel_scaling.archive.crate`) are not in the tarball. They are checked where the run's
files are: ``--run-dir DIR`` (default: the current directory, where ``snakemake archive`` ran)
holds each at its ``localPath``; a file there whose size or sha256 differs from the crate's fails,
named. Files not there are reported as not checked, which fails only with ``--require-weights``.

Steps 1 and 2 are ours: the validator checks that each described file exists, not its bytes, and
knows nothing of provenance records. The crate is read with the ``rocrate`` library; each file is
hashed straight from the tarball, so a paper-scale archive with gigabytes of checkpoints is never
unpacked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from rocrate.model import Entity
from rocrate.rocrate import ROCrate
from rocrate.utils import as_list

from parallel_scaling.archive.chain import check_chain, results_roots
from parallel_scaling.archive.profiles import (
    CONTEXTS_DIR,
    KNOWN_RECOMMENDED,
    METADATA_NAME,
    PROFILES,
    PROVENANCE_PROFILE,
    VALIDATOR_DIST,
    VALIDATOR_PIN,
    ProfileIssue,
    claimed_profiles,
    inheritance,
    placeholder_crate,
    safe_name,
    validate_crate,
    validator_version,
)
from parallel_scaling.jobs.integrity import sha256_file
from parallel_scaling.jobs.provenance import RECORD_SUFFIX

_CHUNK = 1 << 20


def _refs(entity: Entity, prop: str) -> list[Any]:
    """The values of a property as a list: entities, or the ids and literals that are none."""
    value = entity.get(prop)
    return [] if value is None else as_list(value)


def _id(value: Any) -> Any:
    return value.id if isinstance(value, Entity) else value


def declared_profiles(crate: ROCrate) -> list[str]:
    """The profile URIs the crate's root dataset declares in ``conformsTo``."""
    return [_id(ref) for ref in _refs(crate.root_dataset, "conformsTo")]


@dataclass(frozen=True)
class Reference:
    """A file the crate lists by reference: its path relative to the run's working directory
    (``localPath``), its size and sha256."""

    name: str
    size: int | None
    sha256: str | None


@dataclass
class Verification:
    """What :func:`verify` found; ``problems`` empty means the archive checks out."""

    path: Path
    files: int = 0
    file_problems: int = 0
    records: int = 0
    chain_inputs: int = 0
    problems: list[str] = field(default_factory=list)
    #: validator profile id -> its issues (REQUIRED and RECOMMENDED); None when not run
    profiles: dict[str, list[ProfileIssue]] | None = None
    #: declared profile -> the validated one whose run included its checks (mode "inherited")
    covered: dict[str, str] = field(default_factory=dict)
    validator: str | None = None  # "roc-validator 0.13.0", or why it did not run
    missing_contexts: list[str] = field(default_factory=list)
    #: files archived by reference (model weights), and what became of their check
    referenced: list[Reference] = field(default_factory=list)
    run_dir: Path | None = None  # where referenced files were looked for; None: not looked for
    weights_checked: int = 0  # referenced files found under run_dir and compared
    weights_absent: list[str] = field(default_factory=list)  # referenced files not under run_dir

    def recommended(self) -> list[ProfileIssue]:
        return [i for issues in (self.profiles or {}).values() for i in issues if i.severity == "RECOMMENDED"]

    def unexplained(self) -> list[ProfileIssue]:
        """RECOMMENDED issues that :data:`KNOWN_RECOMMENDED` does not explain."""
        return [i for i in self.recommended() if i.check not in KNOWN_RECOMMENDED]


# --------------------------------------------------------------------------------------------
# reading the tarball


def _hash_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> str:
    digest = hashlib.sha256()
    handle = tar.extractfile(info)
    assert handle is not None
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _load_crate(metadata: bytes) -> ROCrate:
    """The crate's metadata as a ``rocrate`` crate (read from the JSON itself, nothing unpacked)."""
    data = json.loads(metadata)
    if not isinstance(data, dict) or not data:  # rocrate would make a new, empty crate of {}
        raise ValueError("not a JSON-LD object with @context and @graph")
    return ROCrate(data)


# --------------------------------------------------------------------------------------------
# 1. structure and files


def check_structure(crate: ROCrate) -> list[str]:
    """Profile essentials the validator does not spell out: declared profiles, a main workflow in
    a language, a run action of it, and action links that resolve to entities of the crate."""
    problems: list[str] = []
    declared = set(declared_profiles(crate))
    main = crate.mainEntity
    tool_runs = [a for a in crate.get_by_type("CreateAction")
                 if not isinstance(main, Entity) or _id(a.get("instrument")) != main.id]
    for profile in PROFILES:
        if profile not in declared and (tool_runs or profile != PROVENANCE_PROFILE):
            problems.append(f"root dataset does not declare conformsTo {profile}")
    if not isinstance(main, Entity):
        problems.append("root dataset has no mainEntity")
    else:
        if "ComputationalWorkflow" not in as_list(main.type):
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
        for prop in ("instrument", "object", "result", "agent"):
            for ref in _refs(action, prop):
                if isinstance(ref, str) or (isinstance(ref, dict) and crate.get(ref.get("@id", "")) is None):
                    problems.append(f"action {action.id}: {prop} {ref!r} is not an entity of the crate")
    return problems


def check_files(tar: tarfile.TarFile, infos: dict[str, tarfile.TarInfo], crate: ROCrate) -> \
        tuple[list[str], dict[str, str]]:
    """Every file described and present, with its recorded sha256 and size; returns the problems
    and the sha256 of each archived file (read once here, reused by the chain check)."""
    problems: list[str] = []
    hashes: dict[str, str] = {}
    described: set[str] = {METADATA_NAME}
    for entity in crate.data_entities:
        if "File" not in as_list(entity.type) or entity.id.startswith(("http://", "https://", "#")):
            continue
        name = unquote(entity.id)
        described.add(name)
        info = infos.get(name)
        if info is None or not info.isfile():
            problems.append(f"{name} is described in the crate but missing from the archive")
            continue
        hashes[name] = _hash_member(tar, info)
        expected = entity.get("sha256")
        if not expected:
            problems.append(f"{name} has no sha256 in the crate")
        elif hashes[name] != expected:
            problems.append(f"{name} does not match its sha256 (checksum mismatch)")
        size = entity.get("contentSize")
        if size is not None and str(size) != str(info.size):
            problems.append(f"{name} is {info.size} bytes, the crate says {size}")
    for name, info in infos.items():
        if info.isfile() and name not in described:
            problems.append(f"{name} is in the archive but not described in the crate")
    return problems, hashes


def referenced_files(crate: ROCrate) -> tuple[list[Reference], list[str]]:
    """The files listed by reference (``File`` entities with a local ``#`` id and a ``localPath``),
    and problems with their descriptions (no sha256, a path leaving the run directory)."""
    refs: list[Reference] = []
    problems: list[str] = []
    for entity in crate.get_entities():
        if not entity.id.startswith("#") or "File" not in as_list(entity.type) or not entity.get("localPath"):
            continue
        name = str(entity["localPath"])
        if not safe_name(name):
            problems.append(f"{entity.id}: localPath {name!r} leaves the run directory")
            continue
        if not entity.get("sha256"):
            problems.append(f"{name} is referenced without a sha256 in the crate")
        size = entity.get("contentSize")
        refs.append(Reference(name, int(size) if str(size).isdigit() else None, entity.get("sha256")))
    return refs, problems


def check_weights(refs: list[Reference], run_dir: Path) -> tuple[list[str], int, list[str]]:
    """Each referenced file present under ``run_dir`` against its size and sha256 in the crate.

    Returns the problems, how many were compared, and the names of those not under ``run_dir``.
    The size is compared first, so a truncated or replaced checkpoint fails without being read.
    """
    problems: list[str] = []
    absent: list[str] = []
    checked = 0
    for ref in refs:
        path = run_dir / ref.name
        if not path.is_file():
            absent.append(ref.name)
            continue
        checked += 1
        size = path.stat().st_size
        if ref.size is not None and size != ref.size:
            problems.append(f"{ref.name} under {run_dir} is {size} bytes, the crate says {ref.size}: "
                            "not the referenced model weights")
        elif ref.sha256 and sha256_file(path) != ref.sha256:
            problems.append(f"{ref.name} under {run_dir} does not match its sha256 in the crate (checksum "
                            "mismatch): not the referenced model weights")
    return problems, checked, absent


# --------------------------------------------------------------------------------------------
# entry points


def verify(path: str | os.PathLike[str], profiles: str | None = "each", contexts_dir: Path = CONTEXTS_DIR,
           run_dir: str | os.PathLike[str] | None = None, require_weights: bool = False) -> Verification:
    """Check an archive as a reviewer would: files, provenance chain, and the declared profiles.

    Model weights archived by reference are checked under ``run_dir`` (the run's working
    directory) when they are there; None checks none of them (``archive`` itself, which has just
    hashed them). ``require_weights``: a referenced file not under ``run_dir`` is a problem.

    ``profiles``: ``"each"`` runs the validator once per declared profile; ``"inherited"`` only for
    the declared profiles no other declared profile inherits (the validator runs an heir's inherited
    checks too; a quarter of the time for this pipeline's crates); None skips the validator. Never
    raises for a bad archive; it lists the problems.
    """
    if profiles not in ("each", "inherited", None):
        raise ValueError(f"profiles must be 'each', 'inherited' or None, not {profiles!r}")
    path = Path(path)
    out = Verification(path, run_dir=Path(run_dir).resolve() if run_dir is not None else None)
    try:
        tar = tarfile.open(path, "r:*")
    except (OSError, tarfile.TarError) as exc:
        out.problems.append(f"not a readable tar archive ({exc})")
        return out
    with tar:
        infos = {i.name: i for i in tar.getmembers()}
        out.problems += [f"unsafe member name {n!r}" for n in infos if not safe_name(n)]
        if METADATA_NAME not in infos:
            out.problems.append(f"no {METADATA_NAME} at the root of the archive")
            return out
        handle = tar.extractfile(infos[METADATA_NAME])
        assert handle is not None
        metadata = handle.read()
        try:
            crate = _load_crate(metadata)
        except (ValueError, KeyError, TypeError) as exc:
            out.problems.append(f"{METADATA_NAME} is not a valid RO-Crate ({exc})")
            return out
        out.problems += check_structure(crate)
        file_problems, hashes = check_files(tar, infos, crate)
        out.problems += file_problems
        out.files, out.file_problems = len(hashes), len(file_problems)
        records: dict[str, dict[str, Any]] = {}
        for name, info in infos.items():
            if name.endswith(RECORD_SUFFIX) and info.isfile():
                try:
                    data = json.loads(tar.extractfile(info).read())  # type: ignore[union-attr]
                except ValueError as exc:
                    out.problems.append(f"{name}: not a readable provenance record ({exc})")
                    continue
                if isinstance(data, dict):
                    records[name] = data
        out.referenced, ref_problems = referenced_files(crate)
        out.problems += ref_problems
        if out.run_dir is not None:
            weight_problems, out.weights_checked, out.weights_absent = check_weights(out.referenced, out.run_dir)
            out.problems += weight_problems
            if require_weights and out.weights_absent:
                more = " ..." if len(out.weights_absent) > 3 else ""
                out.problems.append(f"{len(out.weights_absent)} referenced model weight files are not under "
                                    f"{out.run_dir} (--require-weights): {', '.join(out.weights_absent[:3])}{more}")
        elif require_weights and out.referenced:
            out.problems.append("referenced model weights required but no run directory given")
        chain_problems, out.chain_inputs = check_chain(
            records, hashes, results_roots(crate), {r.name: str(r.sha256) for r in out.referenced})
        out.problems += chain_problems
        out.records = len(records)
        if profiles:
            _validate_profiles(out, crate, infos, metadata, contexts_dir, each=profiles == "each")
    return out


def _validate_profiles(out: Verification, crate: ROCrate, infos: dict[str, tarfile.TarInfo],
                       metadata: bytes, contexts_dir: Path, each: bool) -> None:
    version = validator_version()
    if version is None:
        out.validator = (f"{VALIDATOR_DIST} is not installed: profile checks skipped "
                         f"(pip install {VALIDATOR_DIST}=={VALIDATOR_PIN})")
        return
    out.validator = f"{VALIDATOR_DIST} {version}"
    ids = claimed_profiles(declared_profiles(crate))
    if not each:
        out.covered = inheritance(ids)
        ids = [p for p in ids if p not in out.covered]
    with tempfile.TemporaryDirectory(prefix="verify_profiles_") as tmp:
        crate_dir = placeholder_crate(infos, metadata, Path(tmp) / "crate")
        out.profiles, out.missing_contexts = validate_crate(crate_dir, ids, contexts_dir)
    for url in out.missing_contexts:
        out.problems.append(f"the validator needed {url}, which is not shipped in {contexts_dir}: "
                            "the checks that use it did not run")
    for profile, issues in out.profiles.items():
        for issue in issues:
            if issue.severity == "REQUIRED":
                where = f" [{issue.entity}]" if issue.entity else ""
                out.problems.append(f"{profile}: REQUIRED {issue.check}: {issue.message}{where}")


def verify_archive(path: str | os.PathLike[str], profiles: str | None = "each",
                   run_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Problems with an archive (empty list: it checks out), each prefixed with the archive path."""
    result = verify(path, profiles=profiles, run_dir=run_dir)
    return [f"{result.path}: {p}" for p in result.problems]


def render(result: Verification) -> str:
    """The reviewer's report: one line per check, the validator's issues grouped by check."""
    lines = [f"{result.path}: {result.files} files, each described in the crate and matching its sha256"
             if not result.file_problems else
             f"{result.path}: {result.files} files read, {result.file_problems} problem(s) with them",
             f"provenance chain: {result.records} job records, {result.chain_inputs} recorded inputs "
             "inside the results compared with the archived files"]
    if result.referenced:
        lines.append(render_weights(result))
    if result.profiles is None:
        lines.append(f"profiles: {result.validator or 'not checked (--no-profiles)'}")
    else:
        lines.append(f"profiles ({result.validator}, offline, JSON-LD contexts from workflow/resources/"
                     f"{CONTEXTS_DIR.name}):")
        for profile, issues in result.profiles.items():
            counts = Counter(i.severity for i in issues)
            lines.append(f"  {profile}: {counts.get('REQUIRED', 0)} REQUIRED, "
                         f"{counts.get('RECOMMENDED', 0)} RECOMMENDED")
        for profile, heir in result.covered.items():
            lines.append(f"  {profile}: checked within {heir}, which inherits its checks")
        per_profile: dict[tuple[str, str], Counter[str]] = {}
        for issue in result.recommended():
            first = issue.message.splitlines()[0] if issue.message else ""
            per_profile.setdefault((issue.check, first), Counter())[issue.profile] += 1
        for (check, message), counts in sorted(per_profile.items()):
            why = " (known, see README)" if check in KNOWN_RECOMMENDED else ""
            lines.append(f"  RECOMMENDED {check} x{max(counts.values())}: {message}{why}")
    for problem in result.problems:
        lines.append(f"PROBLEM: {problem}")
    lines.append("OK" if not result.problems else f"FAILED: {len(result.problems)} problem(s)")
    return "\n".join(lines)


def _size(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e7 else f"{n / 1e6:.2f} MB"


def render_weights(result: Verification) -> str:
    """The report's line on the files archived by reference: how many, and which were checked."""
    refs = result.referenced
    line = (f"model weights: {len(refs)} files ({_size(sum(r.size or 0 for r in refs))}) referenced by path, "
            "size and sha256, not in the archive: ")
    if result.run_dir is None:
        return line + "not compared with files on disk here (verify-archive --run-dir DIR does)"
    line += f"{result.weights_checked} compared with the files under {result.run_dir}"
    if result.weights_absent:
        more = " ..." if len(result.weights_absent) > 3 else ""
        line += (f"; {len(result.weights_absent)} not there, NOT CHECKED ({', '.join(result.weights_absent[:3])}"
                 f"{more}; --run-dir names the run's working directory)")
    return line


def main(argv: list[str] | None = None) -> int:
    """``verify-archive``: check an archive tarball's files, provenance chain and profiles."""
    parser = argparse.ArgumentParser(
        prog="parallel_scaling verify-archive",
        description="Check an archive made by `snakemake archive`: every file against its sha256, each "
                    "job's recorded inputs against the archived files, and the RO-Crate profiles it "
                    "declares with roc-validator (offline).")
    parser.add_argument("archive", type=Path, help="the .tar.gz to check")
    parser.add_argument("--no-profiles", action="store_true", help="skip the roc-validator checks")
    parser.add_argument("--inherited", action="store_true",
                        help="validate only the declared profiles no other declared profile inherits "
                             "(their runs include the inherited checks): faster")
    parser.add_argument("--run-dir", type=Path, default=Path("."), metavar="DIR",
                        help="the run's working directory (where snakemake ran): model weights archived by "
                             "reference are checked there, at their recorded paths (default: the current "
                             "directory)")
    parser.add_argument("--require-weights", action="store_true",
                        help="fail when a model weight file archived by reference is not under --run-dir "
                             "(default: report it as not checked)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not args.archive.is_file():
        raise FileNotFoundError(f"archive {args.archive} does not exist")
    mode = None if args.no_profiles else ("inherited" if args.inherited else "each")
    result = verify(args.archive, profiles=mode, run_dir=args.run_dir, require_weights=args.require_weights)
    if args.json:
        payload = {"archive": str(result.path), "files": result.files, "records": result.records,
                   "chain_inputs": result.chain_inputs, "validator": result.validator,
                   "profiles": None if result.profiles is None else
                   {p: [vars(i) for i in issues] for p, issues in result.profiles.items()},
                   "covered": result.covered,
                   "weights": {"referenced": [vars(r) for r in result.referenced],
                               "run_dir": None if result.run_dir is None else str(result.run_dir),
                               "checked": result.weights_checked, "not_checked": result.weights_absent},
                   "problems": result.problems, "ok": not result.problems}
        print(json.dumps(payload, indent=2))
    else:
        print(render(result))
    return 0 if not result.problems else 1
