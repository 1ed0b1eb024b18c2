"""The ``served`` translation backend: the endpoint of ``translation.served`` as a translation engine.

Kept beside :mod:`parallel_scaling.data.translate` (which dispatches to it) so that module stays
about its backends' shared steps; the requests, retries and records are
:mod:`parallel_scaling.common.served`'s, shared with prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parallel_scaling.data.translate import Engine, TranslationError, _section, sampling_settings


def served_engine(settings: Mapping[str, Any]) -> Engine:
    """The ``served`` backend: the endpoint of ``translation.served``; the completions API renders the
    prompt with the chat template of ``translation.model.path`` (its tokenizer), the chat API sends
    the messages and needs no local model."""
    from parallel_scaling.common.preflight import check_model_path
    from parallel_scaling.common.served import ServedEngine

    model_cfg, cfg = _section(settings, "model"), _section(settings, "served")
    path, name = model_cfg.get("path"), cfg.get("model") or model_cfg.get("path")
    if not name:
        raise TranslationError("translation.served.model: required for backend 'served' (the model name the "
                               "server knows; or translation.model.path, which vllm serve registers by default)")
    tokenizer, context = None, (None, "unknown")
    if cfg["api"] == "completions":
        if not path:
            raise TranslationError("translation.model.path: required for backend 'served' with api 'completions' "
                                   "(the tokenizer whose chat template renders the prompt, as the other backends)")
        from transformers import AutoConfig, AutoTokenizer

        from parallel_scaling.common.decoding import model_context

        check_model_path(str(path), key="translation.model.path")
        tokenizer = AutoTokenizer.from_pretrained(path)
        context = model_context(AutoConfig.from_pretrained(path))
    return ServedEngine({**sampling_settings(model_cfg), "served": cfg}, str(name), tokenizer, "translation.served",
                        context)
