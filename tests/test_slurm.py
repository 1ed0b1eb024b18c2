"""The project's SLURM profile (slurm/config.yaml) and a real sbatch run.

The profile checks need nothing. The tests marked ``slurm`` run against the
private single-node cluster of the ``slurm_cluster`` fixture (root and
``.ci/install-slurm.sh`` needed, skipped otherwise): the toy workflow
tests/slurm_toy/Snakefile goes through sbatch with the project's profile,
only the site values (partition, account) and the status polling intervals
overridden on the command line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slurm_cluster import (
    PROJECT_PROFILE,
    REPO_ROOT,
    WORKFLOW_PROFILE,
    describe_command,
)

TOY_SNAKEFILE = REPO_ROOT / "tests" / "slurm_toy" / "Snakefile"
GPU_RULES = ("train_grpo", "train_sft", "predict", "build_init_model")


def _profile() -> dict:
    return yaml.safe_load((PROJECT_PROFILE / "config.yaml").read_text())


# ---- the profile itself --------------------------------------------------


def test_profile_found_by_name_from_repo_root(monkeypatch):
    """`snakemake --profile slurm` from the repository root reads
    ./slurm/config.yaml (snakemake.cli.get_profile_dir resolves a name that
    exists relative to the current directory as that folder)."""
    from snakemake.cli import get_profile_dir

    monkeypatch.chdir(REPO_ROOT)
    profile_dir, config_file = get_profile_dir("slurm")
    assert Path(config_file).resolve() == (PROJECT_PROFILE / "config.yaml").resolve()
    assert Path(profile_dir).resolve() == PROJECT_PROFILE.resolve()


def test_profile_settings():
    profile = _profile()
    assert profile["executor"] == "slurm"
    assert isinstance(profile["jobs"], int) and profile["jobs"] > 0
    assert profile["latency-wait"] > 0
    assert "retries" in profile
    # works with and without slurmdbd
    assert profile["slurm-status-command"] == "squeue"
    defaults = profile["default-resources"]
    for key in ("slurm_partition", "slurm_account", "runtime", "mem_mb", "cpus_per_task"):
        assert key in defaults, key
    assert "tasks" not in defaults and "gpus" not in defaults
    # every site-specific default is marked for editing
    text = (PROJECT_PROFILE / "config.yaml").read_text()
    block = text.split("default-resources:", 1)[1].split("\n\n", 1)[0]
    for line in block.splitlines()[1:]:
        if line.strip() and not line.strip().startswith("#"):
            assert "EDIT for your site" in line, line


def test_profile_gpu_rules():
    set_resources = _profile()["set-resources"]
    for rule in GPU_RULES:
        res = set_resources[rule]
        assert res["gpu"] == 1, rule
        assert "gpus" not in res and "tasks" not in res, rule
        assert res["cpus_per_gpu"] >= 1, rule
        # 0 = unset: otherwise the default cpus_per_task wins over cpus_per_gpu
        assert res["cpus_per_task"] == 0, rule
        assert res["runtime"] > 0, rule
    text = (PROJECT_PROFILE / "config.yaml").read_text()
    assert re.search(r"^\s+#\s*gpu_model:", text, re.M), "gpu_model hint missing"
    assert not re.search(r"^\s+gpus:", text, re.M)


def test_profile_accepted_by_snakemake(tmp_path):
    """`snakemake --profile slurm` from the repository root parses the
    profile (unknown keys or bad values would fail here) together with the
    workflow profile, and the GPU rule gets the profile's GPU resources."""
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "slurm",
         "--snakefile", str(TOY_SNAKEFILE), "--directory", str(tmp_path),
         "--dry-run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "Using profiles slurm and workflow specific profile profiles/default" in out
    grpo = out.split("rule train_grpo:", 1)[1].split("rule ", 1)[0]
    assert "gpu=1" in grpo and "cpus_per_gpu=" in grpo, grpo


def test_workflow_profile_leaves_cluster_keys_to_slurm_profile():
    """The workflow profile overrides the SLURM profile key by key, so it
    must not carry any key the SLURM profile sets."""
    workflow = yaml.safe_load((WORKFLOW_PROFILE / "config.yaml").read_text())
    assert workflow["keep-going"] is False
    assert workflow["printshellcmds"] is True
    clash = set(workflow) & set(_profile())
    assert not clash, f"keys in both profiles: {sorted(clash)}"
    assert "resources" not in workflow


# ---- a real cluster ----------------------------------------------------------


@pytest.mark.slurm
def test_cluster_has_gpu_node(slurm_cluster):
    out = slurm_cluster.run(
        ["sinfo", "--noheader", "--partition", slurm_cluster.partition,
         "--format", "%P|%t|%G"]
    ).stdout.strip()
    partition, state, gres = out.split("|")
    assert partition.rstrip("*") == slurm_cluster.partition
    assert state == "idle"
    assert gres == f"gpu:{slurm_cluster.gpu_type}:{slurm_cluster.gpus}"
    assert os.path.isfile(slurm_cluster.env_vars["SLURM_CONF"])


def _record(path):
    text = path.read_text()
    fields = dict(
        line.split("=", 1)
        for line in text.splitlines()[:2]
        if "=" in line
    )
    return text, fields


@pytest.mark.slurm
def test_toy_workflow_via_sbatch_with_project_profile(slurm_cluster, tmp_path):
    cmd = slurm_cluster.snakemake_command(["--snakefile", str(TOY_SNAKEFILE)],
                                          timeout=240)
    res = slurm_cluster.snakemake(
        ["--snakefile", str(TOY_SNAKEFILE)], cwd=tmp_path, timeout=240
    )
    context = (
        f"command: {describe_command(cmd)}\nrc={res.returncode}\n"
        f"--- stderr ---\n{res.stderr[-6000:]}\n"
        f"--- cluster ---\n{slurm_cluster.logs()}"
    )
    assert res.returncode == 0, context
    assert (tmp_path / "results" / "collected.txt").is_file(), context

    gpu_text, gpu = _record(tmp_path / "results" / "train_grpo.txt")
    cpu_text, cpu = _record(tmp_path / "results" / "prepare.txt")

    # both ran as SLURM jobs submitted by this snakemake run
    for fields in (gpu, cpu):
        assert fields["SLURM_JOB_ID"].isdigit(), context
        assert (
            f"has been submitted with SLURM jobid {fields['SLURM_JOB_ID']}"
            in res.stderr
        ), context
    assert gpu["SLURM_JOB_ID"] != cpu["SLURM_JOB_ID"]
    for text in (gpu_text, cpu_text):
        assert f"Partition={slurm_cluster.partition}" in text
        assert "JobName=parallel-scaling_" in text  # slurm-jobname-prefix

    # the GPU rule got a GPU: allocation, device visible to the step
    assert re.search(r"TresPerJob=gres:gpu:1\b", gpu_text), gpu_text
    assert re.search(r"\bGRES=gpu(:\w+)?:1\(IDX:\d\)", gpu_text), gpu_text
    assert re.fullmatch(r"\d+", gpu["CUDA_VISIBLE_DEVICES"]), gpu_text
    # ... with the CPUs per GPU from the profile's set-resources
    cpus_per_gpu = _profile()["set-resources"]["train_grpo"]["cpus_per_gpu"]
    assert f"CpusPerTres=gres:gpu:{cpus_per_gpu}" in gpu_text, gpu_text
    assert f"NumCPUs={cpus_per_gpu} " in gpu_text, gpu_text

    # the CPU rule got none, and the profile's default cpus_per_task
    assert "gres:gpu" not in cpu_text and "GRES=gpu" not in cpu_text, cpu_text
    assert cpu["CUDA_VISIBLE_DEVICES"] == "", cpu_text
    cpus = _profile()["default-resources"]["cpus_per_task"]
    assert f"CPUs/Task={cpus} " in cpu_text, cpu_text
