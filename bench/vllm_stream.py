#!/usr/bin/env python3
"""The vLLM prediction engine against the limit: one stream per job vs one ``LLM.generate`` vs the
chunked code it replaced, on vLLM's CPU build (docs/performance.md, "vLLM: one stream per job").

    bash bench/vllm_stream.sh --requests 6000 --scale 16 --out /tmp/vllm_stream.jsonl

(the wrapper runs this script in ``.venv-vllm`` with the CPU settings of tests/test_vllm_cpu.py).

Requests: the released tiny model (``models/tiny-qwen2``, float32, eager), prompts built from
synthetic questions with the ``plain`` prompt set, and completion lengths that follow the
long-tailed shape of reasoning models on grade-school math (issue #35: p10 160, median 390, p90
810, p99 3,100, longest 29,000 tokens), divided by ``--scale`` and cut to what the model's context
holds (256 positions), each forced with ``ignore_eos`` and its own ``max_tokens``. Lengths are the
quantiles of that shape (log-linear between the given points), shuffled with a fixed seed: every
variant decodes exactly the same tokens. One engine serves all variants (started once, warmed up);
each variant is timed from its first request to its last answer saved:

* ``generate``: one plain ``LLM.generate`` over all requests, the limit;
* ``stream``: the shipped engine's loop (``evaluate.predict.stream_samples``: one continuous stream,
  samples built, journal saved every ``SAVE_EVERY`` seconds to a temporary file, progress);
* ``chunked``: the code it replaced (:func:`chunked`, ``LLM.generate`` on chunks of 512 prompts,
  each chunk's samples saved before the next starts), kept here as the reference for equality
  (tests/test_vllm_cpu.py) and speed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from parallel_scaling.evaluate.journal import Journal  # noqa: E402
from parallel_scaling.evaluate.predict import Progress, stream_samples, vllm_samples  # noqa: E402
from parallel_scaling.evaluate.samples import Done, Save  # noqa: E402

MODEL = REPO / "models" / "tiny-qwen2"
#: prompts per ``LLM.generate`` call in the code the stream replaced (evaluate/predict.py until #35)
CHUNK = 512
#: (quantile, tokens) of reasoning models' answers on grade-school math (issue #35); 40 at the low end is ours
SHAPE = ((0.0, 40), (0.10, 160), (0.50, 390), (0.90, 810), (0.99, 3100), (1.0, 29000))


def chunked(llm: Any, pending: dict[int, Any], params: Any, done: Done, save: Save | None,
            progress: Progress, chunk: int = CHUNK) -> None:
    """The chunked vLLM loop that ``stream_samples`` replaced: prompts in chunks of ``chunk``
    consecutive indices, one blocking ``LLM.generate`` per chunk, its samples saved before the next
    chunk starts. ``params``: one ``SamplingParams`` or one per index."""
    keys = sorted(pending)
    for start in range(0, len(keys), chunk):
        part = keys[start:start + chunk]
        per = [params[j] for j in part] if isinstance(params, dict) else params
        results = llm.generate([pending[j] for j in part], per, use_tqdm=False)
        made = {j: vllm_samples(r) for j, r in zip(part, results, strict=True)}
        done.update(made)
        if save:
            save(made)
        progress.update(len(made), sum(x["completion_tokens"] for s in made.values() for x in s))


def lengths(n: int, scale: float, cap: list[int], seed: int = 0) -> list[int]:
    """``n`` completion lengths of the long-tailed shape divided by ``scale``, the i-th at most
    ``cap[i]`` and at least 1, shuffled with ``seed``."""
    def quantile(u: float) -> float:
        for (u0, v0), (u1, v1) in zip(SHAPE, SHAPE[1:]):
            if u <= u1:
                return math.exp(math.log(v0) + (math.log(v1) - math.log(v0)) * (u - u0) / (u1 - u0))
        return SHAPE[-1][1]

    values = [quantile((i + 0.5) / n) / scale for i in range(n)]
    random.Random(seed).shuffle(values)
    return [max(1, min(c, round(v))) for v, c in zip(values, cap)]


def requests(n: int, scale: float) -> tuple[dict[int, Any], list[int]]:
    """Token-id prompts (synthetic questions, ``plain`` prompt set) and their forced lengths."""
    from transformers import AutoConfig, AutoTokenizer

    from parallel_scaling.common.decoding import vllm_prompts
    from parallel_scaling.common.prompts import build_prompt

    tok = AutoTokenizer.from_pretrained(MODEL)
    rng = random.Random(1)
    texts = []
    for _ in range(n):
        gifts = "".join(f"He gives away {rng.randint(1, 9)}. " for _ in range(rng.randint(0, 3)))
        question = f"Tom has {rng.randint(1, 99)} apples and buys {rng.randint(1, 99)} more. {gifts}How many are left?"
        texts.append(build_prompt(question, "en", "plain", tok))
    prompts = vllm_prompts(tok, texts)
    context = AutoConfig.from_pretrained(MODEL).max_position_embeddings
    lens = lengths(n, scale, [context - len(p["prompt_token_ids"]) for p in prompts])
    return dict(enumerate(prompts)), lens


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and its descendants (vLLM's engine core and worker):
    the work a variant did, little changed by other programs on a shared machine, unlike wall time."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run(variant: str, llm: Any, prompts: dict[int, Any], params: dict[int, Any], workdir: Path) -> dict[str, Any]:
    """Time one variant; returns its numbers and its samples (for the equality check)."""
    done: Done = {}
    journal = Journal(workdir / f"{variant}.journal.jsonl", "sha256:bench")
    progress = Progress(every=30.0).start(len(prompts), variant)
    start, cpu = time.perf_counter(), cpu_seconds()
    if variant == "generate":
        results = llm.generate([prompts[j] for j in sorted(prompts)], [params[j] for j in sorted(prompts)],
                               use_tqdm=False)
        done = {j: vllm_samples(r) for j, r in zip(sorted(prompts), results, strict=True)}
    elif variant == "stream":
        stream_samples(llm, prompts, params, done, journal.save, progress)
    else:
        chunked(llm, prompts, params, done, journal.save, progress)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    tokens = sum(x["completion_tokens"] for s in done.values() for x in s)
    return {"variant": variant, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "completion_tokens": tokens,
            "tokens_per_s": round(tokens / seconds, 1), "samples": done}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--scale", type=float, default=16.0, help="divide the real lengths by this (default 16)")
    p.add_argument("--variants", default="generate,stream,chunked,chunked,stream,generate",
                   help="comma-separated, timed in this order (default: each twice, the second time in reverse "
                        "order, so that what runs first or last does not favour a variant)")
    p.add_argument("--out", help="append the numbers as one JSON line to this file")
    a = p.parse_args(argv)

    from vllm import LLM, SamplingParams

    prompts, lens = requests(a.requests, a.scale)
    params = {j: SamplingParams(temperature=0.0, max_tokens=n, ignore_eos=True) for j, n in zip(prompts, lens)}
    ordered = sorted(lens)
    print(f"{len(prompts)} requests, {sum(lens)} completion tokens: p10 {ordered[len(lens) // 10]}, "
          f"p50 {ordered[len(lens) // 2]}, p90 {ordered[len(lens) * 9 // 10]}, p99 {ordered[len(lens) * 99 // 100]}, "
          f"max {ordered[-1]}", flush=True)
    started = time.perf_counter()
    llm = LLM(model=str(MODEL), dtype="float32", enforce_eager=True, seed=0, generation_config="vllm")
    print(f"engine started in {time.perf_counter() - started:.0f} s", flush=True)
    # warm-up: the first batches of each shape are slow on CPU (kernels chosen, memory mapped)
    warm = min(len(prompts), 1000)
    llm.generate([prompts[j] for j in range(warm)], [params[j] for j in range(warm)], use_tqdm=False)
    print(f"engine warmed up on {warm} requests", flush=True)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in a.variants.split(","):
            r = run(variant, llm, prompts, params, Path(tmp))
            results.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "samples"}), flush=True)
    bases = [r for r in results if r["variant"] == "generate"]
    for r in results:
        assert r["completion_tokens"] == sum(lens), (r["variant"], r["completion_tokens"], sum(lens))
        if bases:
            r["vs_generate"] = round(r["seconds"] / min(b["seconds"] for b in bases), 3)
            r["cpu_vs_generate"] = round(r["cpu_seconds"] / min(b["cpu_seconds"] for b in bases), 3)
            r["samples_equal"] = all(r["samples"][j] == bases[0]["samples"][j] for j in prompts)
            print(f"{r['variant']}: {r['seconds']:.1f} s ({r['vs_generate']:.3f}x the faster plain generate's), "
                  f"{r['cpu_seconds']:.1f} CPU-s ({r['cpu_vs_generate']:.3f}x), {r['tokens_per_s']:.0f} tokens/s; "
                  f"samples equal to its: {r['samples_equal']}", flush=True)
    record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or
              platform.machine(), "cpus": os.cpu_count(), "requests": a.requests, "scale": a.scale, "chunk": CHUNK,
              "completion_tokens": sum(lens), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
              "results": [{k: v for k, v in r.items() if k != "samples"} for r in results]}
    if a.out:
        with open(a.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
