"""What the two inference engines (transformers and vLLM) are given, built in one place so that a
prediction or a translation does not depend on which engine ran it.

Why this module exists (each point was a real divergence between the engines):

* **One BOS token.** A chat template that starts with ``{{ bos_token }}`` (Llama 3) renders text that
  already begins with BOS, and a tokenizer that adds BOS itself (Llama's post-processor) adds a
  second one whenever the text is tokenized with special tokens -- which is what vLLM does with a
  text prompt and what TRL's GRPO and SFT trainers do with text prompts. The prompt text is therefore
  kept *without* that leading BOS (:func:`strip_bos`, applied by ``prompts.build_prompt`` and
  ``translate.render_prompt``) and every consumer tokenizes it with the tokenizer's special tokens
  (:func:`encode_prompts`): exactly one BOS everywhere. vLLM receives the token ids themselves
  (:func:`vllm_prompts`), so its own tokenization never runs.
* **The same decoding.** ``model.generate`` fills every decoding field a caller leaves unset from the
  model's ``generation_config.json`` (Qwen2.5: ``top_k=20``, ``repetition_penalty=1.05``) and then from
  transformers' global defaults (``top_k=50``); vLLM, given explicit ``SamplingParams``, takes only the
  EOS ids from that file. :func:`transformers_generation_config` sets every field from our settings
  and takes only the stop tokens from the model, as vLLM does (:func:`stop_token_ids`).
* **The same context.** vLLM refuses a prompt longer than the model's context; transformers silently
  generated past the model's positions (the shipped translation prompts, 344 tokens, on the tiny
  model's 256). :func:`check_prompt_lengths` refuses such a prompt in both engines, before the model
  is loaded, naming the prompt file and the lengths.

The vLLM arguments built here are checked against the pinned vLLM's own code
(``tests/test_vllm_api.py`` with ``tests/fixtures/vllm_api.json``, extracted from the wheel by
``tools/extract_vllm_api.py``). Imports of torch, transformers and vLLM stay inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: engine-neutral decoding settings (prediction section, translation.model section)
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens", "n", "seed")


# --------------------------------------------------------------------------------------------------
# prompt tokens


def adds_bos(tokenizer: Any) -> bool:
    """Whether tokenizing with special tokens puts the BOS token in front (Llama-style tokenizers)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return False
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bool(ids) and ids[0] == bos


def strip_bos(text: str, tokenizer: Any) -> str:
    """``text`` without its leading BOS string when the tokenizer adds BOS itself (else unchanged)."""
    bos = getattr(tokenizer, "bos_token", None)
    if tokenizer is not None and bos and text.startswith(bos) and adds_bos(tokenizer):
        return text[len(bos):]
    return text


def encode_prompts(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Prompt token ids as every engine and trainer gets them: the tokenizer's special tokens added."""
    return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]


def vllm_prompts(tokenizer: Any, texts: Sequence[str]) -> list[dict[str, list[int]]]:
    """vLLM ``TokensPrompt`` dicts: vLLM generates from exactly the ids the transformers engine uses."""
    return [{"prompt_token_ids": ids} for ids in encode_prompts(tokenizer, texts)]


class PromptTooLongError(ValueError):
    """A prompt does not fit the model's context; the message names the prompt file and the lengths."""


#: config.json fields that give a model's context length, in the order vLLM reads them
CONTEXT_FIELDS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "max_sequence_length")


def model_context(model_config: Any, max_model_len: int | None = None) -> tuple[int | None, str]:
    """The longest sequence the engine accepts, and where that number comes from: ``max_model_len``
    when it is set (vLLM's cap), else the model config's own context field; (None, ...) when the
    config names none (then nothing is checked)."""
    if max_model_len:
        return int(max_model_len), "max_model_len"
    text_config = getattr(model_config, "get_text_config", None)  # a multimodal model's language model
    model_config = text_config() if callable(text_config) else model_config
    for name in CONTEXT_FIELDS:
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            return value, f"{name} of the model's config.json"
    return None, "unknown"


def check_prompt_lengths(token_ids: Sequence[Sequence[int]], context: int | None, *, prompt_file: str,
                         source: str = "the model's config.json", labels: Sequence[str] | None = None) -> None:
    """Refuse prompts longer than the context (``PromptTooLongError``), in every engine.

    vLLM would refuse the request itself, and the transformers engine would generate past the model's
    positions: garbage that looks like an answer. ``prompt_file`` is the file the prompts were built
    from (the prompt template and the rows), ``labels`` names each prompt (item id, language)."""
    if not context:
        return
    long = [(len(ids), i) for i, ids in enumerate(token_ids) if len(ids) > context]
    if not long:
        return
    length, i = max(long)
    name = labels[i] if labels else f"prompt {i}"
    raise PromptTooLongError(
        f"{prompt_file}: {len(long)} of {len(token_ids)} prompts are longer than the model's context of "
        f"{context} tokens ({source}); the longest, {name}, is {length} tokens. Shorten the prompt "
        "template or the text, or use a model with a longer context")


# --------------------------------------------------------------------------------------------------
# decoding settings


def sampling(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The engine-neutral settings with their neutral defaults (n = 1, top_k = 0 = off, penalty 1)."""
    return {
        "temperature": float(settings.get("temperature", 0.0)),
        "top_p": float(settings.get("top_p", 1.0)),
        "top_k": int(settings.get("top_k") or 0),
        "repetition_penalty": float(settings.get("repetition_penalty", 1.0)),
        "max_new_tokens": int(settings["max_new_tokens"]),
        "n": int(settings.get("n", 1)),
        "seed": int(settings.get("seed", 0)),
    }


def stop_token_ids(tokenizer: Any, model_generation_config: Any = None) -> list[int]:
    """The tokenizer's EOS id plus the ``eos_token_id`` of the model's generation config: the stop
    tokens vLLM uses (its input processor adds the generation config's EOS ids to every request)."""
    ids: list[int] = []
    for value in (getattr(tokenizer, "eos_token_id", None), getattr(model_generation_config, "eos_token_id", None)):
        for i in ([value] if isinstance(value, int) else list(value or [])):
            if i not in ids:
                ids.append(int(i))
    return ids


def transformers_generation_config(settings: Mapping[str, Any], tokenizer: Any,
                                   model_generation_config: Any = None) -> Any:
    """A ``GenerationConfig`` with every decoding field set from ``settings``: nothing is left for
    ``generate`` to fill from the model's generation config or from transformers' defaults."""
    from transformers import GenerationConfig

    s = sampling(settings)
    sample = s["temperature"] > 0
    return GenerationConfig(
        max_new_tokens=s["max_new_tokens"], num_return_sequences=s["n"], do_sample=sample,
        temperature=s["temperature"] if sample else 1.0, top_p=s["top_p"] if sample else 1.0,
        top_k=s["top_k"] if sample else 0, min_p=None, typical_p=1.0, repetition_penalty=s["repetition_penalty"],
        no_repeat_ngram_size=0, num_beams=1, length_penalty=1.0,
        eos_token_id=stop_token_ids(tokenizer, model_generation_config),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=getattr(tokenizer, "bos_token_id", None),
    )


def vllm_sampling_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments with the same meaning as :func:`transformers_generation_config`
    (vLLM: top_k 0 = off; greedy when temperature is 0)."""
    s = sampling(settings)
    greedy = s["temperature"] == 0
    return {"n": s["n"], "temperature": s["temperature"], "top_p": 1.0 if greedy else s["top_p"],
            "top_k": 0 if greedy else s["top_k"], "repetition_penalty": s["repetition_penalty"],
            "max_tokens": s["max_new_tokens"], "seed": s["seed"]}


def vllm_llm_kwargs(model: str, *, seed: int, tensor_parallel_size: int, gpu_memory_utilization: float,
                    max_model_len: int | None, dtype: str = "auto", enforce_eager: bool = False) -> dict[str, Any]:
    """``vllm.LLM`` arguments. ``generation_config="vllm"``: the model's sampling defaults are never
    used (we always pass SamplingParams); its EOS ids still are (vLLM reads them in either mode)."""
    kwargs: dict[str, Any] = {"model": model, "seed": int(seed), "tensor_parallel_size": int(tensor_parallel_size),
                              "gpu_memory_utilization": float(gpu_memory_utilization), "dtype": dtype,
                              "enforce_eager": bool(enforce_eager), "generation_config": "vllm"}
    if max_model_len:
        kwargs["max_model_len"] = int(max_model_len)
    return kwargs
