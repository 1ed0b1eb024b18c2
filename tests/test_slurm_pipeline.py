"""The real pipeline through real sbatch with the project's own SLURM profile: the GPU rules'
jobs are SLURM jobs with a gres/gpu allocation, the cheap rules run locally."""

from __future__ import annotations

import copy
import json

import pytest

from helpers import REPO, copy_workflow, load_yaml, offline_env, write_config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TARGET = "results/smoke/scored/tiny/grpo/k0/s0/scored.jsonl"


def test_pipeline_on_slurm_gives_gpu_rules_a_gpu(slurm_cluster, tmp_path):
    config = copy.deepcopy(load_yaml(REPO / "tests/configs/smoke.yaml"))
    config["paradigms"] = ["grpo"]
    config["languages"]["K"] = 0
    wd = copy_workflow(tmp_path / "wf")
    write_config(wd / "slurm.yaml", config)
    env = {k: v for k, v in offline_env().items() if k.startswith(("HF_", "TRANSFORMERS_"))}
    proc = slurm_cluster.snakemake([TARGET, "--configfile", "slurm.yaml"], cwd=wd, timeout=900, extra_env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:] + slurm_cluster.logs()
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
