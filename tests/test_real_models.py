"""No silent tiny defaults for real models (issue #27, point 3): planning refuses each setting a
real model would inherit from the tiny study, names it with a sensible value, reads a local model's
size from its config.json and asks for a hub model's. Pure Python, no Snakemake run."""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from parallel_scaling.plan import check_config as configcheck  # noqa: E402
from parallel_scaling.plan import cost_plan, real_models  # noqa: E402

STARTER = ROOT / "configs/examples/my_model.yaml"

QWEN_1P5B = {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 1536, "intermediate_size": 8960,
             "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2,
             "vocab_size": 151936, "tie_word_embeddings": True, "max_position_embeddings": 32768}
LLAMA_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False}
TINY = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
        "num_key_value_heads": 1, "vocab_size": 400, "tie_word_embeddings": True}


def _keys(errors: list[str]) -> set[str]:
    """The keys refused for a tiny default (messages may start with file:line)."""
    return {re.search(r"(\S+): not set", e).group(1) for e in errors if ": not set" in e}


def _check(tmp_path: Path, config: dict) -> tuple[list[str], dict]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    merged, origins = configcheck.load_study([path])
    return configcheck.check_config(merged, origins), merged


def _model_dir(tmp_path: Path, cfg: dict) -> str:
    d = tmp_path / "model"
    d.mkdir(exist_ok=True)
    (d / "config.json").write_text(json.dumps(cfg))
    return str(d)


def test_sizes_from_config_json():
    assert real_models.config_size_b(QWEN_1P5B) == pytest.approx(1.54, abs=0.02)
    assert real_models.config_size_b(LLAMA_8B) == pytest.approx(8.03, abs=0.05)
    assert real_models.config_size_b(TINY) < 0.001
    assert real_models.config_size_b({}) is None


def test_hub_model_with_the_tiny_defaults_is_refused(tmp_path):
    """The issue's case: Qwen2.5-1.5B-Instruct on MGSM, nothing else said. Every tiny default it
    would inherit is named with the line of its section and a value that suits a real model."""
    errors, _ = _check(tmp_path, {
        "study": "mine", "languages": {"parallel_order": ["de", "fr", "es"], "K": 3, "evaluate": ["en", "de", "fr", "es", "sw", "zh"]},
        "models": {"qwen": {"source": "pretrained", "path": "Qwen/Qwen2.5-1.5B-Instruct"}},
        "benchmarks": {"mgsm": {"preset": "mgsm_hf"}}})
    by_key = {k: e for e in errors for k in _keys([e])}
    assert len(by_key) == len(errors) and set(by_key) == {"models.qwen.size_b", "models.qwen.prompt_set", "prediction.max_new_tokens",
                           "source.kind", "translation.backend", "grpo.max_completion_length",
                           "grpo.learning_rate"}, errors
    assert by_key["models.qwen.size_b"].startswith(f"{tmp_path / 'study.yaml'}:")
    assert "(a hub id, not in the local cache) cannot be read here" in by_key["models.qwen.size_b"]
    assert "e.g. prompt_set: boxed_native" in by_key["models.qwen.prompt_set"]
    assert "default 'plain'" in by_key["models.qwen.prompt_set"]
    assert "e.g. max_completion_length: 1024" in by_key["grpo.max_completion_length"]
    assert "default 'synthetic'" in by_key["source.kind"] and "default 'template'" in by_key["translation.backend"]
    # cost-plan refuses the same config instead of planning it at 0.001 B parameters
    with pytest.raises(configcheck.ConfigError, match="models.qwen.size_b"):
        cost_plan.load_config([tmp_path / "study.yaml"])


def test_starter_config_plans_and_each_real_model_key_is_needed(tmp_path):
    """configs/examples/my_model.yaml plans (check-config and cost-plan); without any one of the
    keys a real model needs, planning names that key."""
    merged, origins = configcheck.load_study([STARTER])
    assert configcheck.check_config(merged, origins) == []
    assert cost_plan.load_config([STARTER])["models"]["mine"]["size_b"] == 1.5
    starter = yaml.safe_load(STARTER.read_text())
    needed = [("models", "mine", "size_b"), ("models", "mine", "prompt_set"), ("benchmarks",),
              ("prediction", "max_new_tokens"), ("source",), ("translation", "backend"),
              ("grpo", "max_completion_length"), ("grpo", "learning_rate")]
    for path in needed:
        config = copy.deepcopy(starter)
        node = config
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
        errors, _ = _check(tmp_path, config)
        key = ".".join(path) if path != ("source",) else "source.kind"
        assert key in _keys(errors), (path, errors)


def test_sft_keys_are_needed_when_a_real_model_is_fine_tuned(tmp_path):
    config = yaml.safe_load(STARTER.read_text())
    config["paradigms"] = ["grpo", "sft"]
    errors, _ = _check(tmp_path, config)
    assert _keys(errors) == {"sft.learning_rate", "sft.max_length"} and len(errors) == 2, errors


def test_a_local_tiny_model_is_tiny(tmp_path):
    """A pretrained model whose config.json is tiny (the shipped initial model, the test stand-ins)
    keeps the tiny study's defaults, and its size is read from its config.json."""
    errors, merged = _check(tmp_path, {
        "study": "t", "languages": {"parallel_order": ["de", "fr", "es"], "K": 3, "evaluate": ["en", "de", "fr", "es", "sw", "zh"]},
        "models": {"tiny": {"source": "pretrained", "path": _model_dir(tmp_path, TINY)}}})
    assert errors == []
    assert 0 < merged["models"]["tiny"]["size_b"] < 0.001


def test_a_local_real_model_gets_its_size_from_config_json(tmp_path):
    config = yaml.safe_load(STARTER.read_text())
    del config["models"]["mine"]["size_b"]
    config["models"]["mine"]["path"] = _model_dir(tmp_path, QWEN_1P5B)
    errors, merged = _check(tmp_path, config)
    assert errors == []
    assert merged["models"]["mine"]["size_b"] == pytest.approx(1.54, abs=0.02)
    # ... and the cost plan uses it: 1.5 B parameters of weights, not 0.001 B
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    planned = cost_plan.load_config([tmp_path / "study.yaml"])
    assert planned["models"]["mine"]["size_b"] == pytest.approx(1.54, abs=0.02)
    # a size given explicitly wins
    config["models"]["mine"]["size_b"] = 1.5
    assert _check(tmp_path, config)[1]["models"]["mine"]["size_b"] == 1.5


def test_shipped_studies_still_plan():
    for name in ("config.yaml", "configs/parallel_paper.yaml", "configs/interventional.yaml",
                 "configs/observational.yaml", "configs/gsm8k_import.yaml", "tests/configs/smoke.yaml"):
        merged, origins = configcheck.load_study([ROOT / name])
        errors = configcheck.check_config(merged, origins)
        assert not [e for e in errors if "not set" in e], (name, errors)


def _tiny_marked(node: dict, path: tuple[str, ...], defs: dict) -> list[tuple[str, ...]]:
    """Key paths the schema marks ``x-tiny`` (defaults sized for the tiny study), ``<name>`` for a
    key the user names."""
    if "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in node.items() if k != "$ref"}}
    out = [path] if node.get("x-tiny") else []
    for key, sub in (node.get("properties") or {}).items():
        out += _tiny_marked(sub, (*path, key), defs)
    if isinstance(node.get("additionalProperties"), dict):
        out += _tiny_marked(node["additionalProperties"], (*path, "<name>"), defs)
    return out


def test_every_key_the_schema_marks_tiny_is_refused_for_a_real_model(tmp_path):
    """One list, two places: each key the schema marks ``x-tiny`` (what docs/configuration.md flags as
    sized for the tiny study) is refused when a real model would inherit it (a tiny model's build
    section aside, which a pretrained model never reads)."""
    schema = json.loads((ROOT / "workflow/schemas/config.schema.json").read_text())
    marked = [p for p in _tiny_marked(schema, (), schema.get("$defs", {})) if p != ("models", "<name>", "build")]
    config = yaml.safe_load(STARTER.read_text())
    config["paradigms"] = ["grpo", "sft"]
    config["sft"] = {"learning_rate": 1.0e-5, "max_length": 2048}
    for path in marked:
        path = tuple("mine" if p == "<name>" else p for p in path)
        changed = copy.deepcopy(config)
        node = changed
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
        errors, _ = _check(tmp_path, changed)
        assert ".".join(path) in _keys(errors), (path, errors)


def test_a_cached_hub_models_size_comes_from_its_config(tmp_path, monkeypatch):
    """A hub model already in the local Hugging Face cache (downloaded on the login node) is sized
    from its cached config.json, without the network."""
    repo = tmp_path / "hub" / "models--Qwen--Qwen2.5-1.5B-Instruct"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text(json.dumps(QWEN_1P5B))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    config = yaml.safe_load(STARTER.read_text())
    del config["models"]["mine"]["size_b"]
    errors, merged = _check(tmp_path, config)
    assert errors == []
    assert merged["models"]["mine"]["size_b"] == pytest.approx(1.54, abs=0.02)
