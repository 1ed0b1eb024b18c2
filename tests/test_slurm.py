"""The project's SLURM profile (slurm/config.yaml) and a real sbatch run.

The profile checks need nothing. The tests marked ``slurm`` run against the
private single-node cluster of the ``slurm_cluster`` fixture (root and
``.ci/install-slurm.sh`` needed, skipped otherwise): the toy workflow
tests/slurm_toy/Snakefile goes through sbatch with the project's profile,
only the site values (partition, account) and the status polling intervals
overridden on the command line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import SNAKEMAKE, offline_env, printed_jobs
from parallel_scaling.jobs import running_jobs
from slurm_cluster import (
    PROJECT_PROFILE,
    REPO_ROOT,
    WORKFLOW_PROFILE,
    describe_command,
)

TOY_SNAKEFILE = REPO_ROOT / "tests" / "slurm_toy" / "Snakefile"
GPU_RULES = ("train_grpo", "train_sft", "predict", "build_init_model", "translate")


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
    """The profile says where GPU jobs run and what else they get, never how many GPUs: Snakemake
    applies set-resources over a rule's own resources, so a `gpu` here would replace the study's."""
    set_resources = _profile()["set-resources"]
    for rule in GPU_RULES:
        res = set_resources[rule]
        assert "gpu" not in res and "gpus" not in res and "tasks" not in res, rule
        assert res["cpus_per_gpu"] >= 1, rule
        # 0 = unset: otherwise the default cpus_per_task wins over cpus_per_gpu
        assert res["cpus_per_task"] == 0, rule
        assert res["runtime"] > 0, rule
    text = (PROJECT_PROFILE / "config.yaml").read_text()
    assert re.search(r"^\s+#\s*gpu_model:", text, re.M), "gpu_model hint missing"
    assert not re.search(r"^\s+gpus?:", text, re.M)


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory):
    """A dry run of the paper-scale study through the SLURM profile, as a user would start it."""
    wd = tmp_path_factory.mktemp("paper")
    res = subprocess.run(
        [*SNAKEMAKE, "-n", "-p", "--profile", "slurm",
         "--configfile", "configs/parallel_paper.yaml", "--directory", str(wd)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=offline_env())
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return printed_jobs(res.stdout + res.stderr)


def test_paper_study_gpu_requests_through_the_slurm_profile(paper_plan):
    """Each GPU rule asks SLURM for the study's GPUs (configs/parallel_paper.yaml: 8 per GRPO run, 4 per
    translation with tensor parallelism 4, 1 per prediction) on the profile's GPU partition; each GRPO
    launch starts one process per GPU; English is copied locally and the cheap rules stay local."""
    from parallel_scaling.plan import cost_plan
    from parallel_scaling.plan import study

    config = cost_plan.load_config([REPO_ROOT / "configs/parallel_paper.yaml"])
    profile = _profile()["set-resources"]
    by_rule: dict[str, list[dict]] = {}
    for job in paper_plan:
        by_rule.setdefault(job["rule"], []).append(job)
    expected = {"train_grpo": 8, "translate": 4, "predict": 1}
    assert {r: study.gpus(config, r) for r in expected} == expected
    for rule, n in expected.items():
        assert by_rule[rule], rule
        for job in by_rule[rule]:
            assert job["resources"].get("gpu") == str(n), (rule, job["resources"])
            assert job["resources"]["slurm_partition"] == profile[rule]["slurm_partition"], rule
            assert job["resources"]["cpus_per_gpu"] == str(profile[rule]["cpus_per_gpu"]), rule
    assert len(by_rule["train_grpo"]) == 24
    for job in by_rule["train_grpo"]:
        launch = re.search(r"accelerate\.commands\.launch --config_file (\S+) --num_processes (\d+) ", job["shell"])
        assert launch, job["shell"][:300]
        assert launch.group(1).endswith("envs/accelerate/deepspeed_zero3.yaml")
        assert int(launch.group(2)) == int(job["resources"]["gpu"])
    for rule in ("copy_english", "source", "qc", "mixture", "benchmark", "score", "analyze"):
        for job in by_rule.get(rule, []):
            assert "gpu" not in job["resources"], (rule, job["resources"])
    assert by_rule["copy_english"], "English is copied by a local rule, not a 4-GPU translation job"
    assert not [j for j in by_rule["translate"] if "/en.jsonl" in j["shell"]]
    # the cost plan reads the same numbers
    plan = cost_plan.plan(config, cost_plan.load_throughput(), "h100")
    for rule, n in expected.items():
        assert plan["rules"][rule]["gpus_per_job"] == n, rule


LOCAL_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.enums import Quietness
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1),
                      config_settings=ConfigSettings(configfiles=[Path(sys.argv[1])]),
                      snakefile=Path(sys.argv[2]), workdir=Path(sys.argv[3]))
    wf.dag(DAGSettings())
    print(json.dumps(sorted(wf._workflow._localrules)))
"""


@pytest.mark.parametrize("configfile,translate_local", [("config.yaml", True),
                                                         ("configs/parallel_paper.yaml", False)])
def test_translation_runs_where_its_backend_needs(configfile, translate_local, tmp_path):
    """A template/import translation is a local rule (no model, no GPU); an LLM translation is
    submitted; copying the English rows is always local."""
    res = subprocess.run([sys.executable, "-c", LOCAL_RULES, str(REPO_ROOT / configfile),
                          str(REPO_ROOT / "Snakefile"), str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    local = set(json.loads(res.stdout.strip().splitlines()[-1]))
    assert {"copy_english", "source", "qc", "mixture", "score"} <= local
    assert ("translate" in local) is translate_local
    assert not local & {"train_grpo", "train_sft", "predict", "build_init_model"}


def test_local_runs_declare_gpus_so_resources_gpu_keeps_them_apart(tmp_path):
    """On a workstation `--resources gpu=1` limits the jobs that declare a `gpu` resource: every GPU
    rule of the tiny model's recipe (the default study with the model built here) declares one
    (gpus section defaults), a template translation none."""
    res = subprocess.run(
        [*SNAKEMAKE, "-n", "-p", "--cores", "2", "--resources", "gpu=1",
         "--directory", str(tmp_path), "--snakefile", str(REPO_ROOT / "Snakefile"),
         "--configfile", str(REPO_ROOT / "models/tiny-qwen2/recipe.yaml")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, env=offline_env())
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = printed_jobs(res.stdout + res.stderr)
    seen = set()
    for job in jobs:
        if job["rule"] in ("build_init_model", "train_grpo", "predict"):
            assert job["resources"].get("gpu") == "1", (job["rule"], job["resources"])
            seen.add(job["rule"])
        elif job["rule"] == "translate":
            assert job["resources"].get("gpu", "0") == "0", job["resources"]
    assert seen == {"build_init_model", "train_grpo", "predict"}


def test_profile_accepted_by_snakemake(tmp_path):
    """`snakemake --profile slurm` from the repository root parses the
    profile (unknown keys or bad values would fail here) together with the
    workflow profile, and the GPU rule gets the profile's GPU resources."""
    res = subprocess.run(
        [*SNAKEMAKE, "--profile", "slurm",
         "--snakefile", str(TOY_SNAKEFILE), "--directory", str(tmp_path),
         "--dry-run"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=offline_env(),
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
    # a campaign keeps going after a failed job; a local run stops (Snakemake's default), and the
    # workflow profile, which would override the SLURM profile, does not set it
    assert "keep-going" not in workflow and _profile()["keep-going"] is True
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


# ---- site values checked before the first submission (issue #27) ------------


def test_shipped_placeholders_are_named_with_their_line():
    """The shipped `slurm_account: myaccount` is a placeholder: a job submitted with it is refused,
    naming the profile line; a real account or none passes."""
    from parallel_scaling.plan import slurm_profile

    profile = slurm_profile.load_profile(PROJECT_PROFILE)
    account = profile.setting("predict", "slurm_account")
    assert account.value == "myaccount"
    text = (PROJECT_PROFILE / "config.yaml").read_text().splitlines()
    assert text[account.line - 1].strip().startswith("slurm_account:")
    jobs = [("predict", {"slurm_account": "myaccount"}), ("train_grpo", {"slurm_account": "myaccount"})]
    (err,) = slurm_profile.placeholder_errors(jobs, profile)
    assert err.startswith(f"{account.where()} (default-resources: slurm_account): 'myaccount'")
    assert "jobs of predict, train_grpo" in err and "sacctmgr" in err
    assert slurm_profile.placeholder_errors([("predict", {"slurm_account": "lab42"}), ("predict", {})],
                                            profile) == []


def test_unknown_partition_named_with_its_line():
    from parallel_scaling.plan import slurm_profile

    profile = slurm_profile.load_profile(PROJECT_PROFILE)
    gpu = profile.setting("predict", "slurm_partition")
    jobs = [("predict", {"slurm_partition": "gpu"}), ("score", {"slurm_partition": "batch"})]
    (err,) = slurm_profile.partition_errors(jobs, {"batch", "debug"}, profile)
    assert err.startswith(f"{gpu.where()} (set-resources: predict: slurm_partition): partition 'gpu'")
    assert "`sinfo` lists batch, debug" in err
    assert slurm_profile.partition_errors(jobs, None, profile) == []  # sinfo unavailable: not checked


def test_profile_folder_from_the_command_line(tmp_path, monkeypatch):
    from parallel_scaling.plan import slurm_profile

    assert slurm_profile.profile_file(["snakemake", "--profile", "slurm"], REPO_ROOT) == REPO_ROOT / "slurm"
    assert slurm_profile.profile_file(["snakemake", f"--profile={tmp_path}"]) == tmp_path
    assert slurm_profile.profile_file(["snakemake", "-n"]) is None
    assert slurm_profile.runtime_minutes("1d6h") == 1800 and slurm_profile.runtime_minutes(90) == 90
    assert slurm_profile.runtime_minutes("soon") is None


@pytest.mark.slurm
def test_placeholder_account_and_unknown_partition_refused_before_submission(slurm_cluster, tmp_path):
    """The pipeline through the real cluster with the profile's placeholder account left in, the
    profile's GPU partition (which this cluster lacks) and a GRPO runtime shorter than its
    estimate: the run stops after planning with each named, and nothing is submitted or run, not
    even a local job."""
    from helpers import REPO, copy_workflow, load_yaml, write_config

    config = load_yaml(REPO / "tests/configs/smoke.yaml")
    wd = copy_workflow(tmp_path / "wf")
    write_config(wd / "slurm.yaml", config)
    defaults = slurm_cluster.profile_default_resources(slurm_account="myaccount")
    # set-resources as shipped but for the partition of predict
    sets = [s for s in slurm_cluster.profile_set_resources() if not s.startswith("predict:slurm_partition")]
    sets.append("predict:slurm_partition=gpu")
    # and a runtime no job fits in: named with the estimate (from the command line, not a profile line)
    sets = [s for s in sets if not s.startswith("train_grpo:runtime")] + ["train_grpo:runtime=0"]
    res = slurm_cluster.snakemake(["--configfile", "slurm.yaml"], cwd=wd, timeout=240,
                                  default_resources=defaults, set_resources=sets)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "not submitted, the SLURM profile needs editing" in out, out[-3000:]
    assert "(default-resources: slurm_account): 'myaccount' is the shipped placeholder" in out
    assert f"partition 'gpu' does not exist on this cluster (jobs of predict); `sinfo` lists {slurm_cluster.partition}" in out
    assert re.search(r"runtime \(from the command line or another profile.*\): 3 train_grpo job\(s\) need longer "
                     r"than their runtime of 0 h: train_grpo tiny/k\d/s0 is estimated at", out), out[-3000:]
    assert "submitted with SLURM jobid" not in out
    # no job of this run in the queue (the SLURM smoke run of tests/slurm_smoke.py may have its own)
    queue = slurm_cluster.run(["squeue", "--noheader", "--format", running_jobs.SQUEUE_FORMAT]).stdout
    assert not running_jobs.parse_squeue(queue, wd), queue
    assert not (wd / "results").exists()


KEEP_GOING_SNAKEFILE = """
localrules: all

rule all:
    input: "results/bad.txt", "results/after.txt"

rule bad:
    output: "results/bad.txt"
    shell: "echo 'the cause, in the log' >&2; exit 3"

rule slow:
    output: "results/slow.txt"
    shell: "sleep 5; touch {output}"

rule after:
    input: "results/slow.txt"
    output: "results/after.txt"
    shell: "touch {output}"
"""


@pytest.mark.slurm
def test_failed_job_does_not_stop_independent_jobs_on_the_cluster(slurm_cluster, tmp_path):
    """With the project's profile (keep-going: true) a job that fails on the cluster, after its
    retry, does not stop the others: a job submitted only after the failure still runs."""
    (tmp_path / "Snakefile").write_text(KEEP_GOING_SNAKEFILE)
    res = slurm_cluster.snakemake(["--snakefile", str(tmp_path / "Snakefile")], cwd=tmp_path, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert (tmp_path / "results/after.txt").is_file(), out[-4000:] + slurm_cluster.logs()
    assert not (tmp_path / "results/bad.txt").exists()
    assert out.count("Error in rule bad") >= 1 and "Trying to restart job" in out  # retries: 1
