"""Supervised fine-tuning through TRL's ``SFTTrainer``.

Used three ways: the tiny model's multilingual causal-LM pretraining (plain text), its English
answer-format warm-up (prompt/completion), and the SFT paradigm of the RL-vs-SFT comparison
(``train-sft``: the same mixtures as GRPO, trained on worked solutions).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from parallel_scaling.dataio import schema
from parallel_scaling.dataio.jsonl import parse_settings
from parallel_scaling.train.shared import (
    attention_kwargs, check_model_path, check_reporters, finalize, last_checkpoint, metrics_callback,
    resolve_device, run_identity, trl_args, work_directory,
)

log = logging.getLogger(__name__)

def sft_trainer(model: Any, tokenizer: Any, dataset: Any, settings: dict[str, Any], workdir: Path,
                seed: int, device: str) -> Any:
    """TRL's SFTTrainer with every setting explicit (it tokenizes the dataset when built)."""
    from trl import SFTConfig, SFTTrainer

    # the sft section's keys for TRL (a build stage's pretrain/warmup settings are a subset of them)
    args = SFTConfig(
        **trl_args(settings, schema.trainer_keys("sft"), device, workdir, seed),
        packing=False, completion_only_loss=None, dataset_num_proc=None,
    )
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)


def run_sft(model: Any, tokenizer: Any, dataset: Any, settings: dict[str, Any], workdir: Path,
            seed: int, device: str, metrics: str | None = None) -> Any:
    """Train and return the trainer; resumes from the newest checkpoint in ``workdir``; with
    ``metrics``, every logged step goes to that file as it is logged."""
    trainer = sft_trainer(model, tokenizer, dataset, settings, workdir, seed, device)
    resume = last_checkpoint(workdir)
    if resume:
        log.info("resuming SFT from %s", resume)
    if metrics:
        trainer.add_callback(metrics_callback(metrics))
    trainer.train(resume_from_checkpoint=resume)
    return trainer


def sft_dataset(rows: list[dict[str, Any]], prompt_set: str, tokenizer: Any, marker: str) -> Any:
    """Prompt/completion pairs: the worked solution, then the answer marker and the final answer."""
    from datasets import Dataset

    from parallel_scaling.common.prompts import build_prompt

    return Dataset.from_list([
        {"prompt": build_prompt(r["question"], r["lang"], prompt_set, tokenizer),
         "completion": f"{r.get('solution') or ''} {marker} {r['answer']}".strip() + tokenizer.eos_token}
        for r in rows
    ])


def check_room_for_completions(dataset: Any, tokenizer: Any, max_length: int) -> None:
    """Before training: SFT truncates to ``max_length`` tokens and drops examples whose completion
    is cut off entirely; when that is every example, TRL fails later with "num_samples=0". Say
    which setting is too small instead."""
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in dataset["prompt"]]
    if lengths and min(lengths) >= max_length:
        raise ValueError(f"sft.max_length: {max_length} tokens leave no room for a completion: the shortest "
                         f"prompt has {min(lengths)} tokens (longest {max(lengths)}); raise sft.max_length")


def main(argv: list[str] | None = None) -> int:
    """``train-sft``: one SFT run of an initial model on one mixture."""
    from parallel_scaling.dataio.jsonl import read_jsonl

    from parallel_scaling.train.shared import train_parser

    a = train_parser("train-sft", __doc__).parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(a.threads)
    settings = parse_settings(a.settings)
    device = resolve_device(settings["device"], key="sft.device")
    check_model_path(a.model, key="initial model")
    check_reporters(settings, "sft", a.metrics)
    rows = read_jsonl(a.mixture, required=("id", "lang", "question", "answer"))
    identity = run_identity("train-sft", a.model, [a.mixture], settings, a.prompt_set, a.seed)
    workdir = work_directory(a.workdir, identity)
    tokenizer = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, **attention_kwargs(settings))
    dataset = sft_dataset(rows, a.prompt_set, tokenizer, settings["answer_marker"])
    check_room_for_completions(dataset, tokenizer, settings["max_length"])
    trainer = run_sft(model, tokenizer, dataset, settings, workdir, a.seed, device, a.metrics)
    finalize(trainer, tokenizer, Path(a.out), {
        "paradigm": "sft", "initial_model": a.model, "mixture": a.mixture, "seed": a.seed,
        "prompt_set": a.prompt_set, "settings": settings, "identity": identity,
        "trainer_args": trainer.args.to_dict(), "device": device}, workdir, a.manifest_token)
    return 0
