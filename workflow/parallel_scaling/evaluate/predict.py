"""Benchmark predictions: one job loads a checkpoint once and answers every configured benchmark
and language in one batch, writing one file per (benchmark, language).

Two engines share prompts and decoding settings: ``vllm`` on GPUs (and on vLLM's CPU build in
``make test-vllm``, where it equals the transformers engine item by item), ``transformers``
everywhere (CPU in the tests and the laptop study). A prompt longer than the model's context is
refused by both, before the model is loaded (:func:`check_context`). The settings used are written beside the predictions
(``_settings.json``) so a table can always be traced to how its responses were produced.

Responses are saved batch by batch as they are made (:mod:`parallel_scaling.evaluate.journal`):
a job killed at its time limit and run again generates only what is missing, and ends with the
files an uninterrupted run writes. Both engines print progress (prompts done, rate, time left).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable

from parallel_scaling.evaluate.journal import Journal, identity

from parallel_scaling.common.jsonl import parse_settings, read_jsonl, write_json, write_jsonl
from parallel_scaling.train.shared import add_token_argument

log = logging.getLogger(__name__)


class Progress:
    """Items done, rate and time left, printed to the job's log at most every ``every`` seconds."""

    def __init__(self, total: int, label: str, every: float = 10.0) -> None:
        if total == 0:
            print(f"[{label}] 0 prompts left to generate", file=sys.stderr, flush=True)
        self.total, self.label, self.every = total, label, every
        self.start = self.last = time.monotonic()
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(f"[{self.label}] {self.done}/{self.total} prompts, {rate:.1f}/s, ~{left:.0f}s left",
                  file=sys.stderr, flush=True)


#: prompts per vLLM generate call: each call's responses are saved before the next starts (vLLM
#: schedules within a call; per-request seeds make a response independent of its call)
VLLM_CHUNK = 512

#: vLLM's dtype when ``prediction.vllm_dtype`` is not given (the schema's default): bf16 on GPUs; on
#: CPU only float32 gives the transformers engine's greedy responses exactly (docs/gpu.md)
VLLM_DTYPE = "bfloat16"

Done = dict[int, list[str]]
Save = Callable[[int, Done], None]


def _pending(batches: list[list[int]], done: Done) -> list[int]:
    """Indices of the batches with a prompt not answered yet."""
    return [b for b, batch in enumerate(batches) if any(j not in done for j in batch)]


def generate_transformers(model_path: str, prompts: list[str], s: dict[str, Any], device: str,
                          done: Done | None = None, save: Save | None = None) -> list[list[str]]:
    """Batched generation with transformers: left padding, greedy or sampled, ``n`` samples each.

    Prompt ids and decoding come from :mod:`parallel_scaling.common.decoding`, as for vLLM: the prompt text is
    tokenized with the tokenizer's special tokens (one BOS), and the model's own generation config is
    replaced by one built from the settings (only its stop tokens are kept).

    ``done``: responses of an interrupted run, by prompt index; only the batches they do not cover
    are generated, each with its own seed (``seed`` + batch number) and the same prompts as in an
    uninterrupted run, and ``save(batch, responses)`` gets each as soon as it is made."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from parallel_scaling.common.decoding import encode_prompts, transformers_generation_config

    done = dict(done or {})
    tok = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    model.generation_config = transformers_generation_config(s, tok, model.generation_config)
    n = model.generation_config.num_return_sequences
    bs = s["batch_size"]
    order = by_length(encode_prompts(tok, prompts))
    batches = [order[i:i + bs] for i in range(0, len(order), bs)]
    pending = _pending(batches, done)
    progress = Progress(sum(len(batches[b]) for b in pending), "transformers")
    for b in pending:
        batch = batches[b]
        torch.manual_seed(s["seed"] + b)  # a batch's samples do not depend on the batches before it
        enc = tok([prompts[j] for j in batch], return_tensors="pt", padding=True, add_special_tokens=True).to(device)
        with torch.no_grad():
            gen = model.generate(**enc, generation_config=model.generation_config)
        texts = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        made = {j: texts[slot * n:(slot + 1) * n] for slot, j in enumerate(batch)}
        done.update(made)
        if save:
            save(b, made)
        progress.update(len(batch))
    return [done[j] for j in range(len(prompts))]


def by_length(token_ids: list[list[int]]) -> list[int]:
    """Prompt indices, shortest first, ties in input order: batches of similar length carry little
    left padding (a third less generation time on CPU for the default study, whose 1,800 responses
    came out identical to those of the unsorted order: the padding is masked)."""
    return sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))


def vllm_arguments(model_path: str, prompts: list[str], s: dict[str, Any], tokenizer: Any
                   ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, list[int]]]]:
    """What :func:`generate_vllm` gives vLLM: ``LLM(**llm)``, ``SamplingParams(**sampling)`` and the
    prompts as token ids (the same ids as the transformers engine). Checked against the pinned
    vLLM's code by tests/test_vllm_api.py."""
    from parallel_scaling.common.decoding import vllm_llm_kwargs, vllm_prompts, vllm_sampling_kwargs

    llm = vllm_llm_kwargs(model_path, seed=s["seed"], tensor_parallel_size=s["vllm_tensor_parallel_size"],
                          gpu_memory_utilization=s["vllm_gpu_memory_utilization"],
                          max_model_len=s.get("vllm_max_model_len"), dtype=s.get("vllm_dtype") or VLLM_DTYPE,
                          enforce_eager=s.get("vllm_enforce_eager", False))
    return llm, vllm_sampling_kwargs(s), vllm_prompts(tokenizer, prompts)


def generate_vllm(model_path: str, prompts: list[str], s: dict[str, Any], tokenizer: Any,
                  done: Done | None = None, save: Save | None = None) -> list[list[str]]:
    """The same prompt token ids and decoding through vLLM (GPUs; its CPU build in the tests), in chunks of VLLM_CHUNK
    prompts, each saved and reported as it finishes; ``done``/``save`` as for the transformers engine."""
    from vllm import LLM, SamplingParams

    done = dict(done or {})
    llm_kwargs, sampling_kwargs, token_prompts = vllm_arguments(model_path, prompts, s, tokenizer)
    chunks = [list(range(i, min(i + VLLM_CHUNK, len(prompts)))) for i in range(0, len(prompts), VLLM_CHUNK)]
    pending = _pending(chunks, done)
    progress = Progress(sum(len(chunks[c]) for c in pending), "vllm", every=0.0)
    if not pending:
        return [done[j] for j in range(len(prompts))]
    llm = LLM(**llm_kwargs)
    params = SamplingParams(**sampling_kwargs)
    for c in pending:
        results = llm.generate([token_prompts[j] for j in chunks[c]], params, use_tqdm=False)
        made = {j: [o.text for o in r.outputs] for j, r in zip(chunks[c], results)}
        done.update(made)
        if save:
            save(c, made)
        progress.update(len(chunks[c]))
    return [done[j] for j in range(len(prompts))]


def check_context(model_path: str, prompts: list[str], tokenizer: Any, s: dict[str, Any], engine: str,
                  prompt_set: str, inputs: list[tuple[str, list[dict[str, Any]]]]) -> None:
    """Every prompt fits the model's context (``vllm_max_model_len`` when vLLM has one), in both
    engines, before the model is loaded: else ``PromptTooLongError`` naming the prompt file, the
    item and the lengths (vLLM would refuse the request, transformers generate past the positions)."""
    from transformers import AutoConfig

    from parallel_scaling.common.decoding import check_prompt_lengths, encode_prompts, model_context
    from parallel_scaling.common.prompts import PROMPTS_FILE

    cap = s.get("vllm_max_model_len") if engine == "vllm" else None
    context, source = model_context(AutoConfig.from_pretrained(model_path), cap)
    source = "prediction.vllm_max_model_len" if cap else f"{source} of {model_path}"
    labels = [f"item {r['id']!r} of {path}" for path, rows in inputs for r in rows]
    check_prompt_lengths(encode_prompts(tokenizer, prompts), context, source=source, labels=labels,
                         prompt_file=f"{PROMPTS_FILE} (prompt set {prompt_set!r})")


def shard_rows(rows: list[dict[str, Any]], index: int, count: int) -> list[dict[str, Any]]:
    """The ``index``-th (1-based) of ``count`` contiguous blocks of ``rows``: the shards of a file,
    concatenated in order, are the file (what ``score`` reads them as)."""
    if not 1 <= index <= count:
        raise ValueError(f"--shard {index} {count}: the shard index must be between 1 and {count}")
    return rows[len(rows) * (index - 1) // count: len(rows) * index // count]


def main(argv: list[str] | None = None) -> int:
    """``predict``: answer all (benchmark, language) inputs with one loaded checkpoint."""
    p = argparse.ArgumentParser(prog="predict", description=__doc__)
    p.add_argument("--model", required=True, help="checkpoint directory or hub id")
    p.add_argument("--input", nargs=3, action="append", required=True, metavar=("BENCHMARK", "LANG", "JSONL"),
                   help="benchmark rows (id, lang, question, answer[, answer_type, difficulty]); repeat per file")
    p.add_argument("--meta", required=True, help="JSON copied into every row (model, paradigm, mixture, k, ...)")
    p.add_argument("--settings", required=True, help="JSON of the config's prediction section")
    p.add_argument("--prompt-set", required=True)
    p.add_argument("--outdir", required=True, help="writes OUTDIR/<benchmark>/<lang>.jsonl")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--journal", default=None,
                   help="responses saved as they are made (default: OUTDIR.journal.jsonl, beside the "
                        "output directory, which Snakemake deletes when a job fails)")
    p.add_argument("--shard", nargs=2, type=int, default=None, metavar=("I", "N"),
                   help="answer only the I-th of N contiguous blocks of each input's items (1-based): one "
                        "part of a benchmark language too long for one job (parallel_scaling.plan.prediction_jobs)")
    add_token_argument(p)
    a = p.parse_args(argv)

    import torch

    from parallel_scaling.common.integrity import digest, write_manifest
    from parallel_scaling.common.preflight import check_model_path, resolve_device
    from parallel_scaling.common.prompts import build_prompt

    torch.set_num_threads(a.threads)
    s = parse_settings(a.settings)
    meta = json.loads(a.meta)
    engine = s["engine"]
    device = resolve_device(s["device"], use_vllm=engine == "vllm", key="prediction.device",
                            vllm_key="prediction.engine: 'vllm'")
    check_model_path(a.model, key="model")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(a.model)  # both engines: prompts from its chat template, its ids

    jobs: list[tuple[str, str, list[dict[str, Any]]]] = []
    prompts: list[str] = []
    for bench, lang, path in a.input:
        rows = read_jsonl(path, required=("id", "question", "answer"))
        if s.get("limit"):
            rows = rows[: s["limit"]]
        if a.shard:
            rows = shard_rows(rows, *a.shard)
        jobs.append((bench, lang, rows))
        prompts += [build_prompt(r["question"], lang, a.prompt_set, tokenizer) for r in rows]
    log.info("predict: %d prompts over %d files with %s on %s", len(prompts), len(jobs), engine, device)
    if engine not in ("vllm", "transformers"):
        raise ValueError(f"prediction.engine: {engine!r} is not one of transformers, vllm")
    check_context(a.model, prompts, tokenizer, s, engine, a.prompt_set,
                  [(path, rows) for (_, _, path), (_, _, rows) in zip(a.input, jobs)])

    outdir = Path(a.outdir)
    model_digest = digest(a.model)
    prompts_hash = identity(prompts=prompts)
    journal = Journal(a.journal or f"{outdir}.journal.jsonl",
                      identity(model=model_digest, prompts=prompts_hash, settings=s, engine=engine, device=device))
    done = journal.load()
    if done:
        print(f"[journal] resuming: {len(done)} of {len(prompts)} prompts were answered by an earlier run of "
              f"this job ({journal.path}); generating the other {len(prompts) - len(done)}", file=sys.stderr,
              flush=True)
    if engine == "vllm":
        responses = generate_vllm(a.model, prompts, s, tokenizer, done, journal.append)
    else:
        responses = generate_transformers(a.model, prompts, s, device, done, journal.append)

    i = 0
    for bench, lang, rows in jobs:
        out_rows = []
        for r in rows:
            # an item's difficulty level travels with it, for the difficulty-weighted accuracy
            extra = {"difficulty": r["difficulty"]} if r.get("difficulty") is not None else {}
            for sample, resp in enumerate(responses[i]):
                out_rows.append({**meta, "benchmark": bench, "lang": lang, "id": str(r["id"]), "sample": sample,
                                 "question": r["question"], "prompt": prompts[i], "gold": str(r["answer"]),
                                 "answer_type": r.get("answer_type", "number"), **extra, "response": resp})
            i += 1
        write_jsonl(outdir / bench / f"{lang}.jsonl", out_rows)
    write_json(outdir / "_settings.json", {"engine": engine, "device": device, "model": a.model,
                                           "model_digest": model_digest, "prompt_set": a.prompt_set,
                                           "settings": s, "meta": meta})
    write_manifest(outdir, a.manifest_token)
    journal.remove()  # everything it held is in the files now
    return 0
