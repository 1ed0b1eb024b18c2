"""The real pipeline through real sbatch with the project's own SLURM profile: the GPU rules'
jobs are SLURM jobs with a gres/gpu allocation, the cheap rules run locally."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import slurm_smoke
from helpers import wait_until, write_config
from parallel_scaling.jobs import running_jobs
from slurm_smoke import HF_ENV, TARGET, smoke_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

@pytest.fixture(scope="module")
def smoke_on_slurm(slurm_cluster, tmp_path_factory) -> Path:
    """The smoke study's k0 GRPO checkpoint built, trained and predicted through sbatch with the
    project's profile: a finished run directory (the next test starts from a copy of it). The run
    started when the cluster came up (tests/slurm_smoke.py), unless it has not."""
    run = slurm_cluster.background.pop(slurm_smoke.FIXTURE, None)
    if run is None:
        run = slurm_smoke.start(slurm_cluster, tmp_path_factory.mktemp("slurm-smoke") / "wf")
    proc = run.result()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:] + slurm_cluster.logs()
    return run.cwd


def test_pipeline_on_slurm_gives_gpu_rules_a_gpu(slurm_cluster, smoke_on_slurm):
    wd = smoke_on_slurm
    assert (wd / TARGET).exists()

    for rule, prov in [("build_init_model", "logs/smoke/build_init_model/tiny.prov.json"),
                       ("train_grpo", "logs/smoke/train_grpo/tiny/k0/s0.prov.json"),
                       ("predict", "logs/smoke/predict/tiny/grpo/k0/s0.prov.json")]:
        record = json.loads((wd / prov).read_text())
        job_id = record["slurm"].get("SLURM_JOB_ID")
        assert job_id, f"{rule} did not run inside a SLURM job"
        shown = slurm_cluster.run(["scontrol", "show", "job", "--details", job_id]).stdout
        assert "gres:gpu:1" in shown or "gres/gpu" in shown, f"{rule}: no GPU allocation\n{shown}"
    # cheap rules are localrules: no SLURM job
    local = json.loads((wd / "logs/smoke/mixture/k0.prov.json").read_text())
    assert not local["slurm"].get("SLURM_JOB_ID")


def _train_jobs(cluster, wd) -> list[str]:
    """The SLURM jobs of ``wd`` that run (or wait to run) its GRPO job, by the plugin's comment."""
    out = cluster.run(["squeue", "--noheader", "--format", running_jobs.SQUEUE_FORMAT]).stdout
    return [j.ident for j in running_jobs.parse_squeue(out, wd) if "rule_train_grpo" in j.what]


def test_a_killed_controller_s_slurm_job_is_never_submitted_twice(slurm_cluster, smoke_on_slurm, tmp_path):
    """SIGKILL to the controlling Snakemake while its GRPO job runs in SLURM: the same command run at
    once refuses (PARALLEL_SCALING_RUNNING_JOBS=refuse, naming the job and `scancel`), or waits
    (the default) until the job has left the queue before it submits it again; at no time do two
    SLURM jobs of that checkpoint run, and the run ends complete."""
    # the finished run above with a longer GRPO job (~15 s in the job, twice Snakemake's start
    # before it; the controller dies meanwhile): its GRPO job alone is stale and submitted at once
    wd = tmp_path / "wf"
    shutil.copytree(smoke_on_slurm, wd, symlinks=True)
    write_config(wd / "slurm.yaml", smoke_config(num_train_epochs=16))
    target = "results/smoke/checkpoints/tiny/grpo/k0/s0"
    record = wd / "logs/smoke/train_grpo/tiny/k0/s0.prov.json"
    env = {**HF_ENV, running_jobs.POLL_VARIABLE: "2"}
    cmd = slurm_cluster.snakemake_command([target, "--configfile", "slurm.yaml"])[4:]  # without `timeout`
    assert cmd[1:3] == ["-m", "snakemake"]
    first = subprocess.Popen(cmd, cwd=wd, env=slurm_cluster.env(env), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.time() + 600
    assert wait_until(lambda: _train_jobs(slurm_cluster, wd), 600, first, interval=1), "the GRPO job was never submitted"
    os.kill(first.pid, signal.SIGKILL)  # the controller only: SLURM keeps its job
    first.wait(timeout=30)
    orphan = _train_jobs(slurm_cluster, wd)
    assert len(orphan) == 1
    controllers: list[subprocess.Popen] = []
    try:
        refused = subprocess.run(cmd, cwd=wd, env=slurm_cluster.env({**env, running_jobs.POLICY_VARIABLE: "refuse"}),
                                 capture_output=True, text=True, timeout=300)
        out = (refused.stdout + refused.stderr).strip()
        assert refused.returncode != 0, out[-3000:]
        tail = "\n".join(out.splitlines()[-8:])
        assert f"SLURM job {orphan[0]}: " in tail and f"`scancel {orphan[0]}`" in tail, tail
        assert 'File "' not in tail, tail
        assert _train_jobs(slurm_cluster, wd) in ([], orphan)  # nothing submitted (it may have ended)

        log = tmp_path / "second.log"  # a file, not a pipe that nobody reads while it runs
        with log.open("w") as fh:
            second = subprocess.Popen(cmd, cwd=wd, env=slurm_cluster.env(env), start_new_session=True, stdout=fh,
                                      stderr=subprocess.STDOUT)
        controllers.append(second)
        most, seen = 0, set()
        while second.poll() is None:
            now = _train_jobs(slurm_cluster, wd)
            most, seen = max(most, len(now)), seen | set(now)
            assert time.time() < end + 600, "the second run never ended"
            time.sleep(0.5)
        out = log.read_text()
        assert second.returncode == 0, out[-3000:] + slurm_cluster.logs()
        assert most <= 1, f"{most} SLURM jobs of one GRPO checkpoint at once"
        again = seen - set(orphan)
        assert len(again) == 1  # the job once more, by this run, after the first had ended
        assert json.loads(record.read_text())["slurm"]["SLURM_JOB_ID"] in again  # it wrote the checkpoint
        assert (wd / target / "model.safetensors").is_file()
    finally:
        for proc in controllers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        slurm_cluster.run(["scancel", *orphan], check=False)
