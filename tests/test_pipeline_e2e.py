"""The whole DAG through real Snakemake on the tiny model (all stages, a few steps each): every
output, a complete run schedules nothing, new file times schedule nothing, a new language adds only
its jobs, and the archive. Reruns after real changes: tests/test_rebuilds.py."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from helpers import SHARED, REPO, assert_archive_job_checked, copy_workflow, load_yaml, planned_jobs, snakemake, write_config
from parallel_scaling.archive.members import is_weights
from parallel_scaling.archive.verify import verify, verify_archive

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


@pytest.mark.slow(seconds=35)  # the archive job (report, crate, validator) and the checks of it
def test_archive_bundles_results_report_and_a_valid_crate(study_dir):
    """`snakemake archive` of the smoke study, with a --config override: the study's own config and
    report (config.yaml is not merged in), only the files of the run's DAG, a crate that passes
    roc-validator for every profile it declares (the archive job's own check), model weights listed by reference (path, size,
    sha256) and checked where they lie, and a provenance chain that catches a swapped initial
    model."""
    os.environ.setdefault("HF_TOKEN", "hf_" + "x" * 30)
    stale = study_dir / "results/smoke/checkpoints/tiny/grpo/k9/s0/model.safetensors"  # as if K had been 9 once
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"weights of an earlier configuration")
    try:
        snakemake(study_dir, "archive", "--configfile", "smoke.yaml", "--config", "archive={agent: Ada Lovelace}")
    finally:
        shutil.rmtree(study_dir / "results/smoke/checkpoints/tiny/grpo/k9")
    tarball = study_dir / "archive/smoke.tar.gz"
    # the archive job ran the reviewer's check (validator, files, chain) on what it wrote; each
    # profile alone: test_archive.py
    result = assert_archive_job_checked(study_dir, "smoke", tarball)
    assert result.records > 40 and result.chain_inputs > 100
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        read = lambda name: tar.extractfile(name).read()  # noqa: E731
        run_config = yaml.safe_load(read("config/run-config.yaml"))
        overrides = yaml.safe_load(read("config/overrides.yaml"))
        with zipfile.ZipFile(io.BytesIO(read("results/smoke/report.zip"))) as report:
            html = next(report.read(n) for n in report.namelist() if n.endswith("report.html")).decode()
        meta = json.loads(read("ro-crate-metadata.json"))
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile() and m.size < 2_000_000)
    assert {"ro-crate-metadata.json", "README.md", "smoke.yaml", "config/run-config.yaml",
            "results/smoke/report.zip", "results/smoke/tables/accuracy.csv", "logs/smoke/train_grpo/tiny/k1/s0.prov.json",
            "results/smoke/models/tiny/init/config.json", "results/smoke/checkpoints/tiny/grpo/k1/s0/tokenizer.json",
            "workflow/parallel_scaling/train/grpo.py"} <= names
    assert not any(is_weights(n) for n in names)  # archive.weights: reference, the default
    assert "config.yaml" not in names  # the default study's config took no part in this run
    assert not any("k9" in n for n in names)  # stale: no job of this run wrote or read it
    assert run_config["study"] == "smoke" and run_config["languages"]["K"] == SMOKE["languages"]["K"]
    assert run_config["archive"]["agent"] == "Ada Lovelace" and run_config["archive"]["license"] == "CC-BY-4.0"
    assert overrides == {"archive": {"agent": "Ada Lovelace"}}
    # the report was built for this study: its mixtures are the smoke study's k0..k2, not config.yaml's
    mixtures = set(re.search(r"\{mixture,([^}]*)\}", html).group(1).split("|"))
    assert mixtures == {"init", "public", *(f"k{k}" for k in range(SMOKE["languages"]["K"] + 1))}
    graph = {e["@id"]: e for e in meta["@graph"]}
    weights = ["results/smoke/models/tiny/init/model.safetensors",
               *(f"results/smoke/checkpoints/tiny/{paradigm}/k{k}/s0/model.safetensors"
                 for paradigm in ("grpo", "sft") for k in range(SMOKE["languages"]["K"] + 1))]
    for name in weights:
        ref = graph["#" + name]
        assert ref["localPath"] == name and ref["sha256"] == hashlib.sha256((study_dir / name).read_bytes()).hexdigest()
        assert {"@id": "#" + name} in graph["#model-weights"]["hasPart"]
    assert len(result.referenced) == len(graph["#model-weights"]["hasPart"]) >= len(weights)
    checked = verify(tarball, profiles=None, run_dir=study_dir)
    assert checked.problems == [] and checked.weights_checked == len(result.referenced)
    elsewhere = verify(tarball, profiles=None, run_dir=study_dir / "absent")
    assert elsewhere.problems == [] and len(elsewhere.weights_absent) == len(result.referenced)
    flipped = study_dir / weights[-1]
    data, stat = flipped.read_bytes(), flipped.stat()
    try:
        flipped.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
        problems = verify_archive(tarball, profiles=None, run_dir=study_dir)
    finally:  # the module's study stays as it was
        flipped.write_bytes(data)
        os.utime(flipped, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert len(problems) == 1 and weights[-1] in problems[0] and "does not match its sha256" in problems[0]
    workflow = graph["Snakefile"]
    steps = {graph[s["@id"]]["name"] for s in workflow["step"]}
    assert {"build_init_model", "train_grpo", "train_sft", "predict", "score", "analyze", "qc_table"} <= steps
    # each command's tool points at its module in the crate (a stage sub-package, commands.COMMANDS)
    assert graph["#tool-train-grpo"]["url"] == {"@id": "workflow/parallel_scaling/train/grpo.py"}
    assert graph["#tool-qc-table"]["url"] == {"@id": "workflow/parallel_scaling/data/qc.py"}
    jobs = [e for e in graph.values() if e["@type"] == "CreateAction" and e["instrument"]["@id"] != "Snakefile"]
    assert len(jobs) == result.records
    assert all(graph[j["agent"]["@id"]]["name"] == "Ada Lovelace" and j.get("result") for j in jobs)
    assert b"hf_" + b"x" * 30 not in blob

    # a reviewer's check fails when the checkpoints were not trained from the referenced initial model
    swapped = study_dir / "archive/swapped.tar.gz"
    name = "results/smoke/models/tiny/init/model.safetensors"
    old_sha, new_sha = graph["#" + name]["sha256"], "0" * 64
    with tarfile.open(tarball) as src, tarfile.open(swapped, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name == "ro-crate-metadata.json":
                crate = json.loads(data)
                for entity in crate["@graph"]:
                    if entity["@id"] == "#" + name:
                        entity["sha256"] = new_sha
                data = json.dumps(crate).encode()
            member.size = len(data or b"")
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    problems = verify_archive(swapped, profiles=None)
    for paradigm in ("grpo", "sft"):
        for k in range(SMOKE["languages"]["K"] + 1):
            record = f"logs/smoke/train_{paradigm}/tiny/k{k}/s0.prov.json"
            assert any(record in p and name in p and old_sha in p and new_sha in p for p in problems), record
    assert all(name in p for p in problems)
