"""A GRPO job killed (SIGKILL) after it saved a step resumes from that step when Snakemake reruns
it with the same inputs, and never when an input changed in between."""

from __future__ import annotations

import copy
import json

import pytest

from helpers import REPO, copy_workflow, kill_after_first_save, load_yaml, snakemake, write_config

pytestmark = pytest.mark.slow

CKPT = "results/smoke/checkpoints/tiny/grpo/k0/s0"
WORK = "work/smoke/train_grpo/tiny/k0/s0"
LOG = "logs/smoke/train_grpo/tiny/k0/s0.log"


def test_killed_grpo_job_resumes_only_the_same_computation(tmp_path):
    config = copy.deepcopy(load_yaml(REPO / "tests/configs/smoke.yaml"))
    config["paradigms"] = ["grpo"]
    config["languages"]["K"] = 0
    config["mixtures"]["items"] = 60  # 60 prompts, 2 per step: 30 steps
    config["grpo"]["save_steps"] = 4
    wd = copy_workflow(tmp_path / "wf")
    write_config(wd / "resume.yaml", config)
    snakemake(wd, "results/smoke/models/tiny/init", "results/smoke/data/mixtures/k0.jsonl", "--configfile", "resume.yaml")

    # killed, then rerun with another learning rate: starts afresh, the dead state is removed
    kill_after_first_save(wd, CKPT, WORK, "resume.yaml")
    (stale,) = list((wd / WORK).iterdir())
    changed = copy.deepcopy(config)
    changed["grpo"]["learning_rate"] = 0.0002
    write_config(wd / "changed.yaml", changed)
    snakemake(wd, CKPT, "--configfile", "changed.yaml")
    record = json.loads((wd / CKPT / "training_settings.json").read_text())
    assert record["resumed_from"] is None and record["final_step"] == 30
    assert "resuming GRPO from" not in (wd / LOG).read_text()
    assert not stale.exists()
    assert not any((wd / WORK).iterdir()), "a finished run leaves nothing to resume from"

    # killed, then rerun with the same inputs: resumes from the step it saved
    saved = kill_after_first_save(wd, CKPT, WORK, "resume.yaml")
    snakemake(wd, CKPT, "--configfile", "resume.yaml")
    record = json.loads((wd / CKPT / "training_settings.json").read_text())
    resumed = int(record["resumed_from"].rsplit("-", 1)[1])
    assert resumed >= saved > 0
    assert record["final_step"] == 30
    assert "resuming GRPO from" in (wd / LOG).read_text()
    assert not any((wd / WORK).iterdir())
