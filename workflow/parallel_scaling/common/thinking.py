"""The two parts of a reasoning model's response: the thinking, and the final answer after it.

Why a module of its own: long-chain-of-thought models (R1-distilled, thinking-mode models) write a
thinking part closed by ``</think>`` and then commit to an answer. The thinking is full of numbers
(tentative results, a ``\\boxed{}`` later withdrawn, checks), so the answer must be read from the
final part only, and the language of the two parts differs (a model may think in English and answer
in Thai). Extraction (:mod:`~parallel_scaling.common.answers`) and language identification
(:mod:`~parallel_scaling.common.grading`) both split here, one way.

The opening ``<think>`` is often absent from a response: chat templates of R1-distilled models put
it in the prompt. A closing marker alone therefore splits the response; an opening marker without a
closing one means the thinking was cut off (a length limit, a stop string) before any answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: How the final part of a response stands, as recorded in the scored rows' ``final_part`` field.
#: ``absent``: no thinking markup (a chat model; the whole response is its answer part);
#: ``present``: the thinking is closed and a final part follows; ``empty``: the thinking is closed
#: and nothing follows it; ``unclosed``: the thinking was never closed (cut off).
FINAL_PART_STATES: tuple[str, ...] = ("absent", "present", "empty", "unclosed")

#: States in which the response commits to no final answer at all ("unfinished" responses).
UNFINISHED_STATES: frozenset[str] = frozenset({"empty", "unclosed"})

#: What an unfinished response is scored as (config ``scoring.unfinished_answer``, score
#: ``--unfinished-answer``): ``none`` = no answer (it committed to none; the default, a careful human
#: reading), ``thinking`` = the answer the thinking part reaches (the lenient reading).
UNFINISHED_POLICIES: tuple[str, ...] = ("none", "thinking")

# DeepSeek-R1 / Qwen3 / QwQ write <think>...</think>; some models <thinking>; Kimi ◁think▷...◁/think▷
_OPEN = re.compile(r"<think(?:ing)?>|◁think▷", flags=re.IGNORECASE)
_CLOSE = re.compile(r"</think(?:ing)?>|◁/think▷", flags=re.IGNORECASE)


@dataclass(frozen=True)
class ResponseParts:
    """A response split into its thinking (None without markup) and its final part."""

    thinking: str | None
    final: str
    state: str

    @property
    def unfinished(self) -> bool:
        """True when the response commits to no final answer (thinking cut off, or nothing after it)."""
        return self.state in UNFINISHED_STATES


def split_response(response: str) -> ResponseParts:
    """Split ``response`` at its last closing thinking marker.

    ``"a</think>b"`` -> thinking ``a``, final ``b`` (``present``); ``"<think>a"`` -> thinking ``a``,
    final ``""`` (``unclosed``); a response without markers is all final part (``absent``).
    Opening markers are removed from the thinking.
    """
    text = "" if response is None else str(response)
    closes = list(_CLOSE.finditer(text))
    if closes:
        last = closes[-1]
        thinking = _OPEN.sub(" ", _CLOSE.sub(" ", text[: last.start()])).strip()
        final = text[last.end():].strip()
        return ResponseParts(thinking, final, "present" if final else "empty")
    opened = _OPEN.search(text)
    if opened:
        return ResponseParts(_OPEN.sub(" ", text).strip(), "", "unclosed")
    return ResponseParts(None, text, "absent")
