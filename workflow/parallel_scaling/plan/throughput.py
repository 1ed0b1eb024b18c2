"""The throughput file (``workflow/resources/gpu_throughput.yaml``) and the token counts and seconds
computed from it: what ``cost-plan`` and the prediction job planner (:mod:`parallel_scaling.plan.
prediction_jobs`, imported while the Snakefile is parsed) both estimate from. Light imports only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

from parallel_scaling.dataio.paths import RESOURCE_DIR

THROUGHPUT = RESOURCE_DIR / "gpu_throughput.yaml"


def load_throughput(path: str | Path = THROUGHPUT) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"throughput file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    for key in ("gpus", "benchmarks", "sources", "tokens"):
        if key not in data:
            raise ValueError(f"{path}: missing section {key!r}")
    return data


def gpu_figures(throughput: Mapping[str, Any], gpu: str) -> dict[str, float]:
    gpus = throughput["gpus"]
    if gpu not in gpus:
        raise ValueError(f"unknown GPU type {gpu!r}; the throughput file defines {sorted(gpus)} "
                         f"(add an entry under gpus: to workflow/resources/gpu_throughput.yaml)")
    fig = dict(gpus[gpu])
    need = ("peak_bf16_tflops", "train_mfu", "prefill_mfu", "decode_tokens_per_s_7b", "decode_max_tokens_per_s")
    missing = [k for k in need if k not in fig]
    if missing:
        raise ValueError(f"gpus.{gpu}: missing {missing} in the throughput file")
    fig.setdefault("grpo_rollout_efficiency", 1.0)
    return fig


def _params(size_b: float) -> float:
    return float(size_b) * 1e9


def decode_tps(fig: Mapping[str, float], size_b: float) -> float:
    return min(fig["decode_tokens_per_s_7b"] * 7.0 / max(float(size_b), 1e-9), fig["decode_max_tokens_per_s"])


def flops_seconds(flops: float, fig: Mapping[str, float], mfu_key: str) -> float:
    return flops / (fig["peak_bf16_tflops"] * 1e12 * fig[mfu_key])


def source_rows(config: Mapping[str, Any], throughput: Mapping[str, Any], split: str) -> int:
    src = config["source"]
    if src["kind"] == "synthetic":
        n = src["synthetic"]["n_train" if split == "train" else "n_test"]
    else:
        key = src.get("hf_name") if src["kind"] == "huggingface" else src.get(split)
        table = throughput["sources"]
        n = int((table.get(key) or table["default"])[split])
    limit = src.get("limit")
    if isinstance(limit, int):
        n = min(n, limit)
    elif isinstance(limit, Mapping) and limit.get(split):
        n = min(n, int(limit[split]))
    return int(n)


def benchmark_size(config: Mapping[str, Any], throughput: Mapping[str, Any], name: str) -> tuple[int, int]:
    """(items per language, prompt tokens) of a benchmark."""
    spec = config["benchmarks"][name]
    table = throughput["benchmarks"]
    if spec.get("kind") == "synthetic":
        items, prompt = source_rows(config, throughput, "test"), throughput["tokens"]["question_tokens_tiny"]
    else:
        entry = table.get(spec.get("preset") or name) or table.get(name) or table["default"]
        items, prompt = int(entry["items"]), int(entry["prompt_tokens"])
    for cap in (spec.get("limit"), config["prediction"].get("limit")):
        if cap:
            items = min(items, int(cap))
    return items, prompt


def question_tokens(config: Mapping[str, Any], throughput: Mapping[str, Any], model: str) -> int:
    tok = throughput["tokens"]
    return int(tok["question_tokens_tiny"] if config["models"][model]["source"] == "tiny" else tok["question_tokens"])
