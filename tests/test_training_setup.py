"""Bad training input is refused before the long work starts, with a message that says why."""

from __future__ import annotations

import json
import os

import pytest

from parallel_scaling.train import shared as training
from parallel_scaling.train.shared import TrainingSetupError


def test_gpu_requested_on_a_cpu_machine():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainingSetupError, match="'cuda' was requested but torch sees no GPU"):
        training.resolve_device("cuda")
    assert training.resolve_device("auto") == "cpu"


def test_vllm_requested_without_gpu_or_vllm():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(TrainingSetupError, match="use_vllm: true needs a GPU"):
        training.resolve_device("auto", use_vllm=True)


def test_unknown_model_paths(tmp_path, monkeypatch):
    with pytest.raises(TrainingSetupError, match="no such directory"):
        training.check_model_path(str(tmp_path / "missing-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingSetupError, match="no config.json"):
        training.check_model_path(str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(TrainingSetupError, match="not in the Hugging Face cache"):
        training.check_model_path("some-org/some-model-that-is-not-cached")


def test_train_grpo_cli_reports_a_bad_model_path_before_loading_anything(tmp_path, capsys):
    from parallel_scaling.cli import main

    mix = tmp_path / "mix.jsonl"
    mix.write_text(json.dumps({"id": "1", "lang": "en", "question": "1+1?", "answer": "2"}) + "\n")
    settings = {"device": "cpu", "use_vllm": False, "reward_weights": {"correctness": 1.0}}
    rc = main(["train-grpo", "--model", str(tmp_path / "nope"), "--mixture", str(mix), "--settings",
               json.dumps(settings), "--prompt-set", "plain", "--seed", "0", "--workdir", str(tmp_path / "w"),
               "--out", str(tmp_path / "out")])
    assert rc == 2
    assert "no such directory" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out")


def test_settings_hash_is_stable_and_sensitive():
    a = training.settings_hash({"lr": 1e-6, "g": 8}, "m")
    assert a == training.settings_hash({"g": 8, "lr": 1e-6}, "m")
    assert a != training.settings_hash({"lr": 2e-6, "g": 8}, "m")


def test_last_checkpoint_ignores_unfinished_saves(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-8").mkdir()  # killed while saving: no trainer_state.json yet
    assert training.last_checkpoint(tmp_path).endswith("checkpoint-4")
    assert training.last_checkpoint(tmp_path / "none") is None


def test_last_checkpoint_of_several_processes_needs_every_ranks_rng_state(tmp_path, monkeypatch):
    """Each process writes its own RNG state and the main process writes trainer_state.json without
    waiting for the others: a job killed in between leaves a checkpoint whose other rank's file is
    cut short (torch.load then fails on resume), so the run resumes from the one before."""
    import torch

    monkeypatch.setenv("WORLD_SIZE", "2")
    for step in (4, 8):
        ckpt = tmp_path / f"checkpoint-{step}"
        ckpt.mkdir()
        (ckpt / "trainer_state.json").write_text("{}")
        for rank in (0, 1):
            torch.save({"python": [step, rank]}, ckpt / f"rng_state_{rank}.pth")
    assert training.last_checkpoint(tmp_path).endswith("checkpoint-8")
    cut = tmp_path / "checkpoint-8" / "rng_state_1.pth"
    cut.write_bytes(cut.read_bytes()[:40])  # rank 1 killed while writing
    with pytest.raises(Exception):
        torch.load(cut, weights_only=True)
    assert training.last_checkpoint(tmp_path).endswith("checkpoint-4")
    (tmp_path / "checkpoint-4" / "rng_state_1.pth").unlink()  # rank 1 never got to it
    assert training.last_checkpoint(tmp_path) is None
    monkeypatch.setenv("WORLD_SIZE", "1")  # one process: its RNG file is written before the state
    assert training.last_checkpoint(tmp_path).endswith("checkpoint-8")


def test_sft_max_length_that_leaves_no_completion_is_named(tmp_path):
    """SFT drops every example whose completion is truncated away; TRL then fails with
    "num_samples=0". The job says which setting is too small before training."""
    from study_substitutes import build_tiny_hf_model
    from transformers import AutoTokenizer

    from parallel_scaling.train.sft import check_room_for_completions, sft_dataset

    tokenizer = AutoTokenizer.from_pretrained(build_tiny_hf_model(tmp_path / "model"))
    rows = [{"id": "1", "lang": "en", "question": "Sam has 3 pens and buys 4 more. How many pens?", "answer": "7",
             "solution": "3 + 4 = 7"}]
    dataset = sft_dataset(rows, "boxed_native", tokenizer, "####")
    with pytest.raises(ValueError, match=r"sft\.max_length: 16 tokens leave no room for a completion"):
        check_room_for_completions(dataset, tokenizer, 16)
    check_room_for_completions(dataset, tokenizer, 4096)


def test_hub_model_that_cannot_be_fetched_fails_at_the_start_of_the_job(tmp_path):
    """A hub id neither cached nor reachable (here: the hub is a closed local port) stops the job
    in seconds, naming the setting, before any weights are loaded."""
    import subprocess
    import sys

    from helpers import REPO

    code = ("from parallel_scaling.jobs.preflight import check_model_path\n"
            "check_model_path('some-org/some-model', key='translation.model.path')")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "workflow"), "HF_HOME": str(tmp_path / "hf"),
           "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_HUB_ETAG_TIMEOUT": "5",
           "HF_HUB_DOWNLOAD_TIMEOUT": "5"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert "PreflightError: translation.model.path 'some-org/some-model' is not in the Hugging Face cache and the " \
           "hub cannot be reached" in last, proc.stderr[-2000:]


def test_report_to_reaches_the_trainer_and_a_missing_package_is_named(tmp_path):
    """grpo/sft.report_to goes to TRL's report_to (none when empty); an integration whose package is
    not installed stops the job before training, naming the key and the package."""
    import importlib.util

    from parallel_scaling.train.shared import TrainingSetupError, check_reporters, trl_args

    assert trl_args({"report_to": []}, (), "cpu", tmp_path, 0)["report_to"] == "none"
    assert trl_args({"report_to": ["tensorboard", "wandb"]}, (), "cpu", tmp_path, 0)["report_to"] == \
        ["tensorboard", "wandb"]
    check_reporters({"report_to": []}, "grpo", None)
    for name in ("tensorboard", "wandb"):
        if importlib.util.find_spec(name) is None:
            with pytest.raises(TrainingSetupError, match=rf"grpo.report_to: '{name}' needs the {name} package.*"
                                                         rf"pip install {name}"):
                check_reporters({"report_to": [name]}, "grpo", str(tmp_path / "s0.metrics.jsonl"))
