"""The whole DAG through real Snakemake on the tiny model (all stages, a few steps each): every
output, a complete run schedules nothing, new file times schedule nothing, a new language adds only
its jobs, and the archive. Reruns after real changes: tests/test_rebuilds.py."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from helpers import SHARED, copy_workflow, load_yaml, planned_jobs, snakemake, write_config, REPO

pytestmark = pytest.mark.slow

SMOKE = load_yaml(REPO / "tests/configs/smoke.yaml")


def smoke_config() -> dict:
    config = copy.deepcopy(SMOKE)
    mgsm = SHARED / "mgsm" / "mgsm_test.jsonl"
    if mgsm.exists():  # the real MGSM through the CPU engine, a few items per language
        config["benchmarks"]["mgsm"] = {"preset": "mgsm", "kind": "file", "path": str(mgsm), "limit": 4}
    return config


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("e2e"))
    write_config(wd / "smoke.yaml", smoke_config())
    snakemake(wd, "--configfile", "smoke.yaml", timeout=1500)
    return wd


def dry(wd: Path, config: str = "smoke.yaml") -> dict[str, int]:
    return planned_jobs(snakemake(wd, "-n", "--configfile", config))


def test_every_stage_produced_its_outputs(study_dir):
    r = study_dir / "results/smoke"
    langs = SMOKE["languages"]["evaluate"]
    for lang in langs:
        assert (r / f"data/translated/test/{lang}.jsonl").exists()
        assert (r / f"data/parallel/train/{lang}.jsonl").exists()
    for k in range(SMOKE["languages"]["K"] + 1):
        comp = json.loads((r / f"data/mixtures/k{k}.json").read_text())
        assert comp["rows"] == SMOKE["mixtures"]["items"] * (k + 1)  # additive budget
        for paradigm in ("grpo", "sft"):
            ckpt = r / f"checkpoints/tiny/{paradigm}/k{k}/s0"
            settings = json.loads((ckpt / "training_settings.json").read_text())
            assert settings["paradigm"] == paradigm
            assert (ckpt / "curves.csv").exists()
    grpo = json.loads((r / "checkpoints/tiny/grpo/k1/s0/training_settings.json").read_text())
    for key in ("num_generations", "learning_rate", "beta", "loss_type", "scale_rewards", "temperature"):
        assert key in grpo["trainer_args"]
    acc = pd.read_csv(r / "tables/accuracy.csv")
    assert set(acc["lang"]) == set(langs)
    assert {"init", "grpo", "sft"} <= set(acc["paradigm"])
    assert acc["accuracy"].between(0, 1).all()
    assert (r / "tables/law.md").read_text().strip()
    for plot in ("scaling", "heatmap", "mti", "training"):
        assert (r / f"plots/{plot}.png").stat().st_size > 1000
        assert (r / f"plots/{plot}.pdf").exists()
    prov = json.loads((study_dir / "logs/smoke/train_grpo/tiny/k1/s0.prov.json").read_text())
    assert prov["command"] == "train-grpo" and prov["inputs"]


def test_mgsm_scored_through_the_cpu_engine(study_dir):
    if not (SHARED / "mgsm" / "mgsm_test.jsonl").exists():
        pytest.skip("shared MGSM data not present")
    scored = study_dir / "results/smoke/scored/tiny/init/init/s0/scored.jsonl"
    rows = [json.loads(x) for x in scored.read_text().splitlines()]
    rows = [r for r in rows if (r["benchmark"], r["lang"]) == ("mgsm", "zh")]
    assert len(rows) == 4 and all("correct" in r and "response" in r for r in rows)


def test_complete_run_schedules_nothing(study_dir):
    assert dry(study_dir) == {}


def test_fresh_clone_file_times_trigger_nothing(study_dir):
    """git sets new mtimes on every code file of a clone; code is tracked by content, not time."""
    now = time.time() + 60
    for path in list((study_dir / "workflow").rglob("*")) + [study_dir / "Snakefile"]:
        if path.is_file():
            os.utime(path, (now, now))
    assert dry(study_dir) == {}


def test_adding_a_language_adds_only_new_jobs(study_dir):
    config = smoke_config()
    config["languages"]["parallel_order"] = [*SMOKE["languages"]["parallel_order"], "es"]
    config["languages"]["K"] = SMOKE["languages"]["K"] + 1
    write_config(study_dir / "more.yaml", config)
    jobs = dry(study_dir, "more.yaml")
    # the new mixture, its two trained checkpoints and their evaluation; then the analysis
    assert jobs == {"mixture": 1, "train_grpo": 1, "train_sft": 1, "predict": 2, "score": 2, "analyze": 1,
                    "plot_training": 1, "all": 1}


def test_archive_bundles_results_report_and_a_valid_crate(study_dir):
    import tarfile

    from parallel_scaling.archive import verify_archive

    os.environ.setdefault("HF_TOKEN", "hf_" + "x" * 30)
    snakemake(study_dir, "archive", "--configfile", "smoke.yaml")
    tarball = study_dir / "archive/smoke.tar.gz"
    assert verify_archive(tarball) == []
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        assert "ro-crate-metadata.json" in names
        assert any(n.endswith("report.zip") for n in names)
        assert any(n.endswith("tables/accuracy.csv") for n in names)
        assert any(n.endswith(".prov.json") for n in names)
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile() and m.size < 2_000_000)
    assert b"hf_" + b"x" * 30 not in blob
