"""A GRPO job killed (SIGKILL) after it saved a step resumes from that step when Snakemake reruns
it with the same inputs, and never when an input changed in between."""

from __future__ import annotations

import copy
import json

import pytest

from helpers import REPO, copy_workflow, kill_after_first_save, kill_snakemake_when, load_yaml, snakemake, write_config

pytestmark = pytest.mark.slow

CKPT = "results/smoke/checkpoints/tiny/grpo/k0/s0"
WORK = "work/smoke/train_grpo/tiny/k0/s0"
LOG = "logs/smoke/train_grpo/tiny/k0/s0.log"
METRICS = "logs/smoke/train_grpo/tiny/k0/s0.metrics.jsonl"


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A small study with its initial model built and its k0 mixture made, shared by both tests."""
    config = copy.deepcopy(load_yaml(REPO / "tests/configs/smoke.yaml"))
    config["paradigms"] = ["grpo"]
    config["languages"]["K"] = 0
    config["languages"]["evaluate"] = ["en", "de", "sw"]
    config["mixtures"]["items"] = 60  # 60 prompts, 2 per step: 30 steps
    config["grpo"]["save_steps"] = 4
    config["source"]["synthetic"]["n_test"] = 20  # 60 prompts to predict, one per batch
    config["prediction"]["batch_size"] = 1
    wd = copy_workflow(tmp_path_factory.mktemp("resume") / "wf")
    write_config(wd / "resume.yaml", config)
    snakemake(wd, "results/smoke/models/tiny/init", "results/smoke/data/mixtures/k0.jsonl", "--configfile", "resume.yaml")
    return config, wd


def test_killed_grpo_job_resumes_only_the_same_computation(study):
    config, wd = study

    # killed, then rerun with another learning rate: starts afresh, the dead state is removed
    kill_after_first_save(wd, CKPT, WORK, "resume.yaml")
    (stale,) = list((wd / WORK).iterdir())
    changed = copy.deepcopy(config)
    changed["grpo"]["learning_rate"] = 0.0002
    write_config(wd / "changed.yaml", changed)
    snakemake(wd, CKPT, "--configfile", "changed.yaml")
    record = json.loads((wd / CKPT / "training_settings.json").read_text())
    assert record["resumed_from"] is None and record["final_step"] == 30
    assert "resuming GRPO from" not in (wd / LOG).read_text()
    assert not stale.exists()
    assert not any((wd / WORK).iterdir()), "a finished run leaves nothing to resume from"

    # killed, then rerun with the same inputs: resumes from the step it saved
    saved = kill_after_first_save(wd, CKPT, WORK, "resume.yaml")
    # the metrics were written while it trained (logging_steps 1): every step up to the kill
    logged = [json.loads(line) for line in (wd / METRICS).read_text().splitlines()]
    assert [r["step"] for r in logged][:saved] == list(range(1, saved + 1))
    assert all("reward" in r and "time" in r for r in logged)
    snakemake(wd, CKPT, "--configfile", "resume.yaml")
    record = json.loads((wd / CKPT / "training_settings.json").read_text())
    resumed = int(record["resumed_from"].rsplit("-", 1)[1])
    assert resumed >= saved > 0
    assert record["final_step"] == 30
    assert "resuming GRPO from" in (wd / LOG).read_text()
    assert not any((wd / WORK).iterdir())
    # the resumed run wrote back the steps its checkpoint logged, then its own: the whole run
    steps = [json.loads(line)["step"] for line in (wd / METRICS).read_text().splitlines()]
    assert steps == list(range(1, 31))


def test_killed_prediction_job_generates_only_what_is_missing(study):
    """Snakemake runs a prediction job and is SIGKILLed with it once some batches are saved; the
    rerun (Snakemake deleted nothing but the job's outputs) generates only the missing prompts,
    and its files equal those of an uninterrupted run of the same job."""
    _config, wd = study
    pred = "results/smoke/predictions/tiny/init/init/s0"
    journal = wd / "work/smoke/predict/tiny/init/init/s0.jsonl"
    snakemake(wd, pred, "--configfile", "resume.yaml")
    whole = {f: (wd / pred / f).read_bytes() for f in ("synth/en.jsonl", "synth/de.jsonl", "synth/sw.jsonl")}
    assert not journal.exists()

    def saved() -> int:
        lines = journal.read_text().splitlines() if journal.is_file() else []
        return len(lines) - 2 if len(lines) >= 4 else 0  # header, batches, maybe one cut off

    kill_snakemake_when(wd, pred, "resume.yaml", saved, extra_args=["--forcerun", "predict"])
    assert journal.is_file()
    snakemake(wd, pred, "--configfile", "resume.yaml")
    log = (wd / "logs/smoke/predict/tiny/init/init/s0.log").read_text()
    done = int(log.split("resuming: ", 1)[1].split()[0])
    assert 0 < done < 60 and f"/{60 - done} prompts" in log
    assert {f: (wd / pred / f).read_bytes() for f in whole} == whole
    assert not journal.exists()
