"""A study on real data with the `import` backend: one job per language and per mixture, and
adding a language to the order creates only the new jobs."""

from __future__ import annotations

import json

import pytest

from helpers import REPO, SHARED, copy_workflow, load_yaml, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.skipif(not (SHARED / "mgsm8kinstruct_questions").exists(),
                                reason="shared GSM8K / MGSM8KInstruct data not present")


def _config(order, wd):
    config = load_yaml(REPO / "configs/gsm8k_import.yaml")
    model = wd / "initial-model"  # planning wants an existing model directory; only data jobs run here
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    config["models"]["local"]["path"] = str(model)
    config["source"]["train"] = str(SHARED / "gsm8k/train.jsonl")
    config["source"]["test"] = str(SHARED / "gsm8k/test.jsonl")
    config["source"]["limit"] = {"train": 300, "test": 20}
    config["translation"]["import"]["path"] = str(SHARED / "mgsm8kinstruct_questions/train_{lang}.jsonl")
    config["benchmarks"]["mgsm"]["path"] = str(SHARED / "mgsm/mgsm_test.jsonl")
    config["mixtures"]["items"] = 100
    config["languages"]["parallel_order"] = order
    config["languages"]["K"] = len(order)
    return config


def test_import_backend_plans_per_language_and_per_mixture_jobs(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    order = ["de", "fr", "es"]
    write_config(wd / "a.yaml", _config(order, wd))
    mixtures = [f"results/gsm8k_import/data/mixtures/k{k}.jsonl" for k in range(len(order) + 1)]
    jobs = planned_jobs(snakemake(wd, "-n", *mixtures, "--configfile", "a.yaml"))
    assert jobs["translate"] == len(order) and jobs["copy_english"] == 1  # each language, train split
    assert jobs["qc"] == len(order) + 1 and jobs["mixture"] == len(order) + 1

    snakemake(wd, *mixtures, "--configfile", "a.yaml")
    comp = json.loads((wd / "results/gsm8k_import/data/mixtures/k3.json").read_text())
    assert comp["rows_per_language"] == {lang: comp["ids"] for lang in ["en", *order]}  # parallel
    qc = (wd / "results/gsm8k_import/data/qc/train/fr.tsv").read_text()
    assert "untranslated" in qc or "wrong_language" in qc  # MGSM8KInstruct's English rows in fr

    write_config(wd / "b.yaml", _config([*order, "ru"], wd))
    more = [*mixtures, "results/gsm8k_import/data/mixtures/k4.jsonl"]
    jobs = planned_jobs(snakemake(wd, "-n", *more, "--configfile", "b.yaml"))
    assert jobs == {"translate": 1, "qc": 1, "mixture": 1}
