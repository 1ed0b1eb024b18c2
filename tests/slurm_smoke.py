"""The smoke study's k0 GRPO checkpoint built, trained and predicted through sbatch with the
project's profile (tests/test_slurm_pipeline.py checks it and starts its killed-controller test
from a copy of it).

Most of its minute and a half is spent waiting on the SLURM plugin's status checks, so the
``slurm_cluster`` fixture (tests/conftest.py) starts it as soon as the cluster is up when a test of
the session needs it (``smoke_on_slurm``), and the cluster's other tests run meanwhile."""

from __future__ import annotations

import copy
from pathlib import Path

from helpers import REPO, copy_workflow, load_yaml, offline_env, write_config
from slurm_cluster import BackgroundRun, SlurmCluster

TARGET = "results/smoke/scored/tiny/grpo/k0/s0/scored.jsonl"
#: the SLURM jobs get the test's offline settings (the plugin passes the submitting environment on)
HF_ENV = {k: v for k, v in offline_env().items() if k.startswith(("HF_", "TRANSFORMERS_"))}
#: the fixture that needs the run
FIXTURE = "smoke_on_slurm"


def smoke_config(**grpo) -> dict:
    """tests/configs/smoke.yaml with GRPO only and English only (k0); ``grpo`` settings on top."""
    config = copy.deepcopy(load_yaml(REPO / "tests/configs/smoke.yaml"))
    config["paradigms"] = ["grpo"]
    config["languages"]["K"] = 0
    config["grpo"].update(grpo)
    return config


def start(cluster: SlurmCluster, wd: Path) -> BackgroundRun:
    """A copy of the workflow in ``wd`` (made here) running to :data:`TARGET` through the cluster."""
    copy_workflow(wd)
    write_config(wd / "slurm.yaml", smoke_config())
    return cluster.start_snakemake([TARGET, "--configfile", "slurm.yaml"], cwd=wd, timeout=900, extra_env=HF_ENV)
