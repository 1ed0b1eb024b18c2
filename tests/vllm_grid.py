"""The decoding settings both vLLM argument checks walk (tests/test_vllm_api.py against conditions
extracted from the pinned wheel, tests/test_vllm_real_api.py against the installed vLLM), and what our
own config validation says of each: the two checks must agree with it on every point."""

from __future__ import annotations

import itertools

from parallel_scaling.plan import checks

#: (temperature, n, top_p, top_k, repetition_penalty): inside and outside vLLM's limits
GRID = list(itertools.product([0.0, 0.005, 0.6, 2.0, 2.5], [1, 4], [1.0, 0.5], [0, 20], [1.0, 1.2]))


def prediction_section(temperature: float, n: int, top_p: float, top_k: int, rep: float) -> dict:
    return {"engine": "vllm", "temperature": temperature, "n": n, "top_p": top_p, "top_k": top_k,
            "repetition_penalty": rep, "max_new_tokens": 16}


def config_errors(prediction: dict) -> list[str]:
    """Schema + semantic checks of a config with this prediction section (as the workflow runs them)."""
    from parallel_scaling.plan.check_config import schema_errors

    cfg = {"languages": {"parallel_order": ["de"], "K": 1, "evaluate": ["en", "de", "fr", "zh"]},
           "models": {"tiny": {"source": "tiny"}}, "prediction": dict(prediction)}
    return schema_errors(cfg) or checks.sampling_problems(cfg)
