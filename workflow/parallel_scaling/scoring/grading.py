"""Is an extracted answer right? Verification against the gold answer, and the scoring of one response.

math-verify decides equivalence (``\\frac{1}{2}`` == ``0.5``), behind an exact numeric
comparison that is fast; compound LaTeX answers (a value and a point) are compared part by part,
because math-verify reads them as one unrelated expression. Nothing here raises on model output.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from typing import Any

from parallel_scaling.scoring.answers import (
    ANSWER_TYPES, CHOICE_LETTERS, _labelled, _states_answer, compound_parts, extract_answer, is_compound,
)
from parallel_scaling.scoring.language import UNDETERMINED, identify, is_off_target
from parallel_scaling.scoring.numbers import normalize_text, parse_number
from parallel_scaling.scoring.thinking import classify

logger = logging.getLogger(__name__)

#: Seconds math-verify may spend parsing / comparing one answer (main thread only: its timeout
#: uses SIGALRM, which raises outside the main thread, so worker threads run without one).
MATH_VERIFY_TIMEOUT_S = 5

# --------------------------------------------------------------------------- verification


def _math_verify_timeout() -> int | None:
    """SIGALRM-based timeouts only work in the main thread; elsewhere disable them."""
    return MATH_VERIFY_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _mv_parse(expr: str) -> list[Any]:
    """math-verify parse of a bare answer (wrapped in ``$`` so LaTeX like ``\\sqrt{2}`` is found)."""
    from math_verify import parse

    wrapped = expr if any(d in expr for d in ("$", "\\(", "\\[", "\\boxed")) else f"${expr}$"
    return parse(wrapped, parsing_timeout=_math_verify_timeout())


def _has_math(parsed: list[Any]) -> bool:
    """math-verify returns sympy objects plus the raw string; only the former mean 'parsed'."""
    return any(not isinstance(p, str) for p in parsed)


def _normalize_choice(value: str) -> str | None:
    value = normalize_text(value).strip().strip("()（）[].:*$ ").upper()
    return value if len(value) == 1 and value in CHOICE_LETTERS else None


# --------------------------------------------------------------------------- compound answers

# what separates the parts of a compound answer: ",", ";", "\quad", "\text{ and }", " and "
_PLUS_MINUS = re.compile(r"\\pm(?![A-Za-z])|±")
_MINUS_PLUS = re.compile(r"\\mp(?![A-Za-z])|∓")


def _canonical(value: str) -> str:
    """Spelling-level normal form: ``\\dfrac`` -> ``\\frac``, ``\\sqrt2`` -> ``\\sqrt{2}``, no leading ``+``."""
    value = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", value)
    value = re.sub(r"\\sqrt(\d)", r"\\sqrt{\1}", value)
    return re.sub(r"(^|[(\[{,])\+", r"\1", value)


def _sign_variants(value: str) -> list[str]:
    """``(\\pm 1, 0)`` stands for two values, ``(1, 0)`` and ``(-1, 0)``; other values for one."""
    if not (_PLUS_MINUS.search(value) or _MINUS_PLUS.search(value)):
        return [_canonical(value)]
    plus = _MINUS_PLUS.sub("-", _PLUS_MINUS.sub("+", value))
    minus = _MINUS_PLUS.sub("+", _PLUS_MINUS.sub("-", value))
    return [_canonical(plus), _canonical(minus)]


def _same_value(gold: str, pred: str) -> bool:
    """Do two part values denote the same value(s)? Same spelling first, then numbers / math-verify."""
    golds, preds = _sign_variants(gold), _sign_variants(pred)

    def equal(a: str, b: str) -> bool:
        return a == b or verify(b, a, "latex") == (True, None)

    return all(any(equal(g, p) for p in preds) for g in golds) and all(any(equal(g, p) for g in golds) for p in preds)


def _verify_compound(extracted: str, gold_parts: Sequence[str]) -> bool:
    """Every part of the gold answer is stated, with the same value, by one part of the response.

    Named parts pair by name in any order; an unnamed part of the response pairs by position.
    A response with more or fewer parts is wrong: a compound answer is all of its parts.
    """
    gold = [_labelled(p) for p in gold_parts]
    pred = [_labelled(p) for p in compound_parts(extracted)]
    if len(pred) != len(gold):
        return False
    free = list(range(len(pred)))
    for i, (label, value) in enumerate(gold):
        j = next((k for k in free if label is not None and pred[k][0] == label), None)
        if j is None and i in free and (pred[i][0] is None or label is None):
            j = i
        if j is None or not _same_value(value, pred[j][1]):
            return False
        free.remove(j)
    return True


def verify(extracted: str | None, gold: str, answer_type: str) -> tuple[bool, str | None]:
    """Is ``extracted`` equivalent to ``gold``? Returns ``(correct, reason)``.

    ``reason`` is None for a clean comparison (right or wrong) and explains anything that
    prevented one (no answer, unparseable value). Never raises on model output.
    """
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; choose from {', '.join(ANSWER_TYPES)}")
    gold = str(gold)
    if extracted is None or not str(extracted).strip():
        return False, "no answer extracted"
    extracted = str(extracted)

    if answer_type == "choice":
        gold_letter = _normalize_choice(gold)
        if gold_letter is None:
            return False, f"gold {gold!r} is not a choice letter {CHOICE_LETTERS[0]}-{CHOICE_LETTERS[-1]}"
        pred_letter = _normalize_choice(extracted)
        if pred_letter is None:
            return False, f"answer {extracted!r} is not a choice letter"
        return pred_letter == gold_letter, None

    if answer_type == "latex":
        gold_parts = compound_parts(gold)
        if is_compound(gold_parts):  # math-verify reads "x=1, A(1,0)" as one unrelated expression
            return _verify_compound(extracted, gold_parts), None

    gold_num, pred_num = parse_number(gold), parse_number(extracted)
    if gold_num is not None and pred_num is not None:
        return gold_num == pred_num, None

    try:
        from math_verify import verify as mv_verify

        gold_parsed = _mv_parse(gold)
        pred_parsed = _mv_parse(extracted)
        if not _has_math(gold_parsed):
            return False, f"math-verify could not parse gold {gold!r}"
        if not _has_math(pred_parsed):
            return False, f"math-verify could not parse answer {extracted!r}"
        ok = mv_verify(gold_parsed, pred_parsed, timeout_seconds=_math_verify_timeout())
        return bool(ok), None
    except Exception as exc:  # math-verify / sympy failures on odd model output are data, not bugs
        logger.debug("verification failed", exc_info=True)
        return False, f"verification error ({type(exc).__name__}) on answer {extracted!r}"


def score_response(
    response: str,
    gold: str,
    lang: str,
    answer_type: str = "number",
    candidates: Sequence[str] | None = None,
    unfinished: str = "none",
    prompt: str | None = None,
    finish_reason: str | None = None,
    question: str | None = None,
) -> dict[str, Any]:
    """Extract, verify and language-tag one response.

    Returns ``{extracted, method, correct, reason, response_lang, off_target, thinking_lang,
    thinking_off_target, final_part}``; ``reason`` is the extraction reason when nothing was
    extracted, else the verification reason. A reasoning model's response is identified part by
    part: ``response_lang``/``off_target`` are those of its final (answer) part, the whole response
    for a chat model; ``thinking_lang``/``thinking_off_target`` those of its thinking (None without
    one), so a model thinking in English and answering in Thai is off-target in its thinking only.
    ``final_part`` and ``unfinished`` (what a response cut off in its thinking is scored as) are
    those of :func:`~parallel_scaling.scoring.answers.extract_answer`, which ``prompt`` (the row's
    prompt: one whose last thinking marker is ``<think>`` opens the thinking) and ``finish_reason`` inform;
    ``question`` (the row's question) names the quantity a thinking cut mid-way is read for, leniently.
    """
    response = "" if response is None else str(response)
    parts = classify(response, prompt, finish_reason, lambda text: _states_answer(text, answer_type, lang))
    response_lang, _ = identify(parts.final, candidates)
    thinking_lang = identify(parts.thinking, candidates)[0] if parts.thinking is not None else None
    # the language the answer is read in decides ambiguous number spellings ("70.000")
    read_lang = thinking_lang if parts.unfinished else response_lang
    number_lang = read_lang if read_lang not in (None, UNDETERMINED) else lang
    extraction = extract_answer(response, answer_type, number_lang, unfinished, prompt, finish_reason, question)
    if extraction.value is None:
        correct, reason = False, extraction.reason
    else:
        correct, reason = verify(extraction.value, gold, answer_type)
    return {
        "extracted": extraction.value,
        "method": extraction.method,
        "correct": correct,
        "reason": reason,
        "response_lang": response_lang,
        "off_target": is_off_target(response_lang, lang),
        "thinking_lang": thinking_lang,
        "thinking_off_target": None if thinking_lang is None else is_off_target(thinking_lang, lang),
        "final_part": extraction.final_part,
    }
