"""GRPO post-training through TRL's ``GRPOTrainer``: one run per (initial model, mixture, seed).

Every ``GRPOConfig`` field that shapes the result is taken from the config (see
``GRPO_KEYS``); none is left to TRL's defaults, which have drifted between versions. The
resolved ``GRPOConfig`` is saved with the checkpoint (``training_settings.json``). Generation
inside GRPO uses vLLM (colocate mode) on GPUs when ``use_vllm`` is set, plain transformers
otherwise. Intermediate checkpoints live in a work directory keyed by the settings hash, so a
killed job resumes from its last saved step when Snakemake reruns it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from parallel_scaling.jsonl import parse_settings, read_jsonl

log = logging.getLogger(__name__)

#: config keys passed to GRPOConfig unchanged (the config schema gives each a default)
GRPO_KEYS = (
    "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "max_grad_norm", "optim",
    "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs", "max_steps",
    "num_generations", "max_completion_length", "temperature", "top_p", "top_k", "repetition_penalty",
    "beta", "epsilon", "num_iterations", "loss_type", "scale_rewards", "mask_truncated_completions",
    "steps_per_generation", "use_vllm", "vllm_mode", "vllm_gpu_memory_utilization", "shuffle_dataset",
    "disable_dropout",
)


def grpo_dataset(rows: list[dict[str, Any]], prompt_set: str, tokenizer: Any) -> Any:
    """Rows as text prompts (the same prompt builder as prediction) with the reward columns."""
    from datasets import Dataset

    from parallel_scaling.prompts import build_prompt

    return Dataset.from_list([
        {"prompt": build_prompt(r["question"], r["lang"], prompt_set, tokenizer), "answer": str(r["answer"]),
         "lang": r["lang"], "answer_type": r.get("answer_type", "number")}
        for r in rows
    ])


def main(argv: list[str] | None = None) -> int:
    """``train-grpo``: one GRPO run of an initial model on one mixture."""
    from parallel_scaling.training import train_parser

    a = train_parser("train-grpo", __doc__).parse_args(argv)

    from parallel_scaling.rewards import active_rewards
    from parallel_scaling.training import (
        check_model_path, finalize, last_checkpoint, resolve_device, run_identity, trainer_common_args,
        work_directory,
    )

    s = parse_settings(a.settings)
    device = resolve_device(s["device"], use_vllm=s["use_vllm"], key="grpo.device", vllm_key="grpo.use_vllm: true")
    check_model_path(a.model, key="initial model")
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
    cfg = GRPOConfig(
        **{k: s[k] for k in GRPO_KEYS},
        **trainer_common_args(s, device, workdir, a.seed),
        reward_weights=weights, log_completions=False,
        model_init_kwargs={"dtype": "bfloat16" if s.get("bf16") and device == "cuda" else "float32"},
    )
    trainer = GRPOTrainer(model=a.model, reward_funcs=funcs, args=cfg,
                          train_dataset=grpo_dataset(rows, a.prompt_set, tokenizer), processing_class=tokenizer)
    resume = last_checkpoint(workdir)
    if resume:
        print(f"resuming GRPO from {resume}", flush=True)
    trainer.train(resume_from_checkpoint=resume)
    finalize(trainer, tokenizer, Path(a.out), {
        "paradigm": "grpo", "initial_model": a.model, "mixture": a.mixture, "seed": a.seed,
        "prompt_set": a.prompt_set, "settings": s, "identity": identity, "resumed_from": resume,
        "reward_functions": [f.__name__ for f in funcs], "reward_weights": weights,
        "final_step": trainer.state.global_step, "trainer_args": cfg.to_dict(), "device": device}, workdir,
        a.manifest_token)
    return 0
