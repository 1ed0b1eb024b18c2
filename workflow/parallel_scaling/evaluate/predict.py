"""Benchmark predictions: one job loads a checkpoint once and answers every configured benchmark
and language in one batch, writing one file per (benchmark, language).

Two engines share prompts and decoding settings: ``vllm`` on GPUs (and on vLLM's CPU build in
``make test-vllm``, where it equals the transformers engine item by item), ``transformers``
everywhere (CPU in the tests and the laptop study). A prompt longer than the model's context is
refused by both, before the model is loaded (:func:`check_context`). The settings used are written beside the predictions
(``_settings.json``) so a table can always be traced to how its responses were produced.

Every row records how its response ended and what it cost: ``finish_reason`` ("eos", "length",
"stop_string"), ``prompt_tokens``, ``completion_tokens`` (:mod:`parallel_scaling.evaluate.samples`);
``_summary.json`` and the log give the token totals, this run's tokens per second and, per
(benchmark, language), the share of answers cut by ``max_new_tokens`` (:mod:`~parallel_scaling.evaluate.summary`).

The vLLM engine runs the whole job as one continuous stream of requests (the GPU stays full until
the last answer; :mod:`parallel_scaling.common.vllm_stream`); the transformers engine keeps its
length-sorted batches, each with its own seed. Responses are saved as they are made
(:mod:`parallel_scaling.evaluate.journal`): a job killed at its time limit and run again generates
only what is missing, and ends with the files an uninterrupted run writes. Both engines print
progress (prompts done, rate, tokens per second, time left).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from parallel_scaling.evaluate.journal import Journal, identity
from parallel_scaling.evaluate.samples import Done, Sample, Save, sample, transformers_finish, vllm_finish
from parallel_scaling.evaluate.summary import SUMMARY_FILE, log_lines, summarize

from parallel_scaling.dataio.jsonl import parse_settings, read_jsonl, write_json, write_jsonl
from parallel_scaling.jobs.integrity import add_token_argument

log = logging.getLogger(__name__)


class Progress:
    """Prompts done, their rate, completion tokens per second and the time left, printed to the job's
    log at most every ``every`` seconds. An engine calls :meth:`start` once its model is loaded, so
    the rates are those of generation; ``seconds`` and ``tokens`` are what the job's summary gives."""

    def __init__(self, label: str = "generate", every: float = 10.0) -> None:
        self.label, self.every = label, every
        self.total = self.done = self.tokens = 0
        self.began = self.last = self.at = time.monotonic()

    def start(self, total: int, label: str | None = None) -> "Progress":
        self.label = label or self.label
        if total == 0:
            print(f"[{self.label}] 0 prompts left to generate", file=sys.stderr, flush=True)
        self.total, self.done, self.tokens = total, 0, 0
        self.began = self.last = self.at = time.monotonic()
        return self

    @property
    def seconds(self) -> float:
        """Generation time: from :meth:`start` to the last prompt done."""
        return self.at - self.began

    def update(self, n: int, tokens: int = 0) -> None:
        self.done += n
        self.tokens += tokens
        now = self.at = time.monotonic()
        if now - self.last >= self.every or self.done >= self.total:
            self.last = now
            elapsed = max(now - self.began, 1e-9)
            rate = self.done / elapsed
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            print(f"[{self.label}] {self.done}/{self.total} prompts, {rate:.1f}/s, {self.tokens / elapsed:.1f} "
                  f"tokens/s, ~{left:.0f}s left", file=sys.stderr, flush=True)


#: vLLM's dtype when ``prediction.vllm_dtype`` is not given (the schema's default): bf16 on GPUs; on
#: CPU only float32 gives the transformers engine's greedy responses exactly (docs/gpu.md)
VLLM_DTYPE = "bfloat16"


def _pending(batches: list[list[int]], done: Done) -> list[int]:
    """Indices of the batches with a prompt not answered yet."""
    return [b for b, batch in enumerate(batches) if any(j not in done for j in batch)]


def generate_transformers(model_path: str, prompts: list[str], s: dict[str, Any], device: str,
                          done: Done | None = None, save: Save | None = None,
                          progress: Progress | None = None) -> list[list[Sample]]:
    """Batched generation with transformers: left padding, greedy or sampled, ``n`` samples each.

    Prompt ids and decoding come from :mod:`parallel_scaling.common.decoding`, as for vLLM: the prompt text is
    tokenized with the tokenizer's special tokens (one BOS), and the model's own generation config is
    replaced by one built from the settings (only its stop tokens are kept).

    ``done``: samples of an interrupted run, by prompt index; only the batches they do not cover
    are generated, each with its own seed (``seed`` + batch number) and the same prompts as in an
    uninterrupted run, and ``save`` gets each batch's samples as soon as they are made. A sample's
    finish reason and token counts come from its generated ids: the first stop token ends it
    ("eos"), else it ran to ``max_new_tokens`` ("length"); padding is never counted."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from parallel_scaling.common.decoding import encode_prompts, transformers_generation_config

    done = dict(done or {})
    tok = AutoTokenizer.from_pretrained(model_path, padding_side="left")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).to(device).eval()
    config = model.generation_config = transformers_generation_config(s, tok, model.generation_config)
    n, stops = config.num_return_sequences, list(config.eos_token_id)
    bs = s["batch_size"]
    prompt_ids = encode_prompts(tok, prompts)
    order = by_length(prompt_ids)
    batches = [order[i:i + bs] for i in range(0, len(order), bs)]
    pending = _pending(batches, done)
    progress = (progress or Progress()).start(sum(len(batches[b]) for b in pending), "transformers")
    for b in pending:
        batch = batches[b]
        torch.manual_seed(s["seed"] + b)  # a batch's samples do not depend on the batches before it
        enc = tok([prompts[j] for j in batch], return_tensors="pt", padding=True, add_special_tokens=True).to(device)
        with torch.no_grad():
            gen = model.generate(**enc, generation_config=config)
        new_ids = gen[:, enc["input_ids"].shape[1]:]
        texts = tok.batch_decode(new_ids, skip_special_tokens=True)
        rows = new_ids.tolist()
        made: Done = {}
        for slot, j in enumerate(batch):  # num_return_sequences: a prompt's n samples are adjacent rows
            made[j] = []
            for k in range(slot * n, (slot + 1) * n):
                reason, length = transformers_finish(rows[k], stops, config.max_new_tokens)
                made[j].append(sample(texts[k], reason, len(prompt_ids[j]), length))
        done.update(made)
        if save:
            save(made)
        progress.update(len(batch), sum(x["completion_tokens"] for samples in made.values() for x in samples))
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
                  done: Done | None = None, save: Save | None = None, progress: Progress | None = None,
                  llm: Any = None) -> list[list[Sample]]:
    """The same prompt token ids and decoding through vLLM (GPUs; its CPU build in the tests), as one
    continuous stream (:func:`parallel_scaling.common.vllm_stream.stream`): every prompt not in
    ``done`` is queued at once, and ``save`` gets the finished ones every ``SAVE_EVERY`` seconds.
    Each request has its own seeded generator (the settings' ``seed``, ``+ i`` for the i-th of ``n``
    samples), so a response depends only on its prompt and the settings, never on what ran beside it
    or on an earlier, interrupted run. ``llm``: an engine already started (tests, benchmarks)."""
    from vllm import LLM, SamplingParams

    done = dict(done or {})
    llm_kwargs, sampling_kwargs, token_prompts = vllm_arguments(model_path, prompts, s, tokenizer)
    pending = {j: token_prompts[j] for j in range(len(prompts)) if j not in done}
    progress = progress or Progress()
    if not pending:
        progress.start(0, "vllm")
        return [done[j] for j in range(len(prompts))]
    llm = llm or LLM(**llm_kwargs)
    progress.start(len(pending), "vllm")
    stream_samples(llm, pending, SamplingParams(**sampling_kwargs), done, save, progress)
    return [done[j] for j in range(len(prompts))]


def stream_samples(llm: Any, pending: dict[int, Any], params: Any, done: Done, save: Save | None,
                   progress: Progress) -> None:
    """The vLLM engine's loop: ``pending`` (prompt index -> vLLM prompt) in one stream of ``llm``
    with ``params`` (one ``SamplingParams``, or one per index: the benchmark forces lengths), each
    group of finished prompts turned into samples, added to ``done``, saved and counted."""
    from parallel_scaling.common.vllm_stream import stream

    def finished(outputs: dict[int, Any]) -> None:
        made = {j: vllm_samples(out) for j, out in sorted(outputs.items())}
        done.update(made)
        if save:
            save(made)
        progress.update(len(made), sum(x["completion_tokens"] for samples in made.values() for x in samples))

    stream(llm, pending, params, finished)


def vllm_samples(output: Any) -> list[Sample]:
    """The samples of one finished vLLM ``RequestOutput`` (its ``n`` completions, in order)."""
    prompt_tokens = len(output.prompt_token_ids or [])
    return [sample(o.text, vllm_finish(o), prompt_tokens, len(o.token_ids)) for o in output.outputs]


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
    p.add_argument("--served", default=None, help="engine served: the endpoint (base_url, concurrency, timeout_s, "
                   "retries, key_env) as JSON, kept out of --settings (evaluate/served.py)")
    p.add_argument("--shard", nargs=2, type=int, default=None, metavar=("I", "N"),
                   help="answer only the I-th of N contiguous blocks of each input's items (1-based): one "
                        "part of a benchmark language too long for one job (parallel_scaling.plan.prediction_jobs)")
    add_token_argument(p)
    a = p.parse_args(argv)

    import torch

    from parallel_scaling.jobs.integrity import digest, write_manifest
    from parallel_scaling.jobs.preflight import check_model_path, resolve_device
    from parallel_scaling.common.prompts import build_prompt

    torch.set_num_threads(a.threads)
    from parallel_scaling.evaluate import served

    s = served.merge_transport(parse_settings(a.settings), parse_settings(a.served) if a.served else None)
    meta = json.loads(a.meta)
    engine = s["engine"]
    # a served model runs on its server: no local device (nor one in the journal's identity)
    device = "server" if engine == "served" else resolve_device(
        s["device"], use_vllm=engine == "vllm", key="prediction.device", vllm_key="prediction.engine: 'vllm'")
    if engine == "served":  # the chat API needs no local tokenizer: the server applies its template
        tokenizer = served.load_tokenizer(a.model, s)
    else:
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
    if engine not in ("vllm", "transformers", "served"):
        raise ValueError(f"prediction.engine: {engine!r} is not one of transformers, vllm, served")
    if tokenizer is not None:
        check_context(a.model, prompts, tokenizer, s, engine, a.prompt_set,
                      [(path, rows) for (_, _, path), (_, _, rows) in zip(a.input, jobs)])

    outdir = Path(a.outdir)
    model_digest = digest(a.model)
    prompts_hash = identity(prompts=prompts)
    journal = Journal(a.journal or f"{outdir}.journal.jsonl",
                      identity(model=model_digest, prompts=prompts_hash, settings=served.identity_settings(s),
                               engine=engine, device=device))
    done = journal.load()
    if done:
        print(f"[journal] resuming: {len(done)} of {len(prompts)} prompts were answered by an earlier run of "
              f"this job ({journal.path}); generating the other {len(prompts) - len(done)}", file=sys.stderr,
              flush=True)
    progress = Progress()
    if engine == "served":
        responses = served.generate(a.model, prompts, s, tokenizer, a.prompt_set, jobs, outdir, done, journal.save,
                                    progress)
    elif engine == "vllm":
        responses = generate_vllm(a.model, prompts, s, tokenizer, done, journal.save, progress)
    else:
        responses = generate_transformers(a.model, prompts, s, device, done, journal.save, progress)

    i = 0
    files: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for bench, lang, rows in jobs:
        out_rows = []
        for r in rows:
            # an item's difficulty level travels with it, for the difficulty-weighted accuracy
            extra = {"difficulty": r["difficulty"]} if r.get("difficulty") is not None else {}
            for index, resp in enumerate(responses[i]):
                out_rows.append({**meta, "benchmark": bench, "lang": lang, "id": str(r["id"]), "sample": index,
                                 "question": r["question"], "prompt": prompts[i], "gold": str(r["answer"]),
                                 "answer_type": r.get("answer_type", "number"), **extra, "response": resp["text"],
                                 "finish_reason": resp["finish_reason"], "prompt_tokens": resp["prompt_tokens"],
                                 "completion_tokens": resp["completion_tokens"]})
            i += 1
        write_jsonl(outdir / bench / f"{lang}.jsonl", out_rows)
        files[(bench, lang)] = out_rows
    write_json(outdir / "_settings.json", {"engine": engine, "device": device, "model": a.model,
                                           "model_digest": model_digest, "prompt_set": a.prompt_set,
                                           "settings": s, "meta": meta})
    summary = summarize(files, max_new_tokens=int(s["max_new_tokens"]), generated_prompts=progress.done,
                        generated_tokens=progress.tokens, seconds=progress.seconds)
    write_json(outdir / SUMMARY_FILE, summary)
    print("\n".join(log_lines(summary)), file=sys.stderr, flush=True)
    write_manifest(outdir, a.manifest_token)
    journal.remove()  # everything it held is in the files now
    return 0
