"""Command ``archive``: pack a finished run into one Workflow Run RO-Crate tarball.

Researchers hand a run to a reviewer as an archive, so that anyone can later see *which workflow,
config, code and inputs* produced each number, and check it (``verify-archive``,
:mod:`parallel_scaling.archive.verify`). The archive is a ``.tar.gz`` with ``ro-crate-metadata.json``
and a ``README.md`` at its root and every packed file under its path in the run's working directory.

``snakemake archive`` passes ``--snakemake-dag`` with the config exactly as Snakemake merged and
validated it (``--run-config``), the config files in their order and the ``--config`` overrides.
This module wires the stage together: Snakemake's report and DAG of the run (:mod:`.dag`), the
files to pack (:mod:`.members`), the tarball, the crate (:mod:`.crate`) and the README, then the
same check a reviewer runs. Without ``--snakemake-dag`` the whole results directory is packed.
Who ran the study and the license come from ``--agent``/``--agent-id`` (else the login name
recorded with each job), ``--organization``/``--organization-id`` and ``--license`` (SPDX).

Model weights are archived by reference unless ``--weights copy`` (config ``archive.weights``):
hashed where they lie and listed in the crate with their path, size and sha256, their bytes left
out (:mod:`.members`); ``verify-archive --run-dir`` checks them wherever the run's files are.
Before anything is written, the archive prints how much it will pack and how much it references.

The tarball is written here, not by the ``rocrate`` library, which writes a directory or a zip: the
archive is a ``.tar.gz`` whose files are each read once, hashed while packed (the crate's
``sha256``, which rocrate does not compute), with anonymous headers, under a temporary name renamed
at the end so that an interrupted run never leaves a truncated archive that looks complete.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

from rocrate.model.metadata import BASENAME as METADATA_NAME

from parallel_scaling.archive import ArchiveError
from parallel_scaling.archive.crate import Attribution, CrateBuilder, Packed
from parallel_scaling.archive.records import now, workflow_version
from parallel_scaling.archive.dag import DagJob, build_report, jobs_by_log, plan_run
from parallel_scaling.archive.members import (
    DEFAULT_EXCLUDES,
    OVERRIDES_NAME,
    RUN_CONFIG_NAME,
    WEIGHT_MODES,
    Member,
    Selection,
    collect_members,
    config_members,
    crate_name,
    find_snakefile,
    is_weights,
    rule_and_outputs,
    warn,
)
from parallel_scaling.archive.verify import render, verify
from parallel_scaling.jobs.integrity import sha256_file

README_NAME = "README.md"
#: License of the archived results unless the study says otherwise (config archive.license): the
#: RO-Crate specification requires one, and CC-BY is the usual choice for shared research data.
DEFAULT_LICENSE = "CC-BY-4.0"


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


def _reference_file(member: Member) -> Packed:
    """A referenced member, hashed where it lies (its bytes stay out of the tarball)."""
    size = member.source.stat().st_size
    digest = sha256_file(member.source)
    if member.source.stat().st_size != size:
        raise ArchiveError(f"{member.source} changed size while being hashed")
    return Packed(member, digest, size)


def readme_text(title: str, selection: Selection, dag: list[DagJob] | None, excludes: tuple[str, ...],
                attribution: Attribution, version: str | None = None) -> str:
    """The archive's README.md: what it holds, what was left out, and how to check it."""
    members = selection.members
    count = Counter(m.role for m in members if not m.referenced)
    referenced = [m for m in members if m.referenced]
    configs = [m for m in members if m.role == "config"]
    lines = [
        f"# {title}: an archived run of the parallel-scaling workflow", "",
        "This archive is an RO-Crate (`ro-crate-metadata.json`) conforming to the Workflow Run Crate, "
        "Provenance Run Crate and Process Run Crate 0.5 profiles and Workflow RO-Crate 1.0. It describes "
        "the workflow (its Snakemake rules as steps), every job as an action with its agent, times, "
        "inputs, outputs and software, and the config of the run.", "",
        *([f"Workflow version: {version} (the release of parallel-scaling whose CHANGELOG.md entry says "
           "what it holds; after `+git.`, the commit of the code that ran).", ""] if version else []),
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
    if referenced:
        size = sum(m.source.stat().st_size for m in referenced)
        lines.append(f"* Listed but **not included**: {len(referenced)} files of model weights "
                     f"({_gb(size)}), each by its path relative to the run's working directory, its size "
                     "and its sha256 (in the crate: `File` entities with a `#` id and `localPath`, parts "
                     "of `#model-weights`). Their checkpoints' other files are included. The archive was "
                     "made with `archive.weights: reference`; `copy` packs the weights too.")
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
        "python -m parallel_scaling verify-archive <this .tar.gz> --run-dir <the run's working directory>",
        "```", "",
        "It checks every file against its sha256 in the crate, each job's recorded inputs against the "
        "archived files (a checkpoint's initial model and mixture must be the archived ones), and the "
        "crate against each declared profile with roc-validator 0.13.0, offline; it prints `OK` or the "
        "problems. Referenced model weights are checked (size and sha256) where they lie under "
        "`--run-dir` (default: the current directory); those not there are reported as not checked "
        "(`--require-weights` makes that a failure). "
        "roc-validator alone, on the unpacked archive (it fetches the JSON-LD contexts):", "",
        "```bash",
        "pip install roc-validator==0.13.0",
        "rocrate-validator validate -p provenance-run-crate-0.5 --requirement-severity RECOMMENDED <unpacked dir>",
        "```", ""]
    return "\n".join(lines)


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e7 else f"{n / 1e6:.2f} MB"


def size_estimate(members: list[Member], free_bytes: int | None) -> tuple[str, str | None]:
    """Before anything is written: the line saying how much the archive will pack (its files'
    bytes; gzip barely shrinks model weights), of that how much is model weights, and how much it
    references instead of packing; and an error when the destination's free space (``free_bytes``)
    cannot hold what is packed, or None."""
    sizes = [(m, m.source.stat().st_size) for m in members if not m.referenced]
    total = sum(n for _, n in sizes)
    weights = [n for m, n in sizes if is_weights(m.name)]
    referenced = [m.source.stat().st_size for m in members if m.referenced]
    line = (f"about to pack {len(sizes)} files, {_gb(total)} before compression, of which "
            f"{_gb(sum(weights))} model weights in {len(weights)} files; "
            + (f"{len(referenced)} files of model weights ({_gb(sum(referenced))}) referenced by path, "
               "size and sha256, not packed (archive.weights: copy packs them)" if referenced else
               "no model weights referenced"))
    if free_bytes is not None and total > free_bytes:
        return line, (f"the archive needs up to {_gb(total)} but its destination has {_gb(free_bytes)} free; "
                      "free space or archive elsewhere")
    return line, None


def build_archive(results: Path, config: Path | list[Path], out: Path, logs: Path | None = None,
                  report: Path | None = None, workflow_dir: Path = Path("."),
                  snakefile: Path | None = None, excludes: tuple[str, ...] = DEFAULT_EXCLUDES,
                  name: str | None = None, license_id: str | None = None,
                  run_config: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
                  snakemake_dag: bool = False, attribution: Attribution | None = None,
                  weights: str = "reference") -> Path:
    """Pack a run into ``out`` (a .tar.gz Workflow Run RO-Crate); returns ``out``.

    ``weights``: ``"reference"`` lists model weights in the crate by path, size and sha256 without
    packing them; ``"copy"`` packs them (:mod:`.members`).

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
                                    skip=(out, tmp), dag=dag, weights=weights)
        if selection.stale:
            more = " ..." if len(selection.stale) > 5 else ""
            warn(f"left out {len(selection.stale)} files under {results} that no job of this run wrote "
                 f"or read (from an earlier configuration?): {', '.join(selection.stale[:5])}{more}")
        title = name or f"parallel-scaling run archived {now()[:10]}"
        readme = Path(scratch) / README_NAME
        readme.write_text(readme_text(title, selection, dag, tuple(excludes), attribution,
                                          workflow_version([r for _, r in selection.records])),
                          encoding="utf-8")
        members = [*selection.members, Member(readme, README_NAME, "readme")]
        line, problem = size_estimate(members, shutil.disk_usage(out.parent).free)
        warn(line)
        if problem:
            raise ArchiveError(problem)
        dag_jobs = jobs_by_log(dag, workflow_dir)
        logs_root = crate_name(Path(logs), workflow_dir.resolve(), "logs") if logs else "logs"
        try:
            with tarfile.open(tmp, "w:gz") as tar:
                packed = [_add_file(tar, m) for m in members if not m.referenced]
                referenced = [_reference_file(m) for m in members if m.referenced]
                recs = [r for _, r in selection.records]
                builder = CrateBuilder(packed, title, attribution, recs, referenced)
                workflow = builder.add_files(recs)
                results_name = crate_name(Path(results), workflow_dir.resolve(), "results")
                builder.add_results_dataset(results_name)
                by_member = {p.member: p for p in packed}
                jobs, controls = builder.add_jobs(
                    [(by_member[m], r, *rule_and_outputs(m, dag_jobs, workflow_dir, logs_root))
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
    parser.add_argument("--weights", choices=WEIGHT_MODES, default="reference",
                        help="model weights of the results: 'reference' lists each in the crate by path "
                             "relative to --workflow-dir, size and sha256 without packing it (default); "
                             "'copy' packs them")
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
                            snakemake_dag=args.snakemake_dag, attribution=attribution,
                            weights=args.weights)
    except ValueError as exc:  # ArchiveError, or an unreadable provenance record naming its file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # re-read what was written: a bad archive must not pass silently
    result = verify(out, profiles=None if args.no_profile_check else "inherited")
    print(render(result), file=sys.stderr)
    print(out)
    return 1 if result.problems else 0


