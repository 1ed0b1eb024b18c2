"""No silent tiny defaults for real models: run while planning (check_config, cost-plan).

The schema's defaults are sized for the tiny embedded study (a synthetic arithmetic source, the
template translator, the bare ``plain`` prompt, 24-token completions, 0.001 B parameters). A study
naming a real model (a hub id, or a local model whose config.json says it is large) that leaves one
of those keys unset would silently get it: a 1.5B instruct model trained without its chat template
on 24-token completions, and a cost plan of 0.02 GPU-hours. Each such key is refused here with a
sensible value unless a config file (or ``--config``) sets it; a real model's size comes from its
config.json when it can be read, and must be given (``size_b``) when it cannot (a hub id).

Imported while the Snakefile is parsed: light imports only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from parallel_scaling.plan.study import ENGLISH, translated_languages

#: a model at or below this many billion parameters is the tiny kind (the embedded model has about
#: 0.001 B, the test stand-ins less); GPT-2 small, the smallest model anyone fine-tunes for real, 0.12 B
TINY_MAX_B = 0.05

Explicit = Callable[[Sequence[str]], bool]


@dataclass(frozen=True)
class ModelScale:
    """What planning knows of one initial model's size."""

    real: bool
    size_b: float | None  # from its config.json, None when it cannot be read
    what: str  # how it is described in messages


def config_size_b(cfg: Mapping[str, Any]) -> float | None:
    """Parameters (billions) of a decoder-only transformer from its Hugging Face config.json: the
    embeddings, attention with grouped KV heads, a gated MLP (times the experts of a MoE), and an
    untied output head. None when the fields are missing. Within a few percent for Llama/Qwen/Mistral
    (Qwen2.5-1.5B: 1.54)."""
    cfg = cfg.get("text_config", cfg)
    try:
        hidden, layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
        vocab = int(cfg["vocab_size"])
        inter = int(cfg.get("intermediate_size") or 4 * hidden)
        heads = int(cfg.get("num_attention_heads") or 1)
    except (KeyError, TypeError, ValueError):
        return None
    kv = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // max(heads, 1))
    attention = hidden * heads * head_dim * 2 + hidden * kv * head_dim * 2
    experts = int(cfg.get("num_local_experts") or cfg.get("num_experts") or 1)
    mlp = 3 * hidden * inter * experts
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings", False) else 2)
    return (layers * (attention + mlp) + embeddings) / 1e9


def cached_hub_config(repo_id: str) -> Path | None:
    """A hub model's config.json in the local Hugging Face cache (what its jobs would load), read
    without the network; None when it is not cached or huggingface_hub is missing."""
    from parallel_scaling.jobs.integrity import cached_hub_file

    found = cached_hub_file(repo_id)
    return Path(found) if found else None


def model_scale(m: Mapping[str, Any]) -> ModelScale:
    """A pretrained model is real unless its config.json (its local directory's, or a hub model's in
    the local cache) says it is tiny; built here, tiny."""
    if m.get("source") != "pretrained" or not m.get("path"):
        return ModelScale(False, None, "the embedded tiny model")
    path = str(m["path"])
    cfg_file = Path(path).expanduser() / "config.json"
    if not cfg_file.is_file() and not Path(path).expanduser().exists():
        cfg_file = cached_hub_config(path) or cfg_file
    if cfg_file.is_file():
        try:
            size = config_size_b(json.loads(cfg_file.read_text()))
        except (OSError, ValueError):
            size = None
        if size is not None:
            return ModelScale(size > TINY_MAX_B, size, f"{path} ({size:.3g} B parameters by its config.json)")
        return ModelScale(True, None, f"{path} (its config.json gives no size)")
    return ModelScale(True, None, f"{path} (a hub id, not in the local cache)")


def given_keys(config: Mapping[str, Any], path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Every key path a config sets, read before the schema fills its defaults in: what
    :func:`problems` counts as set explicitly."""
    out: set[tuple[str, ...]] = set()
    for key, value in config.items():
        out.add((*path, str(key)))
        if isinstance(value, Mapping):
            out |= given_keys(value, (*path, str(key)))
    return out


def _trains_real(config: Mapping[str, Any], scales: Mapping[str, ModelScale], paradigm: str) -> bool:
    return paradigm in config["paradigms"] and any(
        scales[name].real and m.get("train", True) for name, m in config["models"].items())


def problems(config: dict[str, Any], explicit: Explicit) -> list[str]:
    """Fill each real model's unset ``size_b`` from its config.json, and list what a study of real
    models would otherwise inherit from the tiny study. ``explicit(path)``: whether a config file
    or --config set that key. Messages start with the key, as check_config expects."""
    scales = {name: model_scale(m) for name, m in config["models"].items()}
    real = {name: s for name, s in scales.items() if s.real}
    errors: list[str] = []
    for name, scale in scales.items():
        m = config["models"][name]
        if explicit(("models", name, "size_b")):
            continue
        if scale.size_b is not None:
            m["size_b"] = float(f"{scale.size_b:.3g}")  # what cost-plan and its pre-flight use
        elif scale.real:
            errors.append(f"models.{name}.size_b: not set, and the size of {scale.what} cannot be read here; "
                          "give its parameters in billions (e.g. size_b: 1.5 for Qwen/Qwen2.5-1.5B-Instruct), "
                          f"the default {m['size_b']} is the tiny model's")
    if not real:
        return errors
    models = ", ".join(sorted(real))

    def refuse(path: tuple[str, ...], value: Any, why: str, instead: str) -> None:
        if not explicit(path):
            errors.append(f"{'.'.join(path)}: not set, so the tiny study's default {value!r} ({why}) would be "
                          f"used for the real model(s) {models}; set it explicitly, e.g. {instead}")

    for name in real:
        refuse(("models", name, "prompt_set"), config["models"][name]["prompt_set"],
               "a bare prompt without the model's chat template",
               "prompt_set: boxed_native (the chat template, \\boxed{} answers; workflow/resources/prompts.yaml)")
    refuse(("benchmarks",), "synth", "held-out synthetic arithmetic",
           "benchmarks: {mgsm: {preset: mgsm}} (presets in workflow/resources/benchmarks.yaml)")
    refuse(("prediction", "max_new_tokens"), config["prediction"]["max_new_tokens"],
           "room for a bare number only", "max_new_tokens: 1024 (a worked solution)")
    trains = _trains_real(config, scales, "grpo") or _trains_real(config, scales, "sft")
    if trains:
        refuse(("source", "kind"), config["source"]["kind"], "generated arithmetic for the tiny model",
               "source: {kind: huggingface, hf_name: openai/gsm8k, ...} as in configs/parallel_paper.yaml, "
               "or kind: file")
        if [lg for lg in translated_languages(config) if lg != ENGLISH]:
            refuse(("translation", "backend"), config["translation"]["backend"],
                   "renders the synthetic items' templates, translates nothing else",
                   "backend: vllm (an LLM translator, configs/parallel_paper.yaml) or import")
    if _trains_real(config, scales, "grpo"):
        refuse(("grpo", "max_completion_length"), config["grpo"]["max_completion_length"],
               "24 tokens: a bare number", "max_completion_length: 1024")
        refuse(("grpo", "learning_rate"), config["grpo"]["learning_rate"],
               "the tiny model's rate, which makes a pretrained model collapse", "learning_rate: 1.0e-6")
    if _trains_real(config, scales, "sft"):
        refuse(("sft", "learning_rate"), config["sft"]["learning_rate"], "the tiny model's rate",
               "learning_rate: 1.0e-5")
        refuse(("sft", "max_length"), config["sft"]["max_length"], "256 tokens: prompt and a short solution",
               "max_length: 2048")
    return errors
