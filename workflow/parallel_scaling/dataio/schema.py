"""The config schema as the one source of every setting's default, and of which settings go to TRL.

Why: a default written in the schema and again in a module drifts, and a hand-kept list of the keys
passed to ``GRPOConfig``/``SFTConfig`` misses the next setting someone adds. So the schema
(``workflow/schemas/config.schema.json``) holds each default once, modules that also run outside
Snakemake ask :func:`defaults` for theirs, and a trainer section passes every key it has to TRL's
config class except the ones the schema marks ``"x-pipeline": true`` (settings of this pipeline,
such as ``device`` or ``accelerate_config``, that TRL does not have). A test fails when a key the
schema sends to TRL is not a field of TRL's config.

Imported while the Snakefile is parsed: standard library only.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from parallel_scaling.dataio.paths import SCHEMA_FILE

#: the schema annotation of a setting that is the pipeline's own, not TRL's
PIPELINE = "x-pipeline"


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def _deref(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = load()
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def node(*path: str) -> dict[str, Any]:
    """The schema of the setting at ``path`` (``"grpo"``; ``"models", "*", "build"``; ``"$defs", "sft_run"``)."""
    current: dict[str, Any] = load()
    for part in path:
        if part == "$defs":
            current = load()["$defs"]
            continue
        if "properties" not in current and part in current:  # inside $defs
            current = _deref(current[part])
            continue
        current = _deref(current["additionalProperties"] if part == "*" else current["properties"][part])
    return current


def defaults(*path: str) -> dict[str, Any]:
    """Every default of the object setting at ``path``, nested objects included."""
    out: dict[str, Any] = {}
    for key, prop in node(*path).get("properties", {}).items():
        prop = _deref(prop)
        if "properties" in prop and (prop.get("type") == "object" or isinstance(prop.get("default"), dict)):
            # an object: its own settings' defaults, under any it states itself
            given = prop.get("default")
            out[key] = {**defaults(*path, key), **(given if isinstance(given, dict) else {})}
        elif "default" in prop:
            out[key] = prop["default"]
    return out


def trainer_keys(*path: str) -> tuple[str, ...]:
    """The keys of a trainer section that go to TRL's config unchanged (all but ``x-pipeline``)."""
    props = node(*path).get("properties", {})
    return tuple(k for k, v in props.items() if not _deref(v).get(PIPELINE))
