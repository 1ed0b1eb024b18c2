"""Faults need no manual step: a killed run resumes with the same command, a full disk says so, and
the error that stops a run is the last thing on screen (docs/data-checks.md)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO, SHARED, copy_workflow, descendants, kill_tree, load_yaml, offline_env, wait_until, write_config
from parallel_scaling.cli import main as cli_main
from parallel_scaling.jobs import failures, locks, running_jobs

# the first job of the default study that runs for minutes: the run is killed while it runs
SLOW_TARGET = "results/tiny/models/tiny/init"


def _start(wd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", *args], cwd=wd, env=offline_env(),
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_lock(wd: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    locked = wait_until(lambda: locks.lock_files(wd), timeout, proc, interval=0.2)
    assert locked, (proc.stdout.read() if proc.stdout and proc.poll() is not None else "") or \
        "snakemake never locked the directory"


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL snakemake and everything it started, as the OOM killer or a pre-emption would."""
    kill_tree(proc.pid)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_killed_run_resumes_with_the_same_command_but_a_live_lock_is_kept(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    first = _start(wd, SLOW_TARGET)
    _wait_for_lock(wd, first)
    # a second run while the first lives: Snakemake's own refusal, and the lock stays
    second = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", SLOW_TARGET], cwd=wd,
                            env=offline_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode != 0 and "cannot be locked" in second.stdout + second.stderr
    assert locks.lock_files(wd)
    _kill(first)
    assert locks.lock_files(wd)  # SIGKILL: Snakemake could not remove its lock
    # the same command again (dry run: it plans, and would have failed on the lock before)
    again = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", SLOW_TARGET, "-n"], cwd=wd,
                           env=offline_env(), capture_output=True, text=True, timeout=300)
    out = again.stdout + again.stderr
    assert again.returncode == 0, out
    assert "Released the lock of a killed Snakemake run" in out
    # a real run of a short target locks, runs and ends cleanly after the kill
    done = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "results/tiny/data/source/test.jsonl"],
                          cwd=wd, env=offline_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not locks.lock_files(wd)


def test_no_other_snakemake_here_and_locks_are_listed(tmp_path):
    assert locks.other_snakemakes(tmp_path) == []
    assert locks.release_stale_locks(tmp_path) is None  # nothing to release
    (tmp_path / ".snakemake/locks").mkdir(parents=True)
    (tmp_path / ".snakemake/locks/0.input.lock").write_text("a\n")
    (tmp_path / ".snakemake/locks/0.output.lock").write_text("b\n")
    assert [p.name for p in locks.lock_files(tmp_path)] == ["0.input.lock", "0.output.lock"]
    assert "Released the lock" in locks.release_stale_locks(tmp_path)
    assert locks.lock_files(tmp_path) == []


def test_a_live_snakemake_in_the_directory_is_seen(tmp_path):
    """A process whose command line is snakemake's and that works in the directory holds it."""
    fake = tmp_path / "snakemake"
    fake.write_text("import time; time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(fake), "--cores", "1"], cwd=tmp_path)
    try:
        time.sleep(0.3)
        assert proc.pid in locks.other_snakemakes(tmp_path)
        (tmp_path / ".snakemake/locks").mkdir(parents=True)
        (tmp_path / ".snakemake/locks/0.output.lock").write_text("b\n")
        assert locks.release_stale_locks(tmp_path) is None and locks.lock_files(tmp_path)
        assert locks.other_snakemakes(tmp_path / ".snakemake") == []  # another directory
    finally:
        proc.kill()
        proc.wait()
    # a cluster job's own Snakemake (--nolock), even on this machine, holds no lock
    job = subprocess.Popen([sys.executable, str(fake), "--nolock", "--no-hooks"], cwd=tmp_path)
    try:
        time.sleep(0.3)
        assert locks.other_snakemakes(tmp_path) == []
        assert "Released the lock" in locks.release_stale_locks(tmp_path)
    finally:
        job.kill()
        job.wait()


def test_full_disk_is_named_as_such(tmp_path, capsys):
    """A real ENOSPC (writing to /dev/full) ends with a message that says the disk is full."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    report = tmp_path / "de.tsv"
    report.write_text("id\tlang\tstatus\treason\treasons\tdetail\na\tde\tkept\t\t\t\n", encoding="utf-8")
    code = cli_main(["qc-table", "--reports", str(report), "--csv", "/dev/full", "--markdown", str(tmp_path / "t.md")])
    err = capsys.readouterr().err
    assert code == 2 and "the disk is full" in err and "rerun the same command" in err and "Traceback" not in err


def test_failure_summary_names_the_text_log_not_the_provenance_record(tmp_path):
    log = tmp_path / "logs/source/train.log"
    log.parent.mkdir(parents=True)
    log.write_text("INFO starting\nerror: /data/x.jsonl:3: gold answer 'answer' is 'twelve', which is not a number\n")
    prov = tmp_path / "logs/source/train.prov.json"
    prov.write_text(json.dumps({"argv": ["x"] * 200}, indent=1))
    smk = tmp_path / "snakemake.log"
    smk.write_text("[Sun Dec  6]\nError in rule source:\n    message: None\n    jobid: 3\n"
                   "    output: results/x.jsonl\n    log: logs/source/train.log, logs/source/train.prov.json "
                   "(check log file(s) for error details)\n    shell:\n        python -m ...\n"
                   "Shutting down, this might take some time.\n")
    text = failures.summary([str(smk)], tmp_path)
    assert "rule source failed; its log logs/source/train.log ends:" in text
    assert "'twelve', which is not a number" in text and "prov.json" not in text and "argv" not in text
    assert failures.summary(None) == "" and failures.summary([str(tmp_path / "none.log")]) == ""


@pytest.mark.slow
def test_refused_file_is_the_last_thing_on_screen(tmp_path):
    """A bad source row in a real-data study: the error naming it is among the last lines
    Snakemake prints, not 120 lines up under a provenance record."""
    if not (SHARED / "mgsm8kinstruct_questions").exists():
        pytest.skip("shared GSM8K / MGSM8KInstruct data not present")
    wd = copy_workflow(tmp_path / "wf")
    config = load_yaml(REPO / "configs/gsm8k_import.yaml")
    model = wd / "initial-model"  # planning wants an existing model directory; only a data job runs
    model.mkdir()
    (model / "config.json").write_text("{}")
    bad = wd / "bad.jsonl"  # its first bytes are fine (planning passes it), its fourth row is not
    rows = [json.loads(line) for line in (SHARED / "gsm8k/test.jsonl").read_text(encoding="utf-8").splitlines()[:20]]
    rows[3]["answer"] = "She has #### twelve"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config["models"]["local"]["path"] = str(model)
    config["source"].update(train=str(SHARED / "gsm8k/train.jsonl"), test=str(bad))
    config["translation"]["import"]["path"] = str(SHARED / "mgsm8kinstruct_questions/train_{lang}.jsonl")
    config["benchmarks"]["mgsm"]["path"] = str(SHARED / "mgsm/mgsm_test.jsonl")
    write_config(wd / "bad.yaml", config)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1",
                           f"results/{config['study']}/data/source/test.jsonl", "--configfile", "bad.yaml"],
                          cwd=wd, env=offline_env(), capture_output=True, text=True, timeout=300)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode != 0
    tail = "\n".join(lines[-10:])
    assert f"{bad}:4: gold answer 'answer' is 'She has #### twelve', which is not a number" in tail, tail
    assert '"argv"' not in proc.stdout + proc.stderr  # no provenance record printed


# --------------------------------------------------------------------------------------------------
# jobs a killed Snakemake left running are never started a second time (jobs/running_jobs.py)

# the shortest GRPO job (about 17 s alone): it outlives the start of two more Snakemakes
TRAIN_TARGET = "results/tiny/checkpoints/tiny/grpo/k0/s0"


def _train_jobs(wd: Path) -> list[int]:
    """Every process that runs a GRPO job in ``wd`` (read from /proc here, not by the code tested)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if entry.name.isdigit() and os.readlink(entry / "cwd") == str(wd.resolve()):
                if Path(argv[0]).name.startswith("python") and "train-grpo" in argv:
                    found.append(int(entry.name))
        except OSError:
            continue
    return sorted(found)


@pytest.mark.slow(seconds=45)
def test_rerun_after_a_killed_controller_never_runs_a_job_twice_at_once(tmp_path):
    """SIGKILL to Snakemake alone (a dropped SSH session) leaves its GRPO job running; the same
    command run at once waits for that job instead of starting a second copy beside it (and with
    PARALLEL_SCALING_RUNNING_JOBS=refuse stops, naming the process and the command to end it); the
    checkpoint is then written by one job at a time, and the run ends complete."""
    wd = copy_workflow(tmp_path / "wf")
    env = offline_env(warm=False)
    first = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", TRAIN_TARGET], cwd=wd, env=env,
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 300
    assert wait_until(lambda: _train_jobs(wd), 300, first, interval=0.2), "the GRPO job never started"
    os.kill(first.pid, signal.SIGKILL)  # the controller only: its job lives on
    first.wait(timeout=30)
    orphan = _train_jobs(wd)
    assert len(orphan) == 1
    started = list(orphan)
    try:
        refused = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", TRAIN_TARGET], cwd=wd,
                                 env={**env, running_jobs.POLICY_VARIABLE: "refuse"}, capture_output=True,
                                 text=True, timeout=300)
        out = (refused.stdout + refused.stderr).strip()
        assert refused.returncode != 0, out
        assert _train_jobs(wd) == orphan  # no second copy was started
        tail = "\n".join(out.splitlines()[-8:])
        assert f"process {orphan[0]}: " in tail and f"`kill {orphan[0]}`" in tail, tail
        assert "Traceback" not in out and 'File "' not in tail, tail

        log = tmp_path / "second.log"  # a file, not a pipe that nobody reads while it runs
        with log.open("w") as fh:
            second = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", TRAIN_TARGET], cwd=wd,
                                      env=env, start_new_session=True, stdout=fh, stderr=subprocess.STDOUT)
        started.append(second.pid)  # ended below if the test fails
        most, seen = 0, set()
        while second.poll() is None:
            now = _train_jobs(wd)
            most, seen = max(most, len(now)), seen | set(now)
            assert time.time() < end + 600, "the second run never ended"
            time.sleep(0.1)
        out = log.read_text()
        assert second.returncode == 0, out[-3000:]
        assert "Waiting until they end" in out and f"process {orphan[0]}: " in out, out[-3000:]
        assert most == 1, f"{most} GRPO jobs of one checkpoint ran at once"
        assert len(seen - set(orphan)) == 1  # after the orphan ended, this run's own job
        assert (wd / TRAIN_TARGET / "model.safetensors").exists()
    finally:
        for pid in [*started, *_train_jobs(wd)]:
            kill_tree(pid)


def test_running_jobs_of_a_directory_are_found_by_working_directory_and_command(tmp_path):
    """A process that runs the package in the directory is a job of it; the same command elsewhere,
    or another command here, is not."""
    fake = tmp_path / "pkg/parallel_scaling"  # a stand-in package whose command runs for a while
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")  # a regular package: it shadows the installed one
    (fake / "__main__.py").write_text("import time; time.sleep(30)\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "pkg")}
    job = subprocess.Popen([sys.executable, "-m", "parallel_scaling", "--provenance", "logs/tiny/predict/x.prov.json",
                            "predict"], cwd=work, env=env)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], cwd=work)
    try:
        wait_until(lambda: running_jobs.local_jobs(work), 30, interval=0.05)
        found = running_jobs.local_jobs(work)
        assert [(j.kind, j.ident) for j in found] == [("process", str(job.pid))]
        assert found[0].what.endswith("-m parallel_scaling --provenance logs/tiny/predict/x.prov.json predict")
        assert running_jobs.local_jobs(tmp_path) == []  # another directory
        assert running_jobs.local_jobs(work, study="tiny") == found
        assert running_jobs.local_jobs(work, study="paper") == []  # another study's job
        assert running_jobs.runs_package(["/usr/bin/python3", "-m", "parallel_scaling", "train-grpo"])
        assert running_jobs.runs_package(["python", "-m", "accelerate.commands.launch", "--num_processes", "2",
                                          "-m", "parallel_scaling", "train-grpo"])
        assert not running_jobs.runs_package(["python", "-m", "parallel_scaling.jobs.warm", "/tmp/s.sock"])
        assert not running_jobs.runs_package(["bash", "-c", "python -m parallel_scaling source"])
    finally:
        for proc in (job, sleeper):
            proc.kill()
            proc.wait()
    # a job that a live Snakemake started is that run's, not a killed run's
    fake_smk = tmp_path / "snakemake"
    fake_smk.write_text("import subprocess, sys; subprocess.run([sys.executable, '-m', 'parallel_scaling', "
                        "'--provenance', 'logs/tiny/p.prov.json', 'predict'])\n")
    live = subprocess.Popen([sys.executable, str(fake_smk), "--cores", "1"], cwd=work, env=env)
    try:
        wait_until(lambda: descendants(live.pid), 30, interval=0.05)
        time.sleep(0.2)
        assert descendants(live.pid) and running_jobs.local_jobs(work) == []
    finally:
        kill_tree(live.pid)
        live.wait()


def test_squeue_lines_of_this_directory_are_its_jobs(tmp_path):
    other = tmp_path.parent / "other"
    text = "\n".join([
        f"101|parallel-scaling_1b2c|RUNNING|{tmp_path}|rule_train_grpo_wildcards_tiny_k1_0",
        f"102|parallel-scaling_1b2c|PENDING|{tmp_path}/|rule_predict_wildcards_tiny_grpo_k1_0",
        f"103|parallel-scaling_9f9f|RUNNING|{other}|rule_predict_wildcards_tiny_grpo_k1_0",
        f"104|interactive|RUNNING|{tmp_path}|(null)",
        "garbage",
    ])
    jobs = running_jobs.parse_squeue(text, tmp_path)
    assert [j.ident for j in jobs] == ["101", "102"]
    # a run of another study in the same directory recorded its run id: its jobs are not ours
    running_jobs.record_run(tmp_path, "parallel-scaling_1b2c", "paper")
    assert running_jobs.parse_squeue(text, tmp_path, study="tiny") == []
    assert [j.ident for j in running_jobs.parse_squeue(text, tmp_path, study="paper")] == ["101", "102"]
    assert running_jobs.recorded_study(tmp_path, "../etc") is None
    assert jobs[1].what == "parallel-scaling_1b2c pending rule_predict_wildcards_tiny_grpo_k1_0"
    local = running_jobs.RunningJob("process", "4242", "python -m parallel_scaling predict")
    assert running_jobs.cancel_command([*jobs, local]) == "scancel 101 102 && kill 4242"
    refused = running_jobs.describe(jobs, tmp_path, "refuse")
    assert "SLURM job 101: " in refused and "`scancel 101 102`" in refused and "refuse" in refused


def test_the_policy_waits_by_default_and_refuses_on_request(tmp_path):
    assert running_jobs.policy({}) == "wait"
    assert running_jobs.policy({running_jobs.POLICY_VARIABLE: "Refuse"}) == "refuse"
    with pytest.raises(running_jobs.RunningJobsError, match="PARALLEL_SCALING_RUNNING_JOBS='later'"):
        running_jobs.policy({running_jobs.POLICY_VARIABLE: "later"})
    job = running_jobs.RunningJob("process", "7", "python -m parallel_scaling predict")
    looks = iter([[job], [job], []])
    out = io.StringIO()
    assert running_jobs.settle(tmp_path, False, "wait", out, poll_s=0, finder=lambda: next(looks)) == [job]
    assert "Waiting until they end" in out.getvalue() and "have ended; this run goes on" in out.getvalue()
    with pytest.raises(running_jobs.RunningJobsError, match="`kill 7`"):
        running_jobs.settle(tmp_path, False, "refuse", out, finder=lambda: [job])
    assert running_jobs.settle(tmp_path, False, "refuse", out, finder=list) == []
