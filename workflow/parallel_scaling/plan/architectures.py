"""A model's shape as the memory and context checks need it: layers, KV heads, head size, context.

Read from what will be evaluated or trained (a local folder's config.json, the local Hugging Face
cache), else the throughput file's ``architectures`` table (by hub id, extendable), else a size-based
fallback that is flagged as assumed. Kept apart from :mod:`.memory` (the pre-flight) because the
per-model settings (:mod:`.model_settings`) read shapes too, and the pre-flight reads those settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def model_architecture(path: str | None, size_b: float, throughput: Mapping[str, Any]) -> dict[str, Any]:
    """Layers, KV heads, head size and context of a model: a local model's config.json, else the
    throughput file's ``architectures`` table (by hub id), else the size-based fallback (flagged)."""
    mem = throughput.get("memory") or {}
    cfg_file = Path(path) / "config.json" if path else None
    if path and not cfg_file.is_file() and not Path(path).exists():
        from parallel_scaling.jobs.integrity import cached_hub_file

        cached = cached_hub_file(path)  # a hub model in the local cache: what its job would load
        cfg_file = Path(cached) if cached else cfg_file
    if cfg_file is not None and cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text())
        cfg = cfg.get("text_config", cfg)
        heads = int(cfg["num_attention_heads"])
        return {"layers": int(cfg["num_hidden_layers"]), "heads": heads,
                "kv_heads": int(cfg.get("num_key_value_heads") or heads),
                "head_dim": int(cfg.get("head_dim") or cfg["hidden_size"] // heads),
                "context": int(cfg.get("max_position_embeddings") or 0), "source": f"{path} config.json",
                "read": True}
    known = (throughput.get("architectures") or {}).get(path or "")
    if known:
        return {**known, "source": "gpu_throughput.yaml architectures", "read": True}
    fb = mem.get("fallback") or {"kv_bytes_per_token_per_b": 16384, "context": 32768}
    return {"kv_bytes_per_token": float(fb["kv_bytes_per_token_per_b"]) * float(size_b), "context": int(fb["context"]),
            "source": "assumed (model not in gpu_throughput.yaml architectures)", "read": False}


def kv_bytes_per_token(arch: Mapping[str, Any]) -> float:
    """bf16 K and V of every layer for one token."""
    if "kv_bytes_per_token" in arch:
        return float(arch["kv_bytes_per_token"])
    return 2.0 * arch["layers"] * arch["kv_heads"] * arch["head_dim"] * 2
