"""Shared test helpers: paths, running Snakemake on a copy of the workflow."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def offline_env(warm: bool = True) -> dict[str, str]:
    """The tests' environment: offline, and (``warm``) jobs forked from a warm server that imported
    torch & co. once (parallel_scaling/jobs/warm.py; tests/test_warm.py)."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONUNBUFFERED="1",
               PARALLEL_SCALING_WARM="1" if warm else "0")
    return env


def copy_workflow(dest: Path) -> Path:
    """A private copy of the workflow (Snakefile, rules, package, profiles, the released tiny model):
    tests may edit its code."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml"):
        shutil.copy(REPO / name, dest / name)
    for name in ("workflow", "profiles", "envs", "slurm", "models"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    return dest


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


#: `python -m snakemake` forked from a warm server (tests/warm_snakemake.py; warm with offline_env())
SNAKEMAKE = [sys.executable, str(Path(__file__).with_name("warm_snakemake.py"))]


def snakemake(workdir: Path, *args: str, timeout: int = 900, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake in ``workdir`` (which holds a Snakefile) with the test's offline environment,
    forked from a warm server (tests/warm_snakemake.py)."""
    cmd = [*SNAKEMAKE, "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, env=offline_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc). torch.distributed.run starts each rank in a session
    of its own, so killing the process group of snakemake would leave the ranks running."""
    children: dict[int, list[int]] = {}
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                ppid = int(open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(stat))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every process it started (listed first: children of a killed parent
    are adopted by init), as the OOM killer or a pre-emption ends a job; processes already gone are
    skipped. The one way the tests kill a run."""
    for target in [pid, *descendants(pid)]:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until(ready: Callable[[], Any], timeout: float = 600, proc: subprocess.Popen | None = None,
               interval: float = 0.02) -> Any:
    """Poll ``ready()`` until it returns something true, and return that; None when ``proc`` ended
    first or ``timeout`` seconds passed. The one polling loop of the tests that watch a run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        seen = ready()
        if seen:
            return seen
        time.sleep(interval)
    return None


def kill_snakemake_when(wd: Path, target: str, configfile: str, ready: Callable[[], Any], cores: int = 1,
                        extra_args: list[str] | None = None) -> Any:
    """Start snakemake for ``target`` and SIGKILL it with every process it started (snakemake, the
    launcher, every rank), as a pre-empted SLURM job ends, as soon as ``ready()`` returns something
    true; the target must not exist then. Returns what ``ready()`` returned. Its jobs start cold,
    as on a cluster: each is the process that the kill ends."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(cores), target, "--configfile", configfile,
           *(extra_args or [])]
    proc = subprocess.Popen(cmd, cwd=wd, env=offline_env(warm=False), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = wait_until(ready, 600, proc)
    if seen:
        kill_tree(proc.pid)
    proc.wait(timeout=60)
    assert seen, "the job finished or failed before it could be killed"
    assert not (wd / target).exists(), "killed before the output was handed over"
    # no `snakemake --unlock`: the next run releases the killed run's lock itself (jobs/locks.py)
    return seen


def kill_after_first_save(wd: Path, target: str, work: str, configfile: str, cores: int = 1) -> int:
    """:func:`kill_snakemake_when` a training job has saved a step in its work directory ``work``.
    Returns the saved step."""

    def saved_step() -> int | None:
        states = list((wd / work).glob("*/checkpoint-*/trainer_state.json"))
        return max(int(p.parent.name.split("-")[1]) for p in states) if states else None

    return kill_snakemake_when(wd, target, configfile, saved_step, cores)


def job_stats(text: str) -> dict[str, int]:
    """Job counts per rule from the first 'Job stats' table Snakemake prints ({} when nothing is to
    be done). The one reader of Snakemake's job counts in the tests."""
    counts: dict[str, int] = {}
    if "Job stats:" not in text:
        return counts
    block = text.split("Job stats:", 1)[1].splitlines()
    for line in block[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        if parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def planned_jobs(proc: subprocess.CompletedProcess) -> dict[str, int]:
    """:func:`job_stats` of a dry run's output (stdout and stderr)."""
    return job_stats(proc.stdout + proc.stderr)


def printed_jobs(text: str) -> list[dict]:
    """The jobs of a `snakemake -n -p` output: rule, local or not, resources and shell command. The
    one reader of Snakemake's per-job blocks in the tests."""
    jobs = []
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?rule )", text):
        head = re.search(r"^(local)?rule (\w+):", block, re.M)
        if not head:
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        resources = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
        jobs.append({"rule": head.group(2), "local": bool(head.group(1)), "resources": resources,
                     "shell": shell.group(1) if shell else ""})
    return jobs


def assert_archive_job_checked(wd: Path, study: str, tarball: Path):
    """Assert that the archive job of ``study`` in ``wd`` checked the tarball it wrote as a reviewer
    would, from its log: the archive job runs the reviewer's check itself (``verify``: roc-validator
    on the inherited profiles, the sha256 of every file, the provenance chain) and fails on a problem,
    so the validator is not run a second time on the same bytes. Its log must end in OK, name all
    four profiles as checked and show no RECOMMENDED issue the README does not explain. Files and
    chain are checked here again from the tarball alone; returns that Verification."""
    from parallel_scaling.archive.profiles import VALIDATOR_PROFILES
    from parallel_scaling.archive.verify import verify

    report = (wd / "logs" / study / "archive.log").read_text().splitlines()
    assert report[-2:] == ["OK", str(tarball.relative_to(wd))], report[-12:]
    assert not [line for line in report if line.strip().startswith("RECOMMENDED")
                and "(known, see README)" not in line], report
    checked = {line.strip().split(":")[0] for line in report if line.startswith("  ") and "-crate-" in line
               and not line.strip().startswith("RECOMMENDED")}
    assert checked == set(VALIDATOR_PROFILES.values()), report
    result = verify(tarball, profiles=None)
    assert result.problems == [], "archive problems:\n" + "\n".join(result.problems)
    return result


def assert_archive_valid(tarball: Path, profiles: str = "each"):
    """Assert that an archive made by `snakemake archive` checks out as a reviewer would check it.

    Runs parallel_scaling.archive.verify.verify: every file against its sha256, each job's recorded
    inputs against the archived files, and roc-validator (offline, contexts from
    workflow/resources/jsonld) for each profile the crate declares (``profiles="inherited"``: only
    the most specific ones, whose runs include their ancestors' checks; about 4x faster). Fails on
    any problem, if the validator is not installed, and on a RECOMMENDED issue that
    parallel_scaling.archive.profiles.KNOWN_RECOMMENDED (and the README) does not explain. Returns
    the Verification.
    """
    from parallel_scaling.archive.profiles import VALIDATOR_PROFILES
    from parallel_scaling.archive.verify import verify

    result = verify(tarball, profiles=profiles)
    assert result.profiles is not None, f"profiles not checked: {result.validator}"
    assert not result.problems, "archive problems:\n" + "\n".join(result.problems)
    checked = set(result.profiles) | set(result.covered)
    assert checked == set(VALIDATOR_PROFILES.values()), f"profiles checked: {sorted(checked)} (a run's "\
        "archive declares all four)"
    unexplained = sorted({f"{i.check}: {i.message.splitlines()[0]}" for i in result.unexplained()})
    assert not unexplained, "RECOMMENDED issues not explained in KNOWN_RECOMMENDED/README:\n" + "\n".join(unexplained)
    return result
