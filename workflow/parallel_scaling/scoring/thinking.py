"""The two parts of a reasoning model's response: the thinking, and the final answer after it.

Why a module of its own: long-chain-of-thought models (R1-distilled, thinking-mode models) write a
thinking part closed by ``</think>`` and then commit to an answer. The thinking is full of numbers
(tentative results, a ``\\boxed{}`` later withdrawn, checks), so the answer must be read from the
final part only, and the language of the two parts differs (a model may think in English and answer
in Thai). Extraction (:mod:`~parallel_scaling.scoring.answers`) and language identification
(:mod:`~parallel_scaling.scoring.grading`) both split here, one way.

The opening ``<think>`` is often absent from a response: chat templates of R1-distilled models put
it in the prompt. A closing marker alone therefore splits the response; an opening marker without a
closing one (in the response, or at the end of the prompt) means the thinking was cut off (a length
limit, a stop string) before any answer, unless the response ended by itself with an answer (a
closing marker lost in decoding): :func:`classify` decides, from the prompt, the row's
``finish_reason`` and the text (issue #36).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace

#: How the final part of a response stands, as recorded in the scored rows' ``final_part`` field.
#: ``absent``: no thinking markup (a chat model; the whole response is its answer part);
#: ``present``: the thinking is closed and a final part follows; ``empty``: the thinking is closed
#: and nothing follows it; ``unclosed``: the thinking was never closed (cut off); ``unanswered``: the
#: thinking is closed but the final part states no answer (only ``**``, a restart sentence, or a
#: derivation cut before its result); ``unmarked``: the thinking was opened and never closed, yet the
#: response ended by itself with an answer (a closing marker lost in decoding): read as a whole.
FINAL_PART_STATES: tuple[str, ...] = ("absent", "present", "empty", "unclosed", "unanswered", "unmarked")

#: States in which the response commits to no final answer at all ("unfinished" responses).
UNFINISHED_STATES: frozenset[str] = frozenset({"empty", "unclosed", "unanswered"})

#: The ``reason`` of an unfinished response scored ``none``, by state.
UNFINISHED_REASONS: dict[str, str] = {
    "unclosed": "thinking cut off before a final answer",
    "empty": "nothing after the thinking",
    "unanswered": "no answer after the thinking",
}

#: Why generation stopped, as prediction rows record it (``finish_reason``; ``None``: unknown).
FINISH_REASONS: tuple[str, ...] = ("eos", "length", "stop_string")

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


def prompt_opens_thinking(prompt: str | None) -> bool:
    """Does the prompt leave a thinking open: is its last thinking marker an opening one? R1-distilled
    chat templates end the prompt with ``<think>\\n``; a forced assistant prefix may follow it
    ("<think>\\nOkay, let me think step by step."). Then the response starts inside the thinking.
    Earlier turns' closed ``<think>...</think>`` blocks open nothing."""
    if not prompt:
        return False
    text = str(prompt)
    opened = [m.end() for m in _OPEN.finditer(text)]
    closed = [m.end() for m in _CLOSE.finditer(text)]
    return bool(opened) and (not closed or opened[-1] > closed[-1])


def split_response(response: str, opened: bool = False) -> ResponseParts:
    """Split ``response`` at its last closing thinking marker.

    ``"a</think>b"`` -> thinking ``a``, final ``b`` (``present``); ``"<think>a"`` -> thinking ``a``,
    final ``""`` (``unclosed``); a response without markers is all final part (``absent``), unless
    ``opened`` (the prompt opened the thinking): then it is all thinking, ``unclosed``.
    Opening markers are removed from the thinking.
    """
    text = "" if response is None else str(response)
    closes = list(_CLOSE.finditer(text))
    if closes:
        last = closes[-1]
        thinking = _OPEN.sub(" ", _CLOSE.sub(" ", text[: last.start()])).strip()
        final = text[last.end():].strip()
        return ResponseParts(thinking, final, "present" if final else "empty")
    if opened or _OPEN.search(text):
        return ResponseParts(_OPEN.sub(" ", text).strip(), "", "unclosed")
    return ResponseParts(None, text, "absent")


# the end of a text cut in the middle: an operator, an opening bracket or a backslash, or a word of
# a script that ends its sentences with punctuation (a Thai or Japanese sentence may end in a letter)
_CUT_END = re.compile(r"(?:[=+\-/×÷^_,:;({\[\\]|(?<!\*)\*)$")  # "**" closes emphasis, "*" multiplies
_CUT_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "GEORGIAN")


def looks_cut(text: str) -> bool:
    """Does ``text`` end in the middle (of a formula, a sentence), as a generation cut by a limit
    does? Unbalanced math delimiters or brackets on the last line, an operator at the end, or a
    word without its sentence's punctuation in an alphabetic script on a last line without a number."""
    text = text.rstrip()
    if not text:
        return False
    if text.count("\\(") > text.count("\\)") or text.count("\\[") > text.count("\\]") or text.count("$$") % 2:
        return True
    last = text.rsplit("\n", 1)[-1]
    if last.count("(") > last.count(")") or last.count("{") > last.count("}"):
        return True
    if _CUT_END.search(text):
        return True
    # "She makes **$18** per day" states its value on its last line; "- Επιβεβαιώνουμε" is cut
    end = text[-1]
    return end.isalpha() and unicodedata.name(end, "").split(" ")[0] in _CUT_SCRIPTS and not re.search(r"\d", last)


def classify(
    response: str,
    prompt: str | None = None,
    finish_reason: str | None = None,
    answers: Callable[[str], bool] = lambda text: False,
) -> ResponseParts:
    """The parts of a response and how its final part stands, using why generation stopped.

    ``answers(text)`` says whether a text states an explicit answer (a ``\\boxed{}``, ``####`` or
    an answer phrase with a value); :mod:`~parallel_scaling.scoring.answers` passes its cascade.

    * no thinking anywhere (no marker, prompt not opening one): ``absent``, a chat answer, read as
      always (``finish_reason`` is not used: a chat model's answers are read as before);
    * thinking opened (in the response, or by the prompt) and never closed: ``unclosed``, unless the
      response ended by itself with an answer (``finish_reason`` ``eos``; or, unknown and the
      thinking was opened in the response, its end states an answer and is not cut): then the
      closing marker was lost and the response is read as a whole, ``unmarked``. A thinking opened
      by the prompt and of unknown finish is cut (its closing marker is text the model writes);
    * thinking closed and a final part follows: ``present`` when it states an answer; otherwise
      ``unanswered`` when it holds no number or math, or it was cut (``finish_reason`` ``length``, or of unknown
      finish and :func:`looks_cut`). ``length`` with an explicit answer in the final part stays
      ``present``: the answer was written before the limit hit.
    """
    if finish_reason is not None and finish_reason not in FINISH_REASONS:
        raise ValueError(f"unknown finish_reason {finish_reason!r}; expected one of {', '.join(FINISH_REASONS)} or null")
    opened_by_prompt = prompt_opens_thinking(prompt)
    parts = split_response(response, opened=opened_by_prompt)
    if parts.state == "unclosed" and finish_reason not in ("length", "stop_string"):
        text = parts.thinking or ""
        tail = text[-_CONCLUSION_CHARS:]
        if finish_reason == "eos" and answers(tail):
            return replace(parts, thinking=None, final=text, state="unmarked")
        if finish_reason is None and not opened_by_prompt and answers(tail) and not looks_cut(text):
            return replace(parts, thinking=None, final=text, state="unmarked")
    if parts.state == "present" and not answers(parts.final):
        if not _VALUE_LIKE.search(parts.final) or finish_reason == "length" or (
            finish_reason != "eos" and looks_cut(parts.final)
        ):
            return replace(parts, state="unanswered")
    return parts


# a final part without a digit, a math span or a LaTeX command holds no value ("**", "Let us solve ...")
_VALUE_LIKE = re.compile(r"[\d$\\]")

#: How much of the end of a never-closed response must state the answer for it to count as ended
#: with an answer (a conclusion and its closing remark, not a tentative result deep in the thinking).
_CONCLUSION_CHARS = 600
