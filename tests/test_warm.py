"""Warm start (parallel_scaling/jobs/warm.py): a command run by a worker forked from a warm
server behaves as the same command run by a fresh process: same output, files, exit status and
provenance; a killed or signalled job ends its worker; an edited module runs its new code; Snakemake
run so (as the suite runs it) plans as Snakemake does.
That a whole study computes the same bits warm and cold is shown by the end-to-end tests, which run
warm (tests/helpers.py), while the released model was built cold: tests/test_released_model.py
rebuilds it warm, bit for bit. The SLURM tests and those that kill a run mid-way run cold."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import REPO, copy_workflow, planned_jobs
from parallel_scaling.jobs import warm


@pytest.fixture(scope="module")
def runtime():
    """A private runtime folder for the servers (short: a socket path has at most 107 bytes), shared
    by the module's tests (a server imports torch & co. once, 5 CPU-seconds), and every server
    started there stopped at the end."""
    path = Path(tempfile.mkdtemp(prefix="psw"))
    yield path
    for proc_dir in Path("/proc").iterdir():
        if proc_dir.name.isdigit():
            try:
                cmdline = (proc_dir / "cmdline").read_bytes()
            except OSError:
                continue
            if b"parallel_scaling.jobs.warm" in cmdline and str(path).encode() in cmdline:
                try:
                    os.kill(int(proc_dir.name), signal.SIGKILL)
                except ProcessLookupError:
                    pass
    shutil.rmtree(path, ignore_errors=True)


def env_for(runtime: Path, warm_on: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow"), XDG_RUNTIME_DIR=str(runtime),
               PARALLEL_SCALING_WARM="1" if warm_on else "0", PARALLEL_SCALING_WARM_IDLE="30",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("PARALLEL_SCALING_WARM_SERVER", None)
    return env


def cli(args: list[str], env: dict[str, str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "parallel_scaling", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300, **kw)


def write_scored(path: Path) -> Path:
    rows = [{"id": f"q{i}", "lang": lang, "benchmark": "b", "response": f"The answer is {i}.", "gold": str(i % 3)}
            for i in range(6) for lang in ("en", "de")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_warm_command_gives_what_a_fresh_one_gives(tmp_path, runtime):
    preds = write_scored(tmp_path / "preds.jsonl")
    runs = {}
    for mode in ("cold", "warm", "warm again"):
        out = tmp_path / mode
        out.mkdir()
        proc = cli(["--provenance", str(out / "p.json"), "score", str(preds), "--out", str(out / "scored.jsonl")],
                   env_for(runtime, mode != "cold"), cwd=tmp_path)
        prov = json.loads((out / "p.json").read_text())
        runs[mode] = (proc, (out / "scored.jsonl").read_bytes(), prov)
    cold, warm_run, again = runs["cold"], runs["warm"], runs["warm again"]
    for run in (warm_run, again):
        assert run[0].returncode == cold[0].returncode == 0
        assert run[0].stdout == cold[0].stdout and run[0].stdout.strip()
        assert run[1] == cold[1]
        assert run[2]["code"] == cold[2]["code"]  # the same modules executed
        assert run[2]["status"] == "ok" and run[2]["cpu"]["env"] == cold[2]["cpu"]["env"]
    assert cold[2]["warm_start"] is None
    assert warm_run[2]["warm_start"] and warm_run[2]["warm_start"] == again[2]["warm_start"]  # one server


def test_a_failing_command_fails_the_same_way(tmp_path, runtime):
    for args in (["fit-law", str(tmp_path / "missing.csv")], ["no-such-command"], ["score", "--no-such-option"]):
        cold = cli(args, env_for(runtime, False), cwd=tmp_path)
        warm_run = cli(args, env_for(runtime, True), cwd=tmp_path)
        assert (warm_run.returncode, warm_run.stdout, warm_run.stderr) == (cold.returncode, cold.stdout, cold.stderr)
        assert cold.returncode != 0


def _blocked_job(tmp_path: Path, runtime: Path) -> tuple[subprocess.Popen, int]:
    """A warm job (`check-config`) reading a FIFO that nobody writes; returns it and its worker's pid."""
    fifo = tmp_path / "study.yaml"
    os.mkfifo(fifo)
    client = subprocess.Popen([sys.executable, "-m", "parallel_scaling", "check-config", "--configfile", str(fifo)],
                              env=env_for(runtime, True), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        for pid in _pids():
            if _opened(pid, fifo) and pid != client.pid:
                return client, pid
        assert client.poll() is None, client.communicate()
        time.sleep(0.1)
    raise AssertionError("the worker never opened its input")


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _opened(pid: int, path: Path) -> bool:
    """Whether the process is a worker blocked opening a FIFO (``path``: nobody else opens one here)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return b"parallel_scaling.jobs.warm" in cmd and wchan == "wait_for_partner"  # open() of a FIFO


def _gone(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_a_killed_job_takes_its_worker_with_it(tmp_path, runtime):
    """SIGKILL to the job (as Snakemake's kill or a pre-emption does) leaves no worker running."""
    client, worker = _blocked_job(tmp_path, runtime)
    ppid = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
    assert ppid != client.pid  # a child of the server, not of the job: the kernel does not end it with the job
    os.kill(client.pid, signal.SIGKILL)
    client.wait(timeout=30)
    assert _gone(worker), "the worker outlived its job"


def test_a_signal_to_the_job_reaches_its_worker(tmp_path, runtime):
    """SIGTERM (Snakemake's cancel, SLURM's time limit) ends the worker, and the job ends as a
    fresh process would: killed by that signal."""
    client, worker = _blocked_job(tmp_path, runtime)
    os.kill(client.pid, signal.SIGTERM)
    client.wait(timeout=30)
    assert client.returncode == -signal.SIGTERM
    assert _gone(worker)


def test_an_edited_module_runs_its_new_code_in_the_same_server(tmp_path, runtime):
    """The server holds no module of the package: each worker imports it from the job's checkout."""
    checkout = tmp_path / "checkout" / "workflow"
    shutil.copytree(REPO / "workflow", checkout, ignore=shutil.ignore_patterns("__pycache__"))
    preds = write_scored(tmp_path / "preds.jsonl")
    env = {**env_for(runtime, True), "PYTHONPATH": str(checkout)}
    score = checkout / "parallel_scaling/evaluate/score.py"

    def run(name: str) -> tuple[str, int]:
        proc = cli(["--provenance", str(tmp_path / f"{name}.json"), "score", str(preds)], env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout, json.loads((tmp_path / f"{name}.json").read_text())["warm_start"]

    before, server = run("before")
    score.write_text(score.read_text().replace("def main(", "print('edited')\n\n\ndef main(", 1))
    after, server_after = run("after")
    assert after == "edited\n" + before and server_after == server and server


def test_the_key_of_a_server(tmp_path):
    """Numerics read at import (ATEN_CPU_CAPABILITY, OMP_NUM_THREADS) and foreign PYTHONPATH entries
    get servers of their own; the checkout's own folder and per-shell variables do not."""
    checkout = tmp_path / "workflow"
    (checkout / "parallel_scaling").mkdir(parents=True)
    (checkout / "parallel_scaling" / "__init__.py").write_text("")
    env = {"PATH": "/usr/bin", "ATEN_CPU_CAPABILITY": "avx2", "OMP_NUM_THREADS": "1"}
    key = warm.server_key(env, "/usr/bin/python3")
    same = {**env, "SHLVL": "3", "_": "/bin/x", "PYTEST_CURRENT_TEST": "t", "PYTHONPATH": str(checkout)}
    assert warm.server_key(same, "/usr/bin/python3") == key
    for other in ({"ATEN_CPU_CAPABILITY": "default"}, {"OMP_NUM_THREADS": "2"}, {"PYTHONPATH": str(tmp_path)}):
        assert warm.server_key({**env, **other}, "/usr/bin/python3") != key, other
    assert warm.server_key(env, "/other/python") != key


@pytest.mark.parametrize("env,expected", [
    ({}, False), ({"PARALLEL_SCALING_WARM": "0"}, False), ({"PARALLEL_SCALING_WARM": "1"}, True),
    ({"PARALLEL_SCALING_WARM": "1", "WORLD_SIZE": "2"}, False),  # accelerate launch's ranks start fresh
    ({"PARALLEL_SCALING_WARM": "1", "SLURM_JOB_ID": "7"}, False),  # as does every cluster job
])
def test_who_runs_warm(env, expected):
    assert warm.eligible(env) is expected


def test_a_runtime_folder_others_can_write_is_not_used(tmp_path, monkeypatch):
    """Another user's socket there could run anything as this user: then no job runs warm."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert warm.runtime_dir() == tmp_path / f"parallel-scaling-warm-{os.getuid()}"
    (tmp_path / f"parallel-scaling-warm-{os.getuid()}").chmod(0o777)
    assert warm.runtime_dir() is None


def test_snakemake_forked_warm_plans_as_snakemake_does(tmp_path, runtime):
    """tests/warm_snakemake.py (how the suite runs Snakemake) against `python -m snakemake`."""
    wd = copy_workflow(tmp_path / "wf")
    runs = {}
    for name, cmd in (("cold", ["-m", "snakemake"]), ("warm", [str(REPO / "tests/warm_snakemake.py")])):
        env = {**env_for(runtime, name == "warm"), "PYTHONPATH": str(REPO / "workflow")}
        runs[name] = subprocess.run([sys.executable, *cmd, "--cores", "2", "-n", "--configfile", "config.yaml"],
                                    cwd=wd, env=env, capture_output=True, text=True, timeout=300)
    assert runs["warm"].returncode == runs["cold"].returncode == 0, runs["warm"].stderr[-2000:]
    assert planned_jobs(runs["warm"]) == planned_jobs(runs["cold"]) != {}
