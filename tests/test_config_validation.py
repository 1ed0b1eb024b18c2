"""The config is validated before any job runs; each mistake names the key and the allowed values."""

from __future__ import annotations

import copy

import pytest

from helpers import REPO, load_yaml, snakemake, write_config
from parallel_scaling import study
from parallel_scaling.prompts import missing_languages
from parallel_scaling.synth import LANGUAGES

BASE = load_yaml(REPO / "config.yaml")


def dry_run(tmp_path, config):
    write_config(tmp_path / "bad.yaml", config)
    return snakemake(REPO, "-n", "--configfile", str(tmp_path / "bad.yaml"), "--directory", str(tmp_path),
                     check=False, timeout=120)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(unknown_key=1), "unknown_key"),
        (lambda c: c["grpo"].update(learning_rate="fast"), "learning_rate"),
        (lambda c: c["languages"]["evaluate"].append("xx"), "no templates for ['xx']"),
        (lambda c: c["languages"].update(K=6), "languages.K"),
    ],
    ids=["unknown-key", "wrong-type", "language-without-templates", "K-too-large"],
)
def test_bad_config_stops_before_any_job(tmp_path, mutate, expected):
    config = copy.deepcopy(BASE)
    mutate(config)
    proc = dry_run(tmp_path, config)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert expected in out
    assert not (tmp_path / "results").exists()


def _checked(config):
    from snakemake.utils import validate

    validate(config, str(REPO / "workflow/schemas/config.schema.json"))
    return study.check(config, LANGUAGES, missing_languages)


def test_unseen_languages_must_remain():
    config = copy.deepcopy(BASE)
    config["languages"]["evaluate"] = ["en", "de", "fr", "es", "ru", "zh"]
    errors = _checked(config)
    assert any("at least two evaluated languages must stay out of every mixture" in e for e in errors)
    assert any("allowed K: 0..3" in e for e in errors)


def test_default_config_is_valid_and_shaped_as_documented():
    config = copy.deepcopy(BASE)
    assert _checked(config) == []
    names = [m.name for m in study.mixtures(config)]
    assert names == [f"k{k}" for k in range(config["languages"]["K"] + 1)]
    assert len(study.never_trained(config)) >= 2
    assert config["languages"]["K"] >= 4


def test_schema_fills_every_grpo_default():
    from snakemake.utils import validate

    config = copy.deepcopy(BASE)
    config["grpo"] = {}
    validate(config, str(REPO / "workflow/schemas/config.schema.json"))
    from parallel_scaling.grpo import GRPO_KEYS

    assert set(GRPO_KEYS) <= set(config["grpo"])


def test_multi_gpu_training_launches_one_process_per_gpu_of_the_job(tmp_path):
    """With an accelerate config, the GRPO rule starts `accelerate launch` with as many processes
    as the job's `gpu` resource (what the SLURM profile sets per rule)."""
    config = copy.deepcopy(BASE)
    config["grpo"]["accelerate_config"] = "envs/accelerate/deepspeed_zero3.yaml"
    write_config(tmp_path / "multi.yaml", config)
    proc = snakemake(REPO, "-n", "-p", "results/tiny/checkpoints/tiny/grpo/k1/s0",
                     "--set-resources", "train_grpo:gpu=4", "--configfile", str(tmp_path / "multi.yaml"), "--directory", str(tmp_path), timeout=120)
    out = proc.stdout + proc.stderr
    assert ("-m accelerate.commands.launch --config_file envs/accelerate/deepspeed_zero3.yaml"
            " --num_processes 4 -m parallel_scaling") in out
    assert (REPO / "envs/accelerate/deepspeed_zero3.yaml").exists()


def test_config_overrides_are_typed_inside_lists_and_mappings():
    raw = {"seeds": ["0", "1"], "languages": {"K": "2", "parallel_order": ["no", "de"]},
           "grpo": {"learning_rate": "5e-5", "bf16": "true", "top_k": "-1", "name": "1e-3x"},
           "study": "s1", "analysis": {"offset": "False", "x": "null"}}
    assert study.typed_overrides(raw) == {
        "seeds": [0, 1], "languages": {"K": 2, "parallel_order": ["no", "de"]},
        "grpo": {"learning_rate": 5e-5, "bf16": True, "top_k": -1, "name": "1e-3x"},
        "study": "s1", "analysis": {"offset": False, "x": None}}


def test_list_given_with_config_on_the_command_line_plans_every_seed(tmp_path):
    """`--config 'seeds=[0,1]'` (Snakemake reads list items as strings) validates and plans both seeds."""
    proc = snakemake(REPO, "-n", "--quiet", "rules", "--configfile", str(REPO / "config.yaml"),
                     "--config", "seeds=[0,1]", "languages={K: 1}", "--directory", str(tmp_path), timeout=120)
    out = proc.stdout + proc.stderr
    jobs = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert jobs["train_grpo"] == 2 * 2  # k0, k1 x seeds 0, 1
    assert jobs["predict"] == 2 * 2 + 1  # + the initial model
