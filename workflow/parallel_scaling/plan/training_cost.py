"""Training's part of the cost plan: the tiny model's build, GRPO and SFT runs (tokens and
GPU-seconds per job), and the optimizer steps of each run per mixture (``cost-plan`` prints them: an
additive budget grows them with k, a fixed-step control holds them equal)."""

from __future__ import annotations

import math
from typing import Any, Mapping

from parallel_scaling.plan import study
from parallel_scaling.plan.throughput import _params, decode_tps, flops_seconds, question_tokens


def _zero() -> dict[str, Any]:
    return {"jobs": 0, "gen_tokens": 0.0, "prompt_tokens": 0.0, "train_tokens": 0.0, "gpu_seconds": 0.0,
            "job_seconds": {}}


def _add(row: dict[str, Any], job: str | None = None, **kw: float) -> None:
    """Add to a rule's totals; with ``job`` (its label, :func:`job_label`) also to that job's
    GPU-seconds, from which the hours of each job on its GPUs are compared with its time limit."""
    for k, v in kw.items():
        row[k] += v
    if job is not None:
        row["job_seconds"][job] = row["job_seconds"].get(job, 0.0) + kw.get("gpu_seconds", 0.0)


def mixture_rows(config: Mapping[str, Any], mix: study.Mixture) -> int:
    """Rows of a mixture, assuming QC leaves enough items (the drop policy can only lower it)."""
    m = config["mixtures"]
    n = len(mix.langs)
    return m["items"] * n if m["budget"] == "additive" else (m["items"] // n) * n


def plan_build(config, throughput, fig) -> dict[str, float]:
    row = _zero()
    fill = throughput["tokens"]["tiny_fill"]
    for name, m in config["models"].items():
        if m["source"] != "tiny":
            continue
        row["jobs"] += 1
        for stage in ("pretrain", "warmup"):
            s = m["build"][stage]
            steps = s["max_steps"] if s["max_steps"] > 0 else math.ceil(
                s["num_train_epochs"] * m["build"].get("warmup_items", 1000) / s["per_device_train_batch_size"])
            tokens = steps * s["per_device_train_batch_size"] * s["gradient_accumulation_steps"] * s["max_length"] * fill
            _add(row, name, train_tokens=tokens,
                 gpu_seconds=flops_seconds(tokens * 6 * _params(m["size_b"]), fig, "train_mfu"))
    return row


def plan_grpo(config, throughput, fig) -> dict[str, float]:
    row = _zero()
    g = config["grpo"]
    fill = throughput["tokens"]["grpo_completion_fill"]
    nproc = study.train_processes(config, "train_grpo")
    for run in study.runs(config):
        if run.paradigm != "grpo":
            continue
        size_b = config["models"][run.model]["size_b"]
        n_params = _params(size_b)
        if g["max_steps"] > 0:
            completions = g["max_steps"] * g["per_device_train_batch_size"] * g["gradient_accumulation_steps"] * nproc
            prompts = completions / g["num_generations"]
        else:
            prompts = mixture_rows(config, study.mixture(config, run.mixture)) * g["num_train_epochs"]
            completions = prompts * g["num_generations"]
        q = question_tokens(config, throughput, run.model)
        gen = completions * g["max_completion_length"] * fill
        prompt = prompts * q  # vLLM prefix caching: one prefill per prompt for its group
        seq = completions * (q + g["max_completion_length"] * fill)
        mu = g["num_iterations"]
        train_flops = seq * mu * 6 * n_params * (4 / 3 if g["gradient_checkpointing"] else 1)
        if g["beta"] > 0:
            train_flops += seq * 2 * n_params  # reference model forward
        if mu > 1:
            train_flops += seq * 2 * n_params  # old-policy log-probs
        secs = (gen / (decode_tps(fig, size_b) * fig["grpo_rollout_efficiency"])
                + flops_seconds(prompt * 2 * n_params, fig, "prefill_mfu")
                + flops_seconds(train_flops, fig, "train_mfu"))
        _add(row, f"{run.model}/{run.mixture}/s{run.seed}", jobs=1, gen_tokens=gen, prompt_tokens=prompt,
             train_tokens=seq * mu, gpu_seconds=secs)
    return row


def optimizer_steps(config: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Optimizer steps of one training run per paradigm and mixture: ``max_steps`` when set, else the
    mixture's rows x epochs (x the group size for GRPO, whose batches count completions) over the
    global batch (per-device batch x gradient accumulation x processes). An additive budget grows
    them with k (the paper's setting); a fixed-step control holds them equal (``max_steps``)."""
    out: dict[str, dict[str, int]] = {}
    trains = any(m.get("train", True) for m in config["models"].values())
    mixtures = [m.name for m in study.mixtures(config)] if trains else []
    for paradigm, rule in (("grpo", "train_grpo"), ("sft", "train_sft")):
        if paradigm not in config.get("paradigms", []):
            continue
        s = config[paradigm]
        batch = s["per_device_train_batch_size"] * s["gradient_accumulation_steps"] * study.train_processes(config, rule)
        per_row = s["num_generations"] if paradigm == "grpo" else 1
        out[paradigm] = {name: int(s["max_steps"]) if s["max_steps"] > 0 else math.ceil(
            mixture_rows(config, study.mixture(config, name)) * s["num_train_epochs"] * per_row / batch)
            for name in mixtures}
    return {k: v for k, v in out.items() if v}


def plan_sft(config, throughput, fig) -> dict[str, float]:
    row = _zero()
    s = config["sft"]
    fill = throughput["tokens"]["sft_fill"]
    for run in study.runs(config):
        if run.paradigm != "sft":
            continue
        size_b = config["models"][run.model]["size_b"]
        if s["max_steps"] > 0:
            seqs = s["max_steps"] * s["per_device_train_batch_size"] * s["gradient_accumulation_steps"]
        else:
            seqs = mixture_rows(config, study.mixture(config, run.mixture)) * s["num_train_epochs"]
        tokens = seqs * s["max_length"] * fill
        flops = tokens * 6 * _params(size_b) * (4 / 3 if s["gradient_checkpointing"] else 1)
        _add(row, f"{run.model}/{run.mixture}/s{run.seed}", jobs=1, train_tokens=tokens,
             gpu_seconds=flops_seconds(flops, fig, "train_mfu"))
    return row
