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
