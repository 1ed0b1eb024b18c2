"""The embedded study's initial model: a tiny multilingual base post-trained in English.

It mirrors how the paper's models come to be, at laptop scale: (1) a byte-level BPE tokenizer
trained offline on the corpus; (2) a ~1M-parameter Qwen2-architecture causal LM pretrained on
problem + worked equation in *all* languages (no answer marker), so it understands every language;
(3) an English-only supervised warm-up that teaches the answer format (``#### N``), so that it is
"English-centric" in the way reasoning post-training is. Measured by the design's prototype: with
an English-only warm-up alone the model cannot read the other languages and no transfer can be seen.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.permissions import share
from parallel_scaling.dataio.jsonl import parse_settings, read_jsonl
from parallel_scaling.jobs.integrity import add_token_argument

log = logging.getLogger(__name__)

EOS = "<|endoftext|>"


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """Byte-level BPE with single-digit tokens (numbers stay compositional) for every script."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=EOS, bos_token=None,
                                   unk_token=None, model_max_length=512)


def build_model(tokenizer: Any, arch: dict[str, Any], seed: int, attn_implementation: str) -> Any:
    """A freshly initialised Qwen2-architecture causal LM sized by ``arch`` (the attention kernel,
    ``build.attn_implementation``, is a runtime choice: transformers does not save it with the model;
    its default lives in the schema)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=arch["hidden_size"], num_hidden_layers=arch["num_layers"],
        num_attention_heads=arch["num_heads"], num_key_value_heads=arch["num_kv_heads"],
        intermediate_size=arch["intermediate_size"], max_position_embeddings=arch["max_position"],
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None, attn_implementation=attn_implementation,
    )
    return Qwen2ForCausalLM(cfg)


def save_tokenizer(tokenizer: Any, path: Path) -> None:
    """Save so that ``AutoTokenizer`` gives back *this* tokenizer: the config names the generic
    fast class, otherwise transformers would rebuild Qwen2's own pre-tokenizer for model_type qwen2."""
    tokenizer.save_pretrained(str(path))
    cfg_path = path / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg_path.write_text(json.dumps(cfg, indent=2))


def main(argv: list[str] | None = None) -> int:
    """``build-init-model``: tokenizer, pretraining in all languages, English warm-up -> initial model."""
    p = argparse.ArgumentParser(prog="build-init-model", description=__doc__)
    p.add_argument("--data", nargs="+", required=True, help="parallel train JSONL files, one per language")
    p.add_argument("--settings", required=True, help="JSON of the model's build section")
    p.add_argument("--prompt-set", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, default=1)
    add_token_argument(p)
    a = p.parse_args(argv)

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from parallel_scaling.jobs.integrity import write_manifest
    from parallel_scaling.jobs.preflight import resolve_device
    from parallel_scaling.common.prompts import build_prompt
    from parallel_scaling.train.sft import run_sft, sft_dataset
    from parallel_scaling.train.shared import run_identity, work_directory

    torch.set_num_threads(a.threads)
    s = parse_settings(a.settings)
    device = resolve_device(s.get("device", "auto"), key="build.device")
    rows = [r for f in a.data for r in read_jsonl(f, required=("id", "lang", "question", "answer", "solution"))]
    identity = run_identity("build-init-model", None, a.data, s, a.prompt_set, s["seed"])
    work = work_directory(a.workdir, identity)
    out = Path(a.out)

    # 1. tokenizer (deterministic given the corpus); each stage's folder appears whole or not at all
    texts = [f"{r['question']}\n{r['solution']} #### {r['answer']}" for r in rows]
    tok_dir = work / "tokenizer"
    if not tok_dir.is_dir():
        with _stage(tok_dir) as tmp:
            save_tokenizer(train_tokenizer(texts, s["vocab_size"]), tmp)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))

    # 2. multilingual causal-LM pretraining: question + worked equation, no answer marker
    pre_dir = work / "pretrained"
    if not pre_dir.is_dir():
        model = build_model(tokenizer, s["arch"], s["seed"], s["attn_implementation"])
        log.info("tiny model: %d parameters", sum(p.numel() for p in model.parameters()))
        rng = random.Random(s["seed"])
        shuffled = list(rows)
        rng.shuffle(shuffled)
        if s["pretrain_loss"] == "full":
            data = [{"text": f"{r['question']}\n{r['solution']}{tokenizer.eos_token}"} for r in shuffled]
        else:  # loss on the worked equation only: the compute goes where the skill is
            data = [{"prompt": build_prompt(r["question"], r["lang"], a.prompt_set, tokenizer),
                     "completion": f"{r['solution']}{tokenizer.eos_token}"} for r in shuffled]
        trainer = run_sft(model, tokenizer, Dataset.from_list(data), s["pretrain"], work / "pretrain-ckpt",
                          s["seed"], device)
        with _stage(pre_dir) as tmp:
            trainer.save_model(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            shutil.copy(tok_dir / "tokenizer_config.json", tmp / "tokenizer_config.json")

    # 3. English-only warm-up that teaches the answer format
    english = [r for r in rows if r["lang"] == "en"]
    if not english:
        raise ValueError("build-init-model: no English rows in --data; the warm-up needs the English train file")
    random.Random(s["seed"]).shuffle(english)
    english = english[: s["warmup_items"]]
    model = AutoModelForCausalLM.from_pretrained(str(pre_dir), attn_implementation=s["attn_implementation"])
    trainer = run_sft(model, tokenizer, sft_dataset(english, a.prompt_set, tokenizer, s["answer_marker"]),
                      s["warmup"], work / "warmup-ckpt", s["seed"] + 1, device)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.copy(tok_dir / "tokenizer_config.json", tmp / "tokenizer_config.json")
    (tmp / "build_settings.json").write_text(json.dumps(
        {"settings": s, "prompt_set": a.prompt_set, "identity": identity, "device": device,
         "n_parameters": sum(p.numel() for p in trainer.model.parameters()),
         "n_pretrain_rows": len(rows), "n_warmup_rows": len(english)}, indent=2))
    share(tmp)  # safetensors writes weights with mode 0600: collaborators must read the model
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    write_manifest(out, a.manifest_token)
    shutil.rmtree(work, ignore_errors=True)  # finished: nothing left to resume from
    return 0


@contextmanager
def _stage(final: Path) -> Iterator[Path]:
    """A temporary folder that becomes ``final`` only when the block completes (a killed build
    never leaves a half-written stage that a rerun would take as done)."""
    tmp = final.with_name(final.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    os.replace(tmp, final)
