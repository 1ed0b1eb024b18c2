"""A controller started where a killed one left jobs running never starts a second copy of them.

Why: a Snakemake killed with SIGKILL (a dropped SSH session, the OOM killer, a controller job over
its time limit) leaves its jobs running: local job processes are re-parented to init, SLURM jobs
stay in the queue. Its lock is released by the next run (parallel_scaling.jobs.locks), and
Snakemake, which sees the outputs of those jobs marked incomplete, would start each of them again
beside the old copy: two writers of one checkpoint, one prediction journal, one output directory.

Before the first job of a run (``onstart`` in workflow/rules/common.smk, after Snakemake has taken
its lock, so no live Snakemake works here), :func:`find` looks for the jobs of this working
directory that still run:

* local: processes whose working directory is this one and whose command line runs the package
  (``python -m parallel_scaling <command>``, also under ``accelerate launch``) on this study's
  files (``logs/<study>/``, ``results/<study>/``: every rule's command names its provenance record
  there), and that no live Snakemake started (a job of another study's live run is left alone);
* SLURM: the user's queued or running jobs (``squeue --me``) whose working directory is this one
  and whose comment is the one the SLURM executor plugin gives its jobs (``rule_<rule>...``), but
  not those of a run of another study: each run records its study under its SLURM run id (the
  job name) in ``.snakemake/parallel-scaling-runs/`` (:func:`record_run`).

What then happens is the user's choice (:data:`POLICY_VARIABLE`, docs/campaign.md): ``wait`` (the
default) prints them, with the command that cancels them, and waits until none runs; ``refuse``
stops the run with the same list. Waiting makes the same command the whole recovery, as after any
other kill, and the jobs that were cut off rerun afterwards and resume from what the old copy saved.
Standard library only (imported while the Snakefile is parsed).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, TextIO

from parallel_scaling.jobs.locks import ancestors, is_snakemake

#: the environment variable that chooses what a run does about jobs a killed run left running
POLICY_VARIABLE = "PARALLEL_SCALING_RUNNING_JOBS"
POLICIES = ("wait", "refuse")
DEFAULT_POLICY = "wait"
#: seconds between two looks while waiting (squeue is asked no more often than this on a cluster);
#: :data:`POLL_VARIABLE` sets another interval
POLL_LOCAL_S = 5.0
POLL_SLURM_S = 30.0
POLL_VARIABLE = "PARALLEL_SCALING_RUNNING_JOBS_POLL_S"
#: what the SLURM executor plugin puts in the comment of every job it submits
SLURM_COMMENT_PREFIX = "rule_"
SQUEUE_FORMAT = "%i|%j|%T|%Z|%k"
#: where each run records the study of its SLURM run id (the job name of its jobs)
RUNS_DIR = Path(".snakemake") / "parallel-scaling-runs"


class RunningJobsError(RuntimeError):
    """Jobs of a killed run still run here and the policy is ``refuse``, or the policy is unknown."""


@dataclass(frozen=True)
class RunningJob:
    """A job a killed run left running: a local process (``kind`` "process", ``ident`` its pid) or
    a SLURM job (``kind`` "slurm", ``ident`` its job id); ``what`` says which job it is."""

    kind: str
    ident: str
    what: str


def policy(environ: dict[str, str] | None = None) -> str:
    """The chosen policy, ``wait`` when unset; an unknown value is an error naming the variable."""
    value = (os.environ if environ is None else environ).get(POLICY_VARIABLE, "").strip().lower()
    if not value:
        return DEFAULT_POLICY
    if value not in POLICIES:
        raise RunningJobsError(f"{POLICY_VARIABLE}={value!r}: must be one of {', '.join(POLICIES)}")
    return value


def poll_interval(slurm: bool, environ: dict[str, str] | None = None) -> float:
    """Seconds between two looks while waiting: :data:`POLL_VARIABLE`, else the default of the kind."""
    value = (os.environ if environ is None else environ).get(POLL_VARIABLE, "").strip()
    if not value:
        return POLL_SLURM_S if slurm else POLL_LOCAL_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise RunningJobsError(f"{POLL_VARIABLE}={value!r}: must be a number of seconds above 0")
    return seconds


# --- local processes ------------------------------------------------------------------------------


def runs_package(argv: list[str]) -> bool:
    """A command line that runs this package's command-line entry point (``-m parallel_scaling``),
    directly or under a launcher; not the warm start's server (``-m parallel_scaling.jobs.warm``)."""
    if not argv or not Path(argv[0]).name.startswith("python"):
        return False
    return any(a == "-m" and b == "parallel_scaling" for a, b in zip(argv, argv[1:]))


def _read_argv(proc: Path) -> list[str]:
    return [a for a in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0") if a]


def _slurm_job_of(proc: Path) -> str | None:
    try:
        for item in (proc / "environ").read_bytes().split(b"\0"):
            if item.startswith(b"SLURM_JOB_ID="):
                return item.split(b"=", 1)[1].decode(errors="replace")
    except OSError:
        pass
    return None


def of_study(argv: list[str], study: str | None) -> bool:
    """A job command on ``study``'s files (any study when None)."""
    if study is None:
        return True
    return any(a.startswith((f"logs/{study}/", f"results/{study}/")) for a in argv)


def _under_live_snakemake(pid: int) -> bool:
    """Whether a Snakemake that holds its directory (not a --nolock job's) is among the parents."""
    for parent in ancestors(pid) - {pid}:
        try:
            argv = _read_argv(Path(f"/proc/{parent}"))
        except OSError:
            continue
        if is_snakemake(argv) and "--nolock" not in argv:
            return True
    return False


def local_jobs(workdir: str | Path, skip_slurm_jobs: Iterable[str] = (), study: str | None = None) -> list[RunningJob]:
    """The processes of this machine that run a job of ``workdir`` left by a dead run: working
    directory ``workdir``, a command line that runs the package on ``study``'s files (any study
    when None), and no live Snakemake among their parents (not this process, nor its parents).
    A process inside one of ``skip_slurm_jobs`` (listed as that SLURM job already) is left out."""
    root = Path("/proc")
    if not root.is_dir():
        return []
    target = Path(workdir).resolve()
    mine = ancestors(os.getpid())
    skip = set(skip_slurm_jobs)
    found = []
    for entry in root.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = _read_argv(entry)
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue  # gone, or another user's: not a job this user could have started here
        if cwd != target or not runs_package(argv) or not of_study(argv, study):
            continue
        if (skip and _slurm_job_of(entry) in skip) or _under_live_snakemake(int(entry.name)):
            continue
        found.append(RunningJob("process", entry.name, shlex.join(argv)))
    return sorted(found, key=lambda j: int(j.ident))


# --- SLURM ----------------------------------------------------------------------------------------


def record_run(workdir: str | Path, run_id: str, study: str) -> None:
    """Record that the SLURM jobs named ``run_id`` (the plugin's run id) are ``study``'s, so that a
    run of another study in the same directory does not take them for its own."""
    folder = Path(workdir) / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / run_id).write_text(study + "\n", encoding="utf-8")


def recorded_study(workdir: str | Path, run_id: str) -> str | None:
    """The study :func:`record_run` recorded for ``run_id``; None when none was."""
    if not run_id or "/" in run_id or run_id.startswith("."):
        return None
    try:
        return (Path(workdir) / RUNS_DIR / run_id).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def parse_squeue(text: str, workdir: str | Path, study: str | None = None) -> list[RunningJob]:
    """The jobs of ``workdir`` in ``squeue --noheader --format`` :data:`SQUEUE_FORMAT` output (not
    those a run of another study than ``study`` recorded as its own)."""
    target = str(Path(workdir).resolve())
    found = []
    for line in text.splitlines():
        parts = line.strip().split("|", 4)
        if len(parts) != 5:
            continue
        job_id, name, state, where, comment = (p.strip() for p in parts)
        if not comment.startswith(SLURM_COMMENT_PREFIX) or where.rstrip("/") != target.rstrip("/"):
            continue
        recorded = recorded_study(workdir, name) if study is not None else None
        if recorded is not None and recorded != study:
            continue
        found.append(RunningJob("slurm", job_id, f"{name} {state.lower()} {comment}"))
    return found


def slurm_jobs(workdir: str | Path, study: str | None = None, timeout: float = 60) -> list[RunningJob]:
    """This user's SLURM jobs of ``workdir`` (``squeue --me``); none when there is no squeue. A
    squeue that fails is an error: a second copy of a running job is worse than a stopped run."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return []
    cmd = [squeue, "--me", "--noheader", "--format", SQUEUE_FORMAT]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunningJobsError(f"cannot ask SLURM which jobs of {Path(workdir).resolve()} still run "
                               f"(`{shlex.join(cmd)}`: {exc}); run the command again") from None
    if proc.returncode != 0:
        raise RunningJobsError(f"cannot ask SLURM which jobs of {Path(workdir).resolve()} still run "
                               f"(`{shlex.join(cmd)}`: {proc.stderr.strip() or proc.returncode}); "
                               "run the command again")
    return parse_squeue(proc.stdout, workdir, study)


def find(workdir: str | Path, slurm: bool, study: str | None = None) -> list[RunningJob]:
    """The jobs of ``study`` in ``workdir`` that a dead run left: its SLURM jobs (``slurm``) and
    its local processes."""
    queued = slurm_jobs(workdir, study) if slurm else []
    return queued + local_jobs(workdir, skip_slurm_jobs=[j.ident for j in queued], study=study)


# --- what the user reads ---------------------------------------------------------------------------


def cancel_command(jobs: list[RunningJob]) -> str:
    """The command(s) that end ``jobs``: ``scancel`` for SLURM jobs, ``kill`` for processes."""
    parts = []
    slurm = [j.ident for j in jobs if j.kind == "slurm"]
    local = [j.ident for j in jobs if j.kind == "process"]
    if slurm:
        parts.append("scancel " + " ".join(slurm))
    if local:
        parts.append("kill " + " ".join(local))
    return " && ".join(parts)


def describe(jobs: list[RunningJob], workdir: str | Path, chosen: str) -> str:
    """The list of ``jobs`` and what happens now (``chosen`` policy), for the console."""
    lines = [f"{len(jobs)} job(s) of an earlier, killed run still run in {Path(workdir).resolve()}; "
             "starting a second copy of them would have two jobs write the same outputs:"]
    for job in jobs:
        label = "SLURM job" if job.kind == "slurm" else "process"
        what = job.what if len(job.what) <= 160 else job.what[:157] + "..."
        lines.append(f"  {label} {job.ident}: {what}")
    cancel = cancel_command(jobs)
    if chosen == "refuse":
        lines.append(f"Not started ({POLICY_VARIABLE}=refuse). Wait until they end, or end them with "
                     f"`{cancel}`, then run the same command again: what they did not finish reruns "
                     "and resumes from what they saved.")
    else:
        lines.append(f"Waiting until they end ({POLICY_VARIABLE}=wait; `refuse` stops here instead). "
                     f"Not worth waiting for? End them with `{cancel}`; this run then goes on, and "
                     "what they did not finish reruns and resumes from what they saved.")
    return "\n".join(lines)


def settle(workdir: str | Path, slurm: bool, chosen: str | None = None, out: TextIO = sys.stderr,
           poll_s: float | None = None, finder: Callable[[], list[RunningJob]] | None = None,
           study: str | None = None) -> list[RunningJob]:
    """Return once no job of ``workdir`` left by a killed run still runs (at once when there is
    none), waiting for them, or raise :class:`RunningJobsError` listing them (``refuse``). Returns
    the jobs that were found at first (empty: nothing was running)."""
    chosen = chosen or policy()
    look = finder or (lambda: find(workdir, slurm, study))
    first = look()
    if not first:
        return []
    if chosen == "refuse":
        raise RunningJobsError(describe(first, workdir, chosen))
    print(describe(first, workdir, chosen), file=out, flush=True)
    poll = poll_s if poll_s is not None else poll_interval(slurm)
    left = first
    while left:
        time.sleep(poll)
        now = look()
        ended = [j for j in left if j not in now]
        if ended:
            print(f"ended: {', '.join(j.ident for j in ended)}; {len(now)} still running", file=out, flush=True)
        left = now
    print("The jobs of the killed run have ended; this run goes on.", file=out, flush=True)
    return first
