"""Every shipped study config plans (snakemake -n) without GPUs, network or hub access, and the plan
has the expected number of jobs per rule, computed here from the config (and matching the cost plan).

Each dry run plans into a fresh temporary directory (-d), so results of other runs in the checkout
cannot change the counts. About 20 s in all (the paper-scale DAG of ~250 jobs takes ~7 s)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from parallel_scaling.plan import cost_plan  # noqa: E402

from helpers import SNAKEMAKE, job_stats, offline_env  # noqa: E402

CONFIGS = ["config.yaml", "configs/parallel_paper.yaml", "configs/parallel_paper_fixed_steps.yaml",
           "configs/interventional.yaml", "configs/observational.yaml"]
# configs/gsm8k_import.yaml reads the shared data beside the repository: planned in
# test_study_substitutes.py, with both supplied


def prediction_plan(cfg: dict) -> tuple[int, int]:
    """Prediction jobs beyond one per checkpoint (the extra parts of the split checkpoints, less the
    runs that reuse another's predictions), and those reusing runs."""
    from parallel_scaling.plan import check_config, prediction_jobs

    config = copy.deepcopy(cfg)
    check_config.check_config(config)
    reused = len(prediction_jobs.duplicates(config))
    return sum(len(p) - 1 for p in prediction_jobs.study_parts(config).values()) - reused, reused


def expected_jobs(cfg: dict) -> dict[str, int]:
    """Jobs per rule, from the raw config with the schema's defaults written out here."""
    lang = cfg["languages"]
    en = "en"
    seeds = cfg.get("seeds", [0])
    paradigms = cfg.get("paradigms", ["grpo"])
    mono = lang.get("monolingual", [])
    n_mix = lang["K"] + 1 + len(mono)
    models = cfg["models"]
    trainable = [m for m in models.values() if m.get("train", True)]
    benches = cfg.get("benchmarks", {"synth": {"kind": "synthetic"}})
    trained_langs = {en, *lang["parallel_order"][: lang["K"]], *mono}
    tiny = any(m["source"] == "tiny" for m in models.values())
    all_langs = trained_langs | set(lang["evaluate"]) if tiny else trained_langs  # tiny: pretrained on all
    synthetic = [b for b, s in benches.items() if s.get("kind") == "synthetic"]
    test_langs = {lg for b in synthetic for lg in (benches[b].get("languages") or lang["evaluate"])}
    n_pairs = {b: len(s.get("languages") or lang["evaluate"]) for b, s in benches.items()}
    runs = sum(1 + bool(m.get("trained")) + (len(paradigms) * n_mix * len(seeds) if m.get("train", True) else 0)
               for m in models.values())
    return {
        "source": 1 + bool(test_langs),
        "copy_english": (en in all_langs) + (en in test_langs),
        "translate": len(all_langs - {en}) + len(test_langs - {en}),
        "qc": len(all_langs),
        "qc_table": 1,
        "mixture": n_mix if trainable else 0,
        "benchmark": sum(n for b, n in n_pairs.items() if b not in synthetic),
        "benchmark_manifest": len(benches),
        "build_init_model": sum(m["source"] == "tiny" for m in models.values()),
        "train_grpo": len(trainable) * n_mix * len(seeds) if "grpo" in paradigms else 0,
        "train_sft": len(trainable) * n_mix * len(seeds) if "sft" in paradigms else 0,
        # one job per checkpoint, or its parts where one job would exceed prediction_jobs.max_hours
        # (parallel_scaling.plan.prediction_jobs; tests/test_prediction_jobs.py)
        "predict": runs + prediction_plan(cfg)[0],
        "reuse_predictions": prediction_plan(cfg)[1],
        "score": runs,
        "analyze": 1,
        "plot_training": 1 if trainable else 0,  # an evaluation-only study has no training curves
        "all": 1,
    }


@pytest.mark.parametrize("configfile", CONFIGS)
def test_dry_run_plans_expected_jobs(configfile, tmp_path):
    cmd = [*SNAKEMAKE, "-n", "--quiet", "rules", "--replace-workflow-config",
           "--configfile", str(ROOT / configfile), "--directory", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=offline_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    planned = job_stats(proc.stdout + "\n" + proc.stderr)
    raw = yaml.safe_load((ROOT / configfile).read_text())
    expected = expected_jobs(raw)
    for rule, n in expected.items():
        assert planned.get(rule, 0) == n, f"{configfile}: rule {rule}: planned {planned.get(rule, 0)}, expected {n}"
    unexpected = set(planned) - set(expected)
    assert not unexpected, f"{configfile}: rules not accounted for: {unexpected}"
    # the cost plan sees the same DAG shape
    counts = cost_plan.job_counts(cost_plan.load_config([ROOT / configfile]))
    for rule, n in counts.items():
        assert n == expected[rule], f"cost plan: {rule}: {n} jobs, the DAG has {expected[rule]}"


def test_paper_config_shape():
    cfg = yaml.safe_load((ROOT / "configs/parallel_paper.yaml").read_text())
    lang = cfg["languages"]
    assert len(lang["evaluate"]) == 11 and len(lang["parallel_order"]) == 10
    assert len(set(lang["evaluate"]) - {"en", *lang["parallel_order"][: lang["K"]]}) >= 2
    assert len({m["family"] for m in cfg["models"].values()}) >= 2
    assert len(cfg["seeds"]) >= 2 and cfg["grpo"]["use_vllm"] and cfg["prediction"]["engine"] == "vllm"
    assert set(cfg["benchmarks"]) == {"aime2024_x", "aime2025_x", "gpqa_diamond_x", "math500_x"}


def test_observational_pairs_are_evaluate_only():
    cfg = yaml.safe_load((ROOT / "configs/observational.yaml").read_text())
    for name, m in cfg["models"].items():
        assert m["trained"] and m["train"] is False and m["path"] != m["trained"], name


def test_interventional_covers_kinds_families_sizes():
    cfg = yaml.safe_load((ROOT / "configs/interventional.yaml").read_text())
    models = cfg["models"].values()
    assert {m["kind"] for m in models} >= {"base", "instruct", "math"}
    assert len({m["family"] for m in models}) >= 2 and len({m["size_b"] for m in models}) >= 3
    assert cfg["paradigms"] == ["grpo", "sft"]
