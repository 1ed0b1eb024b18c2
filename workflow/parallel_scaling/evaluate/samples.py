"""What a generated response is, whichever engine made it: its text, why it ended and what it cost.

A reasoning model cut at ``max_new_tokens`` is a finding, not noise, and its answer must not be
scored as a finished one: every engine therefore records, beside the text, the finish reason and
the prompt and completion token counts (the rows of ``predict`` carry them, docs/results.md).

The engine contract (docs/benchmarks.md): a sample is a :class:`Sample`; ``Done`` maps a prompt
index to its ``n`` samples; an engine gets the ``Done`` of an interrupted run, generates only the
prompts it lacks, and calls ``save`` (a :data:`Save`) with the prompts it finishes, as they finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypedDict

#: the finish reasons a row may carry (``None``: unknown, e.g. predictions imported from elsewhere)
FINISH_REASONS = ("eos", "length", "stop_string")


class Sample(TypedDict):
    """One generated response. ``completion_tokens`` counts the stop token that ended it (as vLLM
    and OpenAI-compatible servers count), never padding."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


Done = dict[int, list[Sample]]
Save = Callable[[Done], None]


def sample(text: str, finish_reason: str | None, prompt_tokens: int, completion_tokens: int) -> Sample:
    return {"text": text, "finish_reason": finish_reason, "prompt_tokens": int(prompt_tokens),
            "completion_tokens": int(completion_tokens)}


def transformers_finish(generated: Sequence[int], stop_ids: Sequence[int], max_new_tokens: int) -> tuple[str, int]:
    """Finish reason and completion tokens of one row of ``model.generate``'s new tokens.

    The row is padded to the batch's longest (with the pad token, often the EOS token itself): the
    first stop token ends the response ("eos", counted); a row without one ran until
    ``max_new_tokens`` ("length"; a row shorter than that without a stop token can only have hit
    the model's context, a length limit too)."""
    stops = set(stop_ids)
    for position, token in enumerate(generated):
        if token in stops:
            return "eos", position + 1
    return "length", min(len(generated), max_new_tokens)


def vllm_finish(output: Any) -> str | None:
    """Our finish reason of a vLLM ``CompletionOutput``: vLLM says "stop" for a stop token (its
    ``stop_reason`` None for EOS, the token id for ``stop_token_ids``) and for a stop string
    (``stop_reason`` the string), "length" at ``max_tokens`` or the context; anything else (an
    aborted request) is unknown."""
    reason = getattr(output, "finish_reason", None)
    if reason == "length":
        return "length"
    if reason == "stop":
        return "stop_string" if isinstance(getattr(output, "stop_reason", None), str) else "eos"
    return None
