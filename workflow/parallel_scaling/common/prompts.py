"""Prompt construction shared by training and prediction.

One function builds the text a model sees, so that a checkpoint is evaluated with exactly the
prompt it was trained on. Templates live in ``workflow/resources/prompts.yaml`` (data, not code):
a per-language user template, whether to apply the model's chat template, and an optional forced
assistant prefix (the "prompt hacking" used to steer the thinking language).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.paths import RESOURCE_DIR

import yaml

from parallel_scaling.common.decoding import strip_bos

PROMPTS_FILE = RESOURCE_DIR / "prompts.yaml"


@lru_cache(maxsize=8)
def load_prompt_sets(path: str = str(PROMPTS_FILE)) -> dict[str, dict[str, Any]]:
    """All prompt sets of a prompts file, keyed by name."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of prompt-set names")
    return data


def prompt_set(name: str, path: str | None = None) -> dict[str, Any]:
    """One prompt set; an unknown name lists the known ones."""
    sets = load_prompt_sets(path or str(PROMPTS_FILE))
    if name not in sets:
        raise ValueError(f"prompt set {name!r} not found in {path or PROMPTS_FILE}; known: {sorted(sets)}")
    return sets[name]


def missing_languages(name: str, langs: list[str], path: str | None = None) -> list[str]:
    """Languages with no user template (and no ``default``) in a prompt set."""
    user = prompt_set(name, path).get("user", {})
    return [] if "default" in user else [lang for lang in langs if lang not in user]


def build_prompt(question: str, lang: str, set_name: str, tokenizer: Any = None,
                 path: str | None = None) -> str:
    """The full prompt text for one question in one language.

    A chat template's leading BOS is left out when the tokenizer adds BOS itself
    (``decoding.strip_bos``): every consumer (transformers, vLLM via token ids, TRL's GRPO and SFT)
    tokenizes this text with special tokens, so each sees exactly one BOS."""
    ps = prompt_set(set_name, path)
    user_templates = ps.get("user", {})
    template = user_templates.get(lang, user_templates.get("default"))
    if template is None:
        raise ValueError(f"prompt set {set_name!r} has no template for language {lang!r} and no default")
    user = template.format(question=question)
    prefix = (ps.get("assistant_prefix") or {}).get(lang, "")
    if ps.get("chat_template", False) and tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                             add_generation_prompt=True)
        return strip_bos(text, tokenizer) + prefix
    return user + prefix
