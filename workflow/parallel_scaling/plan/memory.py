"""The memory pre-flight of ``cost-plan``: does each GPU job fit in the chosen GPU's memory?

Weights (sharded as the job's accelerate/DeepSpeed config shards them), optimizer state, and the
KV cache that vLLM reserves for the context length within its memory share, against the GPU's
memory from ``workflow/resources/gpu_throughput.yaml``. Activations are not counted: the check
catches configs that cannot fit, it does not promise that the others will.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from parallel_scaling.plan import study
from parallel_scaling.plan.architectures import kv_bytes_per_token, model_architecture


GB = 1e9


def _check(rule: str, model: str, what: str, parts: list[tuple[str, float]], budget: float, budget_text: str,
           keys: list[str]) -> dict[str, Any]:
    need = sum(v for _, v in parts)
    return {"rule": rule, "model": model, "what": what, "need_gb": need / GB, "budget_gb": budget / GB, "fits": need <= budget,
            "parts": {k: v / GB for k, v in parts}, "budget": budget_text, "keys": keys}


def _shards(config: Mapping[str, Any], section: str, n_gpu: int) -> int:
    """Over how many GPUs the training state is split: ZeRO-3/FSDP shard it, DDP replicates it."""
    path = study.accelerate_config_path(config[section].get("accelerate_config"))
    if not path or not Path(path).is_file():
        return 1
    acc = yaml.safe_load(Path(path).read_text()) or {}
    zero3 = acc.get("distributed_type") == "DEEPSPEED" and int((acc.get("deepspeed_config") or {}).get("zero_stage", 0)) == 3
    return max(1, n_gpu) if zero3 or acc.get("distributed_type") == "FSDP" else 1


def _vllm_check(rule: str, model: str, what: str, params: float, arch: Mapping[str, Any], context: int | None, tp: int,
                util: float, mem_gb: float, overhead_gb: float, keys: list[str], context_from: str,
                dtype: str = "bfloat16") -> dict[str, Any]:
    ctx = int(context or arch["context"])
    src = context_from if context else f"the model's own context ({arch['source']})"
    # float32 (prediction.vllm_dtype, translation.model.dtype) doubles weights and KV cache; auto is
    # counted as bf16, the dtype of the released checkpoints this is for
    scale, name = (2.0, "fp32") if dtype == "float32" else (1.0, "fp16" if dtype == "float16" else "bf16")
    parts = [(f"weights ({name}{f', /{tp} GPUs' if tp > 1 else ''})", 2 * scale * params / tp),
             (f"KV cache for {ctx} tokens ({src})", scale * kv_bytes_per_token(arch) * ctx / tp),
             ("vLLM overhead", overhead_gb * GB)]
    return _check(rule, model, what, parts, util * mem_gb * GB, f"{util} x {mem_gb:g} GB", keys)


def preflight(config: Mapping[str, Any], throughput: Mapping[str, Any], gpu: str) -> dict[str, Any]:
    """Memory per GPU of every GPU job of the study on ``gpu`` (``gpus.<gpu>.memory_gb``).

    vLLM (prediction, translation, GRPO rollouts) must hold the bf16 weights (split over its tensor
    parallelism) and the KV cache of one sequence of its context length inside its memory share, or
    it refuses to start; training holds 16 bytes per parameter (bf16 weights and gradients, fp32
    master weights and AdamW moments), split over the job's GPUs by ZeRO-3, plus a bf16 reference
    model when ``beta`` > 0, beside colocated vLLM. Activations are not counted: what is left is printed.
    """
    fig = throughput["gpus"].get(gpu) or {}
    mem_gb = fig.get("memory_gb")
    if not mem_gb:
        return {"gpu": gpu, "memory_gb": None, "checks": [], "note": f"no memory_gb for {gpu!r}: pre-flight skipped"}
    mem_gb = float(mem_gb)
    mem = throughput.get("memory") or {}
    overhead = float(mem.get("vllm_overhead_gb", 2.0))
    state_bytes = float(mem.get("training_bytes_per_param", 16))
    tok = throughput["tokens"]
    checks: list[dict[str, Any]] = []
    models = config["models"]
    runs = study.runs(config)  # once: recomputing it per run made the pre-flight quadratic in the study's size
    evaluated = sorted({r.model for r in runs})
    trained: dict[str, list[str]] = {}
    for paradigm in ("grpo", "sft"):
        names = sorted({r.model for r in runs if r.paradigm == paradigm})
        if names:
            trained[paradigm] = names

    from parallel_scaling.plan import model_settings

    unread: list[str] = []  # evaluated models whose shape was assumed
    if study.gpus(config, "predict") > 0:
        for name in evaluated:
            m = models[name]
            if m["source"] == "tiny":
                continue
            # the model's own settings and the shape of each checkpoint it evaluates
            p = model_settings.model_settings(config, name, throughput)
            params = float(m["size_b"]) * 1e9
            shapes = model_settings.checkpoint_architectures(config, name, throughput)
            unread += [f"{name} ({path})" for path, a in shapes if not a.get("read")]
            own = m.get("prediction") or {}
            key = lambda k: f"models.{name}.prediction.{k}" if k in own else f"prediction.{k}"  # noqa: E731
            label = lambda path: name if len(shapes) < 2 else f"{name} {path}"  # noqa: E731
            arch = max((a for _, a in shapes), key=lambda a: kv_bytes_per_token(a) * int(a.get("context") or 0),
                       default=model_settings.architecture(config, name, throughput))
            for path, shape in shapes if p["engine"] == "vllm" else []:
                checks.append(_vllm_check("predict", label(path), "vLLM", params, shape, p.get("vllm_max_model_len"),
                                          int(p["vllm_tensor_parallel_size"]), float(p["vllm_gpu_memory_utilization"]),
                                          mem_gb, overhead, [key("vllm_max_model_len"),
                                                             key("vllm_gpu_memory_utilization"),
                                                             key("vllm_tensor_parallel_size")],
                                          key("vllm_max_model_len"), str(p.get("vllm_dtype") or "bfloat16")))
            if p["engine"] != "vllm":
                seqs = int(p["batch_size"]) * int(p["n"])
                ctx = tok["question_tokens"] + int(p["max_new_tokens"])
                parts = [("weights (bf16)", 2 * params),
                         (f"KV cache of {seqs} sequences x {ctx} tokens (prediction.batch_size x n)",
                          kv_bytes_per_token(arch) * seqs * ctx)]
                checks.append(_check("predict", name, "transformers", parts, mem_gb * GB, f"{mem_gb:g} GB",
                                     [key("batch_size"), key("max_new_tokens")]))

    t = config["translation"]
    if t["backend"] == "vllm" and study.gpus(config, "translate") > 0:
        path = t["model"].get("path") or ""
        hit = re.search(r"(\d+(?:\.\d+)?)[bB](?![a-zA-Z])", path)
        size_b = float(hit.group(1)) if hit else float(throughput.get("translation_model_size_b", 7.0))
        v = t.get("vllm") or {}
        checks.append(_vllm_check("translate", path, "vLLM", size_b * 1e9, model_architecture(path, size_b, throughput),
                                  v.get("max_model_len"), int(v.get("tensor_parallel_size", 1)),
                                  float(v.get("gpu_memory_utilization", 0.9)), mem_gb, overhead,
                                  ["translation.vllm.max_model_len", "translation.vllm.gpu_memory_utilization",
                                   "translation.vllm.tensor_parallel_size"], "translation.vllm.max_model_len",
                                  str((t.get("model") or {}).get("dtype") or "auto")))

    for rule, section in study.TRAIN_SECTIONS.items():
        n_gpu = study.gpus(config, rule)
        if n_gpu == 0:
            continue
        s = config[section]
        shards = _shards(config, section, n_gpu)
        colocate = section == "grpo" and s.get("use_vllm")
        share = 1.0 - float(s["vllm_gpu_memory_utilization"]) if colocate else 1.0
        for name in trained.get(section, []):
            m = models[name]
            if m["source"] == "tiny":
                continue
            params = float(m["size_b"]) * 1e9
            parts = [(f"training state ({state_bytes:g} B/parameter, /{shards} GPUs)", state_bytes * params / shards)]
            if section == "grpo" and float(s["beta"]) > 0:
                parts.append((f"reference model (bf16, /{shards} GPUs)", 2 * params / shards))
            keys = [f"gpus.{rule}", f"{section}.accelerate_config"] + ([f"{section}.vllm_gpu_memory_utilization"]
                                                                        if colocate else [])
            checks.append(_check(rule, name, "training", parts, share * mem_gb * GB,
                                 f"{share:.2g} x {mem_gb:g} GB" if colocate else f"{mem_gb:g} GB", keys))
            if colocate:
                arch = model_architecture(m.get("path"), m["size_b"], throughput)
                given = s.get("vllm_max_model_length")
                ctx = int(given or tok["question_tokens"] + int(s["max_completion_length"]))
                checks.append(_vllm_check(
                    rule, name, "colocated vLLM", params, arch, ctx, 1, float(s["vllm_gpu_memory_utilization"]), mem_gb, overhead,
                    ["grpo.vllm_max_model_length", "grpo.vllm_gpu_memory_utilization"],
                    "grpo.vllm_max_model_length" if given else "prompt + grpo.max_completion_length"))
    return {"gpu": gpu, "memory_gb": mem_gb, "checks": checks, "unread": unread}


def format_preflight(gpu: str, pre: Mapping[str, Any] | None) -> list[str]:
    """The pre-flight as lines: one per check, ``ok`` or ``DOES NOT FIT`` with what takes the memory."""
    if not pre:
        return []
    if pre.get("memory_gb") is None:
        return [f"pre-flight: {pre.get('note')}"]
    lines = [f"pre-flight: memory per GPU on {gpu} ({pre['memory_gb']:g} GB; activations not counted)"]
    for c in pre["checks"]:
        parts = " + ".join(f"{v:.1f} GB {k}" for k, v in c["parts"].items())
        verdict = "ok          " if c["fits"] else "DOES NOT FIT"
        rel = "<=" if c["fits"] else ">"
        line = f"  {verdict} {c['rule']} {c['model']} ({c['what']}): {parts} = {c['need_gb']:.1f} GB {rel} {c['budget']} = " \
               f"{c['budget_gb']:.1f} GB"
        if not c["fits"]:
            line += f"  [change: {', '.join(c['keys'])}]"
        lines.append(line)
    if pre.get("unread"):
        lines.append(f"  shape not read (no local config.json, not in the local Hugging Face cache, not in "
                     f"gpu_throughput.yaml architectures), KV cache, context and heads assumed: "
                     f"{'; '.join(pre['unread'])}; add them under architectures: to check them")
    return lines
