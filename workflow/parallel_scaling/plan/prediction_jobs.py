"""Prediction jobs shaped to fit their time limit, and what each costs.

One checkpoint's predictions over every benchmark x language file can take days for a reasoning
model with 32k-token answers; a SLURM job gets hours. When the estimate of a checkpoint's one job
exceeds ``prediction_jobs.max_hours`` (on ``prediction_jobs.gpu``), its files are split into
*parts*, each a ``predict`` job of its own (``predictions/<run>.parts/<part>``, with its manifest):

1. whole benchmarks, packed in config order while a part stays within the limit;
2. a benchmark too long for one job: its languages, packed the same way;
3. one benchmark language too long for one job: contiguous shards of its items (``<b>.<lang>.2of3``).

The split depends only on the config, the throughput file and the answer-length table (never on
the SLURM profile or on what has run), so every ``snakemake`` call plans the same jobs. A part is
named after what it holds: when the split changes, a part that holds the same files keeps its name
and its finished predictions; a part whose files changed is predicted anew. ``score`` reads every
part of a checkpoint in benchmark, language and shard order and writes its one scored file, row
for row what one unsplit job would have given.

A checkpoint whose one job fits is not split: its job, paths and results are those of an unsplit
study (the part wildcard is empty).

Light imports only (the Snakefile imports this while planning).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from parallel_scaling.plan import answer_lengths, model_settings, study
from parallel_scaling.plan.throughput import benchmark_size, decode_tps, flops_seconds, gpu_figures, load_throughput

#: the part wildcard of a checkpoint predicted in one job, and the folder suffix of split ones
WHOLE = ""
PARTS = ".parts/"
#: Snakemake's constraint for the part wildcard (empty: the checkpoint's one job)
PART_PATTERN = r"|\.parts/[^/]+"

#: start-up of a prediction job (imports, loading the weights, vLLM's profiling and CUDA graphs) and
#: the efficiency of tensor parallelism, when the throughput file's ``prediction`` section omits them
PREDICTION_DEFAULTS = {"startup_s": 120.0, "startup_s_per_b": 6.0, "tensor_parallel_efficiency": 0.85}


@dataclass(frozen=True)
class FileCost:
    """The estimate of one benchmark language of one checkpoint, on one GPU."""

    benchmark: str
    lang: str
    items: int
    answer_tokens: float
    answer_source: str
    gen_tokens: float
    prompt_tokens: float
    seconds: float  # decoding + prefill on one GPU (tensor parallelism and start-up not counted)


@dataclass(frozen=True)
class Part:
    """One prediction job of a checkpoint: its files, and for a shard its index (1-based) and count."""

    label: str
    files: tuple[tuple[str, str], ...]
    shard: tuple[int, int] | None = None

    @property
    def wildcard(self) -> str:
        """The ``part`` wildcard: empty for a checkpoint's one job, else ``.parts/<label>``."""
        return WHOLE if not self.label else PARTS + self.label

    def share(self) -> float:
        """The share of its files' items this part answers."""
        return 1.0 if self.shard is None else 1.0 / self.shard[1]


def figures(throughput: Mapping[str, Any]) -> dict[str, float]:
    return {**PREDICTION_DEFAULTS, **(throughput.get("prediction") or {})}


def settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The prediction job planner's section with its defaults (``prediction_jobs``)."""
    return {"max_hours": 20.0, "gpu": "h100", "answer_lengths": None, **(config.get("prediction_jobs") or {})}


def length_table(config: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    path = settings(config).get("answer_lengths")
    return answer_lengths.load_table(path) if path else None


def startup_seconds(throughput: Mapping[str, Any], size_b: float) -> float:
    f = figures(throughput)
    return float(f["startup_s"]) + float(f["startup_s_per_b"]) * float(size_b)


def model_prediction_settings(config: Mapping[str, Any], model: str, throughput: Mapping[str, Any] | None,
                              cache: dict | None = None) -> dict[str, Any]:
    """model_settings.model_settings, once per model and ``cache`` (one plan reads each model's
    shape once, not once per run: planning stays linear in the study's size)."""
    if cache is None:
        return model_settings.model_settings(config, model, throughput)
    key = ("settings", model)
    if key not in cache:
        cache[key] = model_settings.model_settings(config, model, throughput)
    return cache[key]


def job_gpus(config: Mapping[str, Any], run: study.Run, throughput: Mapping[str, Any] | None = None,
             cache: dict | None = None) -> int:
    """GPUs of a prediction job of ``run`` (its model's tensor parallelism with vLLM)."""
    return model_settings.job_gpus(config, run.model, model_prediction_settings(config, run.model, throughput, cache))


def run_architecture(config: Mapping[str, Any], run: study.Run, throughput: Mapping[str, Any]) -> dict[str, Any]:
    """The shape of the checkpoint ``run`` evaluates (its pair's starting model for one trained here)."""
    checkpoint = evaluated_checkpoint(config, run)
    for path, arch in model_settings.checkpoint_architectures(config, run.model, throughput):
        if path == checkpoint:
            return arch
    return model_settings.architecture(config, run.model, throughput)


def file_costs(config: Mapping[str, Any], throughput: Mapping[str, Any], fig: Mapping[str, float],
               run: study.Run, table: Sequence[Mapping[str, Any]] | None, cache: dict | None = None
               ) -> list[FileCost]:
    """Every benchmark language of ``run``: tokens and seconds on one GPU of ``fig``."""
    # the same for every run of one model and paradigm (mixtures and seeds differ only in weights)
    key = ("costs", run.model, run.paradigm, evaluated_checkpoint(config, run), tuple(sorted(fig.items())), id(table))
    if cache is not None and key in cache:
        return cache[key]
    p = model_prediction_settings(config, run.model, throughput, cache)
    size_b = float(config["models"][run.model]["size_b"])
    fill = float(throughput["tokens"]["prediction_fill"])
    arch = run_architecture(config, run, throughput) if p.get("engine") == "vllm" else {}
    context = int(p.get("vllm_max_model_len") or (arch.get("context") if arch.get("read") else 0) or 0)
    out = []
    for b, lg in study.bench_lang_pairs(dict(config)):
        items, ptok = benchmark_size(config, throughput, b)
        # an answer ends at max_new_tokens or where the context ends, whichever comes first
        longest = min(int(p["max_new_tokens"]), context - ptok) if context > ptok else int(p["max_new_tokens"])
        length = answer_lengths.answer_length(table, longest, fill, model=run.model,
                                              paradigm=run.paradigm, benchmark=b, lang=lg)
        gen = items * int(p["n"]) * length.mean
        prompt = float(items * ptok)
        secs = gen / decode_tps(fig, size_b) + flops_seconds(prompt * 2 * size_b * 1e9, fig, "prefill_mfu")
        out.append(FileCost(b, lg, items, length.mean, length.source, gen, prompt, secs))
    if cache is not None:
        cache[key] = out
    return out


def wall_seconds(costs: Sequence[FileCost], part: Part, throughput: Mapping[str, Any], size_b: float,
                 gpus: int) -> float:
    """Hours on the clock (in seconds) of one part: start-up, then its files' seconds over its GPUs."""
    files = set(part.files)
    compute = sum(c.seconds for c in costs if (c.benchmark, c.lang) in files) * part.share()
    eff = float(figures(throughput)["tensor_parallel_efficiency"]) if gpus > 1 else 1.0
    return startup_seconds(throughput, size_b) + compute / (max(gpus, 1) * eff)


def split(costs: Sequence[FileCost], budget_s: float | None, per_gpu: float = 1.0) -> list[Part]:
    """The parts of one checkpoint (module docstring): ``budget_s`` is the seconds of compute one
    job may hold on one GPU after its start-up (None: never split); ``per_gpu`` divides a file's
    seconds (its job's GPUs x tensor-parallel efficiency)."""
    everything = tuple((c.benchmark, c.lang) for c in costs)
    secs = {(c.benchmark, c.lang): c.seconds / per_gpu for c in costs}
    items = {(c.benchmark, c.lang): c.items for c in costs}
    if budget_s is None or sum(secs.values()) <= budget_s:
        return [Part(WHOLE, everything)]
    if budget_s <= 0:
        raise ValueError("prediction_jobs.max_hours leaves no time after the job's start-up: raise it")
    benches: dict[str, list[str]] = {}
    for b, lg in everything:
        benches.setdefault(b, []).append(lg)
    parts: list[Part] = []
    pack: list[str] = []  # whole benchmarks waiting to be emitted together
    pack_s = 0.0

    def flush_pack() -> None:
        nonlocal pack, pack_s
        if pack:
            parts.append(Part("+".join(pack), tuple((b, lg) for b in pack for lg in benches[b])))
        pack, pack_s = [], 0.0

    for b, langs in benches.items():
        b_s = sum(secs[(b, lg)] for lg in langs)
        if b_s <= budget_s:
            if pack_s + b_s > budget_s:
                flush_pack()
            pack.append(b)
            pack_s += b_s
            continue
        flush_pack()
        group: list[str] = []
        group_s = 0.0
        for lg in langs:
            s = secs[(b, lg)]
            if s > budget_s:
                if group:
                    parts.append(Part(f"{b}.{'+'.join(group)}", tuple((b, g) for g in group)))
                group, group_s = [], 0.0
                n = min(math.ceil(s / budget_s), max(items[(b, lg)], 1))  # no empty shard
                parts += [Part(f"{b}.{lg}.{i}of{n}", ((b, lg),), (i, n)) for i in range(1, n + 1)]
                continue
            if group_s + s > budget_s:
                parts.append(Part(f"{b}.{'+'.join(group)}", tuple((b, g) for g in group)))
                group, group_s = [], 0.0
            group.append(lg)
            group_s += s
        if group:
            parts.append(Part(f"{b}.{'+'.join(group)}", tuple((b, g) for g in group)))
    flush_pack()
    return parts


def run_parts(config: Mapping[str, Any], run: study.Run, throughput: Mapping[str, Any] | None = None,
              table: Sequence[Mapping[str, Any]] | None = None, cache: dict | None = None) -> list[Part]:
    """The prediction jobs of one checkpoint, planned on ``prediction_jobs.gpu``."""
    throughput = throughput if throughput is not None else load_throughput()
    s = settings(config)
    costs = file_costs(config, throughput, gpu_figures(throughput, s["gpu"]), run, table, cache)
    if s["max_hours"] is None:
        return split(costs, None)
    size_b = float(config["models"][run.model]["size_b"])
    gpus = job_gpus(config, run, throughput, cache)
    eff = float(figures(throughput)["tensor_parallel_efficiency"]) if gpus > 1 else 1.0
    startup = startup_seconds(throughput, size_b)
    budget = float(s["max_hours"]) * 3600 - startup
    if budget <= 0:
        raise ValueError(f"prediction_jobs.max_hours: {s['max_hours']} h is shorter than the start-up of a "
                         f"{run.model} prediction job ({startup / 3600:.2g} h on {s['gpu']}; throughput file, "
                         f"section prediction): raise it")
    return split(costs, budget, max(gpus, 1) * eff)


def evaluated_checkpoint(config: Mapping[str, Any], run: study.Run) -> str | None:
    """The checkpoint a run evaluates when it is given, not trained or built here (None then)."""
    m = config["models"][run.model]
    if run.paradigm == "init" and m.get("source") != "tiny":
        return str(m["path"])
    if run.paradigm == "public":
        return str(m["trained"])
    return None


def duplicates(config: Mapping[str, Any], throughput: Mapping[str, Any] | None = None,
               cache: dict | None = None) -> dict[str, study.Run]:
    """Runs that evaluate a checkpoint another run evaluates already, with the same prompt set and
    prediction settings (the trained model of one pair named as the starting model of another):
    run path -> the run (first in study order) whose predictions it reuses."""
    seen: dict[tuple[str, str, str], study.Run] = {}
    out: dict[str, study.Run] = {}
    cache = {} if cache is None else cache
    for run in study.runs(dict(config)):
        checkpoint = evaluated_checkpoint(config, run)
        if checkpoint is None:
            continue
        s = model_prediction_settings(config, run.model, throughput, cache)
        key = (checkpoint, json.dumps(s, sort_keys=True), str(config["models"][run.model].get("prompt_set")))
        if key in seen:
            out[run.path] = seen[key]
        else:
            seen[key] = run
    return out


def study_parts(config: Mapping[str, Any], throughput: Mapping[str, Any] | None = None) -> dict[str, list[Part]]:
    """Every checkpoint's prediction jobs, by run path (what the Snakefile plans); a run that
    reuses another's predictions (:func:`duplicates`) has none."""
    throughput = throughput if throughput is not None else load_throughput()
    table = length_table(config)
    cache: dict = {}
    reused = duplicates(config, throughput, cache)
    return {run.path: run_parts(config, run, throughput, table, cache) for run in study.runs(dict(config))
            if run.path not in reused}


def part_files(parts: Sequence[Part], pairs: Sequence[tuple[str, str]]) -> list[tuple[Part, str, str]]:
    """(part, benchmark, language) in the order one unsplit job writes its rows: benchmark and
    language in config order, the shards of a file in their order."""
    out = []
    for b, lg in pairs:
        holders = [p for p in parts if (b, lg) in p.files]
        holders.sort(key=lambda p: p.shard[0] if p.shard else 0)
        out += [(p, b, lg) for p in holders]
    return out
