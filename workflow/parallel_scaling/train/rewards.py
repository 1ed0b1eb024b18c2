"""GRPO reward functions: correctness, format, language consistency.

Each is a small pure function of one response, wrapped into TRL's batch signature
``f(prompts, completions, **columns) -> list[float]`` by :func:`trl_reward`. The dataset columns
``answer``, ``lang`` and ``answer_type`` reach the rewards as keyword arguments. Weights are the
config's ``grpo.reward_weights`` and are passed to TRL as ``reward_weights`` in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from parallel_scaling.scoring.answers import extract_answer
from parallel_scaling.scoring.grading import verify
from parallel_scaling.scoring.language import UNDETERMINED, identify

_MARKER = re.compile(r"\\boxed\{|####")


def correctness(response: str, gold: str, answer_type: str = "number", prompt: str | None = None) -> float:
    """1.0 when the extracted final answer verifies against the gold answer (math-verify), else 0.0.

    ``prompt`` is the text prompt: when the chat template opened the thinking (R1-distilled models'
    prompts end with ``<think>``), a completion cut before ``</think>`` earns nothing, not the
    reward of a tentative ``\\boxed{}`` of its thinking (issue #36)."""
    ext = extract_answer(response, answer_type, prompt=prompt)
    return float(verify(ext.value, gold, answer_type)[0]) if ext.value is not None else 0.0


def answer_format(response: str) -> float:
    """1.0 when the response gives its final answer in a marked form (``\\boxed{}`` or ``####``)
    exactly once, so that extraction never has to guess."""
    return 1.0 if len(_MARKER.findall(response)) == 1 else 0.0


def language_consistency(response: str, lang: str) -> float:
    """1.0 when the response is written in the prompt's language; responses with too little text
    to identify (an equation only) are neutral (1.0), so the reward never punishes pure math."""
    found, _ = identify(response)
    return 1.0 if found in (lang, UNDETERMINED) else 0.0


def _text(completion: Any) -> str:
    """TRL passes plain strings for text prompts and message lists for conversational ones."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


#: the registry: a reward's name in ``grpo.reward_weights`` -> its score of one response, given the
#: dataset row's columns (``answer``, ``lang``, ``answer_type``). The order is the order given to TRL.
REWARDS: dict[str, Callable[[str, dict[str, Any]], float]] = {
    "correctness": lambda text, row: correctness(
        text, str(row.get("answer", "")), row.get("answer_type") or "number", row.get("prompt")
    ),
    "format": lambda text, row: answer_format(text),
    "language": lambda text, row: language_consistency(text, row.get("lang") or "en"),
}
REWARD_NAMES: tuple[str, ...] = tuple(REWARDS)


def trl_reward(name: str) -> Callable[..., list[float]]:
    """The batch reward function TRL calls for reward ``name`` (``f(prompts, completions, **columns)``)."""
    if name not in REWARDS:
        raise ValueError(f"unknown reward {name!r}; known: {', '.join(REWARD_NAMES)}")
    score = REWARDS[name]

    def fn(prompts: list[Any], completions: list[Any], **cols: Any) -> list[float]:
        keys = [k for k in ("answer", "lang", "answer_type") if cols.get(k) is not None]
        rows = [{k: cols[k][i] for k in keys} for i in range(len(completions))]
        if len(prompts) == len(completions):  # text prompts: the thinking a template opened counts
            for row, prompt in zip(rows, prompts):
                row["prompt"] = _text(prompt)
        return [score(_text(c), row) for c, row in zip(completions, rows)]

    fn.__name__ = name
    return fn


def active_rewards(weights: dict[str, float]) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """Reward functions with a non-zero weight, and their weights in the same order."""
    unknown = sorted(set(weights) - set(REWARD_NAMES))
    if unknown:
        raise ValueError(f"grpo.reward_weights: unknown reward(s) {unknown}; known: {list(REWARD_NAMES)}")
    names = [n for n in REWARD_NAMES if weights.get(n, 0.0) != 0.0]
    if not names:
        raise ValueError("grpo.reward_weights: every weight is zero; give at least one reward a weight")
    return [trl_reward(n) for n in names], [float(weights[n]) for n in names]
