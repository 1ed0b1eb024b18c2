"""Prediction settings per model: the study's ``prediction`` section, a model's own
``models.<name>.prediction`` over it, and the tensor parallelism picked where none is given.

A 1.5B math model with a 4k context and a 32B reasoning model with 128k cannot share one
``max_new_tokens`` or one tensor parallelism: 32B weights do not fit one H100 beside a long KV
cache, and a 7B model's 28 attention heads do not divide by 8 (vLLM refuses to start after the job
queued for a whole node). ``vllm_tensor_parallel_size: null`` (the default) lets the planner pick,
per model, the smallest of 1, 2, 4, 8 GPUs that divides the model's attention heads and KV heads
and holds its bf16 weights and the KV cache of one sequence of its context on
``prediction_jobs.gpu`` (the memory pre-flight's figures). The model's shape is read from the
evaluated checkpoint's config.json (local folder or local Hugging Face cache), else from the
throughput file's ``architectures`` table; a shape that could not be read is said so.

Light imports only (the Snakefile imports this while planning).
"""

from __future__ import annotations

from typing import Any, Mapping

#: keys a model may set for itself under ``models.<name>.prediction`` (the engine and device stay
#: the study's: one prediction environment per study)
PER_MODEL = ("temperature", "top_p", "top_k", "repetition_penalty", "n", "max_new_tokens", "batch_size", "seed",
             "vllm_gpu_memory_utilization", "vllm_tensor_parallel_size", "vllm_max_model_len",
             "vllm_enforce_eager", "vllm_dtype")
TP_CHOICES = (1, 2, 4, 8)


def checkpoint_paths(config: Mapping[str, Any], model: str) -> list[str]:
    """Where the evaluated checkpoints of ``model`` are read from: the initial model, then its
    public trained checkpoint (a pair shares one architecture; checkpoints trained here have the
    initial model's)."""
    m = config["models"][model]
    return [str(p) for p in (m.get("path"), m.get("trained")) if p]


def checkpoint_architectures(config: Mapping[str, Any], model: str, throughput: Mapping[str, Any]
                             ) -> list[tuple[str, dict[str, Any]]]:
    """(path, shape) of each checkpoint ``model``'s runs evaluate, each read on its own (a pair's
    public checkpoint may have a longer context than its starting model); one that cannot be read
    takes the pair's readable shape, flagged ``read`` False (the pre-flight names it)."""
    from parallel_scaling.plan.architectures import model_architecture

    size_b = float(config["models"][model]["size_b"])
    shapes = [(path, model_architecture(path, size_b, throughput)) for path in checkpoint_paths(config, model)]
    known = next((a for _, a in shapes if a.get("read")), None)
    return [(path, a if a.get("read") or known is None else {**known, "read": False,
                                                              "source": f"assumed like {known['source']}"})
            for path, a in shapes]


def architecture(config: Mapping[str, Any], model: str, throughput: Mapping[str, Any]) -> dict[str, Any]:
    """The shape of ``model``'s checkpoints: the first of them whose config.json or table entry can
    be read, else the size-based fallback (``read`` False)."""
    from parallel_scaling.plan.architectures import model_architecture

    size_b = float(config["models"][model]["size_b"])
    found = None
    for path in checkpoint_paths(config, model):
        arch = model_architecture(path, size_b, throughput)
        if arch.get("read"):
            return arch
        found = found or arch
    return found or model_architecture(None, size_b, throughput)


def tp_divides(arch: Mapping[str, Any], tp: int) -> bool:
    """Whether vLLM can split the model over ``tp`` GPUs: the attention heads divide by it, and the
    KV heads divide by it or it by them (vLLM then replicates them). Unknown heads: assumed so."""
    heads, kv = arch.get("heads"), arch.get("kv_heads")
    if heads and int(heads) % tp:
        return False
    return not kv or int(kv) % tp == 0 or tp % int(kv) == 0


def memory_need_gb(arch: Mapping[str, Any], size_b: float, context: int, tp: int, overhead_gb: float) -> float:
    """Memory per GPU of a vLLM prediction: bf16 weights and the KV cache of one sequence of
    ``context`` tokens over ``tp`` GPUs, plus vLLM's overhead (as the pre-flight counts it)."""
    from parallel_scaling.plan.architectures import kv_bytes_per_token

    return (2 * size_b * 1e9 + kv_bytes_per_token(arch) * context) / tp / 1e9 + overhead_gb


def pick_tp(arch: Mapping[str, Any], size_b: float, settings: Mapping[str, Any], throughput: Mapping[str, Any],
            gpu: str, others: tuple[Mapping[str, Any], ...] = ()) -> int:
    """The smallest tensor parallelism of TP_CHOICES that divides the heads and fits ``gpu``
    (the largest that divides them when none fits: the pre-flight then says it does not fit)."""
    fig = throughput["gpus"].get(gpu) or {}
    mem_gb = float(fig.get("memory_gb") or 0)
    overhead = float((throughput.get("memory") or {}).get("vllm_overhead_gb", 2.0))
    context = int(settings.get("vllm_max_model_len") or arch.get("context") or 0)
    usable = [tp for tp in TP_CHOICES if tp_divides(arch, tp) and all(tp_divides(a, tp) for a in others)] or [1]
    for tp in usable:
        if not mem_gb or memory_need_gb(arch, size_b, context, tp, overhead) \
                <= float(settings["vllm_gpu_memory_utilization"]) * mem_gb:
            return tp
    return usable[-1]


def model_settings(config: Mapping[str, Any], model: str, throughput: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The prediction settings of ``model``'s jobs: the study's, the model's own over them, and
    the tensor parallelism resolved (1 with the transformers engine; picked for vLLM when null)."""
    m = config["models"][model]
    s = {**config["prediction"], **(m.get("prediction") or {})}
    given = (config.get("gpus") or {}).get("predict")
    if s.get("vllm_tensor_parallel_size") is None:
        if s.get("engine") == "vllm" and given is not None:
            s["vllm_tensor_parallel_size"] = int(given)
        elif s.get("engine") != "vllm" or m.get("source") == "tiny":
            s["vllm_tensor_parallel_size"] = 1
        else:
            from parallel_scaling.plan.throughput import load_throughput

            throughput = throughput if throughput is not None else load_throughput()
            gpu = str((config.get("prediction_jobs") or {}).get("gpu", "h100"))
            # the longest context of the pair's checkpoints; heads that all of them divide
            shapes = [a for _, a in checkpoint_architectures(config, model, throughput)]
            longest = max(shapes, key=lambda a: int(a.get("context") or 0), default=architecture(config, model, throughput))
            s["vllm_tensor_parallel_size"] = pick_tp(longest, float(m["size_b"]), s, throughput, gpu, tuple(shapes))
    return s


def study_settings(config: Mapping[str, Any], throughput: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every evaluated model's prediction settings (what the Snakefile gives each predict job)."""
    return {name: model_settings(config, name, throughput) for name in config["models"]}


def job_gpus(config: Mapping[str, Any], model: str, settings: Mapping[str, Any] | None = None) -> int:
    """GPUs of one prediction job of ``model``: ``gpus.predict`` when given, else its tensor
    parallelism with vLLM, none for a served model (the server has them), else 1."""
    given = (config.get("gpus") or {}).get("predict")
    if given is not None:
        return int(given)
    s = settings if settings is not None else model_settings(config, model)
    if s.get("engine") == "served":
        return 0
    return int(s["vllm_tensor_parallel_size"]) if s.get("engine") == "vllm" else 1


def problems(config: Mapping[str, Any], throughput: Mapping[str, Any] | None = None) -> list[str]:
    """Per-model settings that cannot run: a tensor parallelism that does not divide the model's
    heads, a context cap above the model's own, several samples with greedy decoding."""
    from parallel_scaling.plan.throughput import load_throughput

    errors = []
    for name, m in config["models"].items():
        own = m.get("prediction") or {}
        s = {**config["prediction"], **own}
        def where(model: str, key: str) -> str:
            return f"models.{model}.prediction.{key}" if key in own else f"prediction.{key}"

        if s.get("n", 1) > 1 and s.get("temperature", 0) == 0 and own:
            errors.append(f"{where(name, 'n')}: {s['n']} samples need temperature > 0 (greedy decoding gives one answer)")
        if s.get("engine") != "vllm" or m.get("source") == "tiny":
            continue
        given = (config.get("gpus") or {}).get("predict")
        if given is not None and "vllm_tensor_parallel_size" in own and own["vllm_tensor_parallel_size"] not in (None, given):
            errors.append(f"{where(name, 'vllm_tensor_parallel_size')}: {own['vllm_tensor_parallel_size']} but "
                          f"gpus.predict gives every prediction job {given} GPUs; vLLM uses exactly its tensor "
                          f"parallelism (leave gpus.predict null)")
        throughput = throughput if throughput is not None else load_throughput()
        for path, arch in checkpoint_architectures(config, name, throughput):
            if not arch.get("read"):
                continue
            tp = s.get("vllm_tensor_parallel_size")
            if tp is not None and not tp_divides(arch, int(tp)):
                errors.append(f"{where(name, 'vllm_tensor_parallel_size')}: {tp} does not divide the {arch.get('heads')} "
                              f"attention heads ({arch.get('kv_heads')} KV heads) of {path} ({arch['source']}); vLLM "
                              f"would refuse to start: choose one of "
                              f"{[t for t in TP_CHOICES if tp_divides(arch, t)]}, or null to let the planner pick")
            cap = s.get("vllm_max_model_len")
            if cap and arch.get("context") and int(cap) > int(arch["context"]):
                errors.append(f"{where(name, 'vllm_max_model_len')}: {cap} exceeds the context of {path} "
                              f"({arch['context']} tokens, {arch['source']}); vLLM refuses a longer one: "
                              f"at most {arch['context']}, or null for the model's own")
    return errors
