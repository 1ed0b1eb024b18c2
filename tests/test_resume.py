"""A GRPO job killed (SIGKILL) after it saved a step resumes from that step when Snakemake reruns it."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import REPO, copy_workflow, load_yaml, offline_env, snakemake, write_config

pytestmark = pytest.mark.slow

TARGET = "results/checkpoints/tiny/grpo/k0/s0/training_settings.json"
CKPT = "results/checkpoints/tiny/grpo/k0/s0"


def test_killed_grpo_job_resumes_from_its_last_saved_step(tmp_path):
    config = copy.deepcopy(load_yaml(REPO / "tests/configs/smoke.yaml"))
    config["paradigms"] = ["grpo"]
    config["languages"]["K"] = 0
    config["mixtures"]["items"] = 60  # 60 prompts, 2 per step: 30 steps
    config["grpo"]["save_steps"] = 4
    wd = copy_workflow(tmp_path / "wf")
    write_config(wd / "resume.yaml", config)
    snakemake(wd, "results/models/tiny/init/build_settings.json", "results/data/mixtures/k0.jsonl", "--configfile", "resume.yaml")

    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", TARGET, "--configfile", "resume.yaml"]
    proc = subprocess.Popen(cmd, cwd=wd, env=offline_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = wd / "work/train_grpo/tiny/k0/s0"
    saved = None
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        states = list(work.glob("*/checkpoint-*/trainer_state.json"))
        if states:
            saved = max(int(p.parent.name.split("-")[1]) for p in states)
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert saved is not None, "the GRPO job finished or failed before saving a checkpoint"
    assert not (wd / TARGET).exists(), "killed before the checkpoint was handed over"

    snakemake(wd, "--unlock", "--configfile", "resume.yaml")
    snakemake(wd, TARGET, "--configfile", "resume.yaml")
    record = json.loads((wd / TARGET).read_text())
    resumed = int(record["resumed_from"].rsplit("-", 1)[1])
    assert resumed >= saved > 0
    assert record["final_step"] == 30
    log = (wd / "logs/train_grpo/tiny/k0/s0.log").read_text()
    assert "resuming GRPO from" in log
