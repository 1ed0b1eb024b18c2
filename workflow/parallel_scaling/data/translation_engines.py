"""The inference engines of the LLM translation backends: objects that turn prompt strings into
completions (``transformers``: batched ``generate``; ``vllm``: one continuous stream,
:mod:`parallel_scaling.common.vllm_stream`; ``served``: an OpenAI-compatible endpoint,
:mod:`parallel_scaling.common.served`), the sampling settings they share, and ``make_engine``, the
only backend-specific step. :mod:`parallel_scaling.data.translate` builds prompts, calls an engine
and writes rows; it needs nothing else from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from parallel_scaling.dataio import schema
from parallel_scaling.dataio.jsonl import DataError

#: the translation section's defaults (the schema's), under which each nested settings object is read
DEFAULTS: dict[str, Any] = schema.defaults("translation")


class TranslationError(DataError):
    """The source, the translation files or the settings cannot produce translated rows."""


def section(settings: Mapping[str, Any], name: str) -> dict[str, Any]:
    """One nested settings object merged over its defaults."""
    return {**DEFAULTS[name], **(settings.get(name) or {})}


def sampling_settings(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The engine-neutral sampling settings recorded in the sidecar (temperature 0 = greedy)."""
    return {
        "temperature": float(model_cfg["temperature"]),
        "top_p": float(model_cfg["top_p"]),
        "top_k": int(model_cfg["top_k"] or 0),
        "repetition_penalty": float(model_cfg["repetition_penalty"]),
        "max_new_tokens": int(model_cfg["max_new_tokens"]),
        "seed": int(model_cfg["seed"]),
    }


class Engine(Protocol):
    """What the LLM backends need from an inference engine."""

    tokenizer: Any
    #: the longest prompt the engine accepts and where that number comes from (decoding.model_context)
    context: tuple[int | None, str]

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Completions (new text only) for prompt strings, in order."""


class TransformersEngine:
    """Batched ``model.generate`` with left padding; runs on CPU (the test) or a GPU."""

    def __init__(self, model_cfg: Mapping[str, Any]) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from parallel_scaling.common.decoding import model_context, transformers_generation_config

        path = model_cfg["path"]
        self.sampling = sampling_settings(model_cfg)
        self.batch_size = max(1, int(model_cfg["batch_size"]))
        device = model_cfg.get("device") or "auto"
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        dtype = model_cfg.get("dtype") or "auto"
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(self.device)
        self.model.eval()
        self.context = model_context(self.model.config)
        # every decoding field from the settings; only the stop tokens from the model (as vLLM)
        self.model.generation_config = transformers_generation_config(self.sampling, self.tokenizer,
                                                                      self.model.generation_config)
        self._torch = torch

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Generate in batches; seeded once so a rerun with the same settings gives the same text."""
        torch = self._torch
        torch.manual_seed(self.sampling["seed"])
        out: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = list(prompts[start:start + self.batch_size])
            enc = self.tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=True)
            enc = {k: v.to(self.device) for k, v in enc.items()}
            with torch.no_grad():
                generated = self.model.generate(**enc, generation_config=self.model.generation_config)
            new = generated[:, enc["input_ids"].shape[1]:]
            out.extend(self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return out


def vllm_arguments(model_cfg: Mapping[str, Any], vllm_cfg: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``vllm.LLM`` and ``vllm.SamplingParams`` arguments of the vllm backend (checked against the
    pinned vLLM's code by tests/test_vllm_api.py)."""
    from parallel_scaling.common.decoding import vllm_llm_kwargs, vllm_sampling_kwargs

    s = sampling_settings(model_cfg)
    llm = vllm_llm_kwargs(model_cfg["path"], seed=s["seed"], tensor_parallel_size=int(vllm_cfg["tensor_parallel_size"]),
                          gpu_memory_utilization=float(vllm_cfg["gpu_memory_utilization"]),
                          max_model_len=vllm_cfg.get("max_model_len"), dtype=model_cfg.get("dtype") or "auto",
                          enforce_eager=bool(vllm_cfg.get("enforce_eager", False)))
    return llm, vllm_sampling_kwargs(s)


class VllmEngine:
    """``vllm.LLM.generate`` over the same prompt token ids and sampling settings. The engine starts
    at the first ``generate`` (tens of seconds and gigabytes), after the prompts were checked."""

    def __init__(self, model_cfg: Mapping[str, Any], vllm_cfg: Mapping[str, Any]) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from parallel_scaling.common.decoding import model_context

        self.sampling = sampling_settings(model_cfg)
        self.llm_kwargs, self.sampling_kwargs = vllm_arguments(model_cfg, vllm_cfg)
        self.llm: Any = None
        # the same tokenizer object as the transformers engine: prompts are rendered and encoded by it
        self.tokenizer = AutoTokenizer.from_pretrained(model_cfg["path"])
        context, source = model_context(AutoConfig.from_pretrained(model_cfg["path"]), vllm_cfg.get("max_model_len"))
        self.context = (context, "translation.vllm.max_model_len" if source == "max_model_len" else source)

    def generate(self, prompts: Sequence[str]) -> list[str]:
        """Token-id prompts (vLLM never re-tokenizes) in one continuous stream, as the prediction
        engine runs them (``common.vllm_stream``): the engine stays full until the last one."""
        import vllm

        from parallel_scaling.common.decoding import vllm_prompts
        from parallel_scaling.common.vllm_stream import stream

        if self.llm is None:
            self.llm = vllm.LLM(**self.llm_kwargs)
        results = stream(self.llm, dict(enumerate(vllm_prompts(self.tokenizer, prompts))),
                         vllm.SamplingParams(**self.sampling_kwargs))
        return [results[i].outputs[0].text for i in range(len(prompts))]


def served_engine(settings: Mapping[str, Any]) -> Engine:
    """The ``served`` backend: the endpoint of ``translation.served``; the completions API renders the
    prompt with the chat template of ``translation.model.path`` (its tokenizer), the chat API sends
    the messages and needs no local model."""
    from parallel_scaling.jobs.preflight import check_model_path
    from parallel_scaling.common.served import ServedEngine

    model_cfg, cfg = section(settings, "model"), section(settings, "served")
    path, name = model_cfg.get("path"), cfg.get("model") or model_cfg.get("path")
    if not name:
        raise TranslationError("translation.served.model: required for backend 'served' (the model name the "
                               "server knows; or translation.model.path, which vllm serve registers by default)")
    tokenizer, context = None, (None, "unknown")
    if cfg["api"] == "completions":
        if not path:
            raise TranslationError("translation.model.path: required for backend 'served' with api 'completions' "
                                   "(the tokenizer whose chat template renders the prompt, as the other backends)")
        from transformers import AutoConfig, AutoTokenizer

        from parallel_scaling.common.decoding import model_context

        check_model_path(str(path), key="translation.model.path")
        tokenizer = AutoTokenizer.from_pretrained(path)
        context = model_context(AutoConfig.from_pretrained(path))
    return ServedEngine({**sampling_settings(model_cfg), "served": cfg}, str(name), tokenizer, "translation.served",
                        context)


def make_engine(backend: str, settings: Mapping[str, Any]) -> Engine:
    """Construct the engine of an LLM backend (the only backend-specific step)."""
    from parallel_scaling.jobs.preflight import check_model_path, resolve_device

    model_cfg = section(settings, "model")
    if backend == "served":
        return served_engine(settings)
    if not model_cfg.get("path"):
        raise TranslationError(f"translation.model.path: required for backend {backend!r}")
    # before the model is loaded: a GPU (and vLLM) where they are needed, and the model itself
    resolve_device(str(model_cfg.get("device") or "auto"), use_vllm=backend == "vllm",
                   key="translation.model.device", vllm_key="translation.backend: 'vllm'")
    check_model_path(str(model_cfg["path"]), key="translation.model.path")
    if backend == "transformers":
        return TransformersEngine(model_cfg)
    return VllmEngine(model_cfg, section(settings, "vllm"))
