"""Multi-process training through the real rules, on CPU: `accelerate launch` with two processes
(envs/accelerate/multi_cpu.yaml: torch.distributed.run, gloo) runs GRPO and SFT of the tiny model,
the two processes share the data (half the optimizer steps of one process), rank 0 alone writes
the checkpoint and the provenance record, and a GRPO job killed after a saved step resumes from it.

This is the code path of an 8-GPU ZeRO-3 job minus the GPUs: the launcher line, the process count
taken from the job, the per-rank work directories and the hand-over of the model. About 2 minutes
on 2 cores (three launches of two processes each)."""

from __future__ import annotations

import copy
import json

import pytest

from helpers import REPO, copy_workflow, kill_after_first_save, load_yaml, snakemake, write_config

pytestmark = pytest.mark.slow(seconds=45)

GRPO = "results/smoke/checkpoints/tiny/grpo/k0/s0"
SFT = "results/smoke/checkpoints/tiny/sft/k0/s0"
WORK = "work/smoke/train_grpo/tiny/k0/s0"


def two_process_config() -> dict:
    config = copy.deepcopy(load_yaml(REPO / "tests/configs/smoke.yaml"))
    config["languages"]["K"] = 0
    config["mixtures"]["items"] = 16  # 16 English prompts
    config["gpus"] = {"train_grpo": 0, "train_sft": 0}
    for section in ("grpo", "sft"):
        config[section].update(device="cpu", accelerate_config="envs/accelerate/multi_cpu.yaml", cpu_processes=2)
    # GRPO: 8 completions = 2 prompts per process and step -> 4 prompts per step with 2 processes: 4 steps
    config["grpo"].update(save_steps=1, logging_steps=1)
    # SFT: 4 sequences per process and step -> 8 per step: 2 steps (4 with one process)
    config["sft"].update(per_device_train_batch_size=4, logging_steps=1)
    return config


def test_two_cpu_processes_train_grpo_and_sft_through_the_rules(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    write_config(wd / "mp.yaml", two_process_config())
    snakemake(wd, "results/smoke/models/tiny/init", "results/smoke/data/mixtures/k0.jsonl", "--configfile", "mp.yaml")
    plan = snakemake(wd, "-n", "-p", GRPO, SFT, "--configfile", "mp.yaml").stdout
    assert plan.count("-m accelerate.commands.launch --config_file envs/accelerate/multi_cpu.yaml "
                      "--num_processes 2 -m parallel_scaling") == 2

    saved = kill_after_first_save(wd, GRPO, WORK, "mp.yaml", cores=2)
    snakemake(wd, GRPO, SFT, "--configfile", "mp.yaml", timeout=1200)

    grpo = json.loads((wd / GRPO / "training_settings.json").read_text())
    assert grpo["identity"]["world_size"] == 2
    assert int(grpo["resumed_from"].rsplit("-", 1)[1]) >= saved > 0
    assert grpo["final_step"] == 4  # 16 prompts / (2 prompts x 2 processes); one process would take 8
    sft = json.loads((wd / SFT / "training_settings.json").read_text())
    assert sft["identity"]["world_size"] == 2
    steps = [int(line.split(",", 1)[0]) for line in (wd / SFT / "curves.csv").read_text().splitlines()[1:]]
    assert max(steps) == 2  # 16 rows / (4 x 2 processes)

    for ckpt, rule in ((GRPO, "train_grpo"), (SFT, "train_sft")):
        # one model, handed over once, nothing left behind
        assert len(list((wd / ckpt).glob("*.safetensors"))) == 1, ckpt
        assert not list((wd / ckpt).parent.glob("*.partial")), ckpt
        from parallel_scaling.jobs import integrity

        _token, problems = integrity.state(str(wd / ckpt))
        assert not problems, problems
        # one provenance record, written by rank 0, of a job of two processes
        (prov,) = list((wd / "logs/smoke" / rule).rglob("*.prov.json"))
        record = json.loads(prov.read_text())
        assert record["status"] == "ok" and record["processes"] == 2, record["status"]
        assert any(o["path"].startswith(ckpt) for o in record["outputs"]), record["outputs"][:3]
    assert not any((wd / WORK).iterdir())
    log = (wd / "logs/smoke/train_grpo/tiny/k0/s0.log").read_text()
    assert "resuming GRPO from" in log
