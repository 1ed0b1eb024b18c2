"""GRPO post-training through TRL's ``GRPOTrainer``: one run per (initial model, mixture, seed).

Every ``GRPOConfig`` field that shapes the result is taken from the config: every key of the
``grpo`` section that the schema does not mark as the pipeline's own goes to ``GRPOConfig``
(:func:`parallel_scaling.dataio.schema.trainer_keys`); none is left to TRL's defaults, which have
drifted between versions. The
resolved ``GRPOConfig`` is saved with the checkpoint (``training_settings.json``). Generation
inside GRPO uses vLLM (colocate mode) on GPUs when ``use_vllm`` is set, plain transformers
otherwise. Intermediate checkpoints live in a work directory keyed by the settings hash, so a
killed job resumes from its last saved step when Snakemake reruns it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from parallel_scaling.dataio import schema
from parallel_scaling.dataio.jsonl import parse_settings, read_jsonl
from parallel_scaling.train.shared import attention_kwargs

log = logging.getLogger(__name__)

def grpo_dataset(rows: list[dict[str, Any]], prompt_set: str, tokenizer: Any) -> Any:
    """Rows as text prompts (the same prompt builder as prediction) with the reward columns."""
    from datasets import Dataset

    from parallel_scaling.common.prompts import build_prompt

    return Dataset.from_list([
        {"prompt": build_prompt(r["question"], r["lang"], prompt_set, tokenizer), "answer": str(r["answer"]),
         "lang": r["lang"], "answer_type": r.get("answer_type", "number")}
        for r in rows
    ])


def vllm_context_length(settings: dict[str, Any], prompt_lengths: list[int]) -> int | None:
    """The context TRL's colocated vLLM reserves KV cache for (``vllm_max_model_length``): the setting,
    or the longest tokenized prompt of the mixture plus ``max_completion_length``. Left to TRL (None),
    vLLM would take the model's own context (131,072 tokens for Llama 3.1), whose KV cache does not fit
    beside the weights in ``vllm_gpu_memory_utilization`` of a GPU. None when vLLM is not used."""
    if not settings["use_vllm"]:
        return None
    if settings.get("vllm_max_model_length"):
        return int(settings["vllm_max_model_length"])
    return max(prompt_lengths, default=0) + int(settings["max_completion_length"])


def grpo_config_kwargs(s: dict[str, Any], common: dict[str, Any], weights: list[float], dtype: str,
                       prompt_lengths: list[int]) -> dict[str, Any]:
    """Every ``GRPOConfig`` argument of a run: ``common`` (:func:`~parallel_scaling.train.shared.trl_args`
    of the ``grpo`` section) with the values the run derives: reward weights in the order of the
    reward functions, the model's dtype and attention kernel, the colocated vLLM's context (tests
    check every argument against TRL's GRPOConfig fields)."""
    return {**common, "reward_weights": weights, "log_completions": False,
            "model_init_kwargs": {"dtype": dtype, **attention_kwargs(s)},
            "vllm_max_model_length": vllm_context_length(s, prompt_lengths), "vllm_tensor_parallel_size": 1}


def main(argv: list[str] | None = None) -> int:
    """``train-grpo``: one GRPO run of an initial model on one mixture."""
    from parallel_scaling.train.shared import train_parser

    a = train_parser("train-grpo", __doc__).parse_args(argv)

    from parallel_scaling.train.rewards import active_rewards
    from parallel_scaling.train.shared import (
        check_model_path, check_reporters, finalize, last_checkpoint, metrics_callback, resolve_device,
        run_identity, trl_args, work_directory,
    )

    s = parse_settings(a.settings)
    device = resolve_device(s["device"], use_vllm=s["use_vllm"], key="grpo.device", vllm_key="grpo.use_vllm: true")
    check_model_path(a.model, key="initial model")
    check_reporters(s, "grpo", a.metrics)
    rows = read_jsonl(a.mixture, required=("id", "lang", "question", "answer"))
    if not rows:
        raise ValueError(f"{a.mixture}: the mixture is empty")
    funcs, weights = active_rewards(s["reward_weights"])

    import torch
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    torch.set_num_threads(a.threads)
    identity = run_identity("train-grpo", a.model, [a.mixture], s, a.prompt_set, a.seed)
    workdir = work_directory(a.workdir, identity)
    tokenizer = AutoTokenizer.from_pretrained(a.model, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = grpo_dataset(rows, a.prompt_set, tokenizer)
    from parallel_scaling.common.decoding import encode_prompts

    lengths = [len(ids) for ids in encode_prompts(tokenizer, dataset["prompt"])] if s["use_vllm"] else []
    cfg = GRPOConfig(**grpo_config_kwargs(
        s, trl_args(s, schema.trainer_keys("grpo"), device, workdir, a.seed), weights,
        "bfloat16" if s.get("bf16") and device == "cuda" else "float32", lengths))
    if cfg.vllm_max_model_length:
        print(f"vLLM context: {cfg.vllm_max_model_length} tokens (longest prompt + max_completion_length "
              "unless grpo.vllm_max_model_length is set)", flush=True)
    trainer = GRPOTrainer(model=a.model, reward_funcs=funcs, args=cfg, train_dataset=dataset,
                          processing_class=tokenizer)
    resume = last_checkpoint(workdir)
    if resume:
        print(f"resuming GRPO from {resume}", flush=True)
    if a.metrics:
        trainer.add_callback(metrics_callback(a.metrics))
    trainer.train(resume_from_checkpoint=resume)
    finalize(trainer, tokenizer, Path(a.out), {
        "paradigm": "grpo", "initial_model": a.model, "mixture": a.mixture, "seed": a.seed,
        "prompt_set": a.prompt_set, "settings": s, "identity": identity, "resumed_from": resume,
        "reward_functions": [f.__name__ for f in funcs], "reward_weights": weights,
        "final_step": trainer.state.global_step, "trainer_args": cfg.to_dict(), "device": device}, workdir,
        a.manifest_token)
    return 0
