"""Our vLLM arguments against the real vLLM classes, in the vLLM test environment (``make test-vllm``).

tests/test_vllm_api.py checks the same arguments in the main environment, where vLLM is not
installed, against conditions extracted from the pinned wheel's source; here the installed vLLM
(the CPU build of the pinned version) answers for itself: ``SamplingParams(**ours)`` is constructed,
and ``LLM``'s and ``EngineArgs``' parameters are read from the classes. Skipped where vLLM does not
import (the main environment)."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
import yaml

vllm = pytest.importorskip("vllm", reason="vLLM is not installed here: `make test-vllm` runs these tests")

from parallel_scaling.common import decoding  # noqa: E402
from parallel_scaling.data import translation_engines  # noqa: E402
from parallel_scaling.evaluate import predict  # noqa: E402
from vllm_grid import GRID, config_errors, prediction_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAPER = yaml.safe_load((ROOT / "configs/parallel_paper.yaml").read_text())
API = json.loads((ROOT / "tests/fixtures/vllm_api.json").read_text())


def llm_parameters() -> set[str]:
    from vllm.engine.arg_utils import EngineArgs

    own = set(inspect.signature(vllm.LLM.__init__).parameters) - {"self", "kwargs"}
    return own | {f.name for f in dataclasses.fields(EngineArgs)}


def real_rejection(kwargs: dict) -> str | None:
    """vLLM's own message when ``SamplingParams(**kwargs)`` refuses them, else None."""
    from vllm.exceptions import VLLMValidationError

    try:
        vllm.SamplingParams(**kwargs)
    except (VLLMValidationError, ValueError, TypeError) as exc:
        return str(exc) or type(exc).__name__
    return None


def test_the_installed_vllm_is_the_pinned_one():
    assert vllm.__version__.split("+")[0] == API["vllm_version"]


def test_prediction_arguments_are_what_the_real_classes_take():
    s = {**PAPER["prediction"], "top_k": 20, "repetition_penalty": 1.1, "vllm_enforce_eager": True}

    class Tok:
        def __call__(self, texts, add_special_tokens):
            return {"input_ids": [[1, 2, 3] for _ in texts]}

    llm, sampling, prompts = predict.vllm_arguments("/models/x", ["a", "b"], s, Tok())
    assert set(llm) <= llm_parameters(), set(llm) - llm_parameters()
    assert real_rejection(sampling) is None
    from vllm.inputs import TokensPrompt

    allowed = set(TokensPrompt.__annotations__)
    assert all(set(p) <= allowed and "prompt_token_ids" in p for p in prompts)


def test_translation_arguments_are_what_the_real_classes_take():
    model_cfg = translation_engines.section(PAPER["translation"], "model")
    llm, sampling = translation_engines.vllm_arguments(model_cfg, translation_engines.section(PAPER["translation"], "vllm"))
    assert set(llm) <= llm_parameters(), set(llm) - llm_parameters()
    assert real_rejection(sampling) is None


@pytest.mark.parametrize("temperature,n,top_p,top_k,rep", GRID)
def test_config_accepts_exactly_what_the_real_vllm_accepts(temperature, n, top_p, top_k, rep):
    prediction = prediction_section(temperature, n, top_p, top_k, rep)
    ours = config_errors(prediction)
    theirs = real_rejection(decoding.vllm_sampling_kwargs(prediction))
    assert bool(ours) == bool(theirs), f"config: {ours}; vLLM: {theirs}"
