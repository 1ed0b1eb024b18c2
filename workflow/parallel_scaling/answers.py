"""Answer extraction and verification for multilingual math / multiple-choice responses.

Why our own extractor: math-verify finds ``\\boxed{}`` and LaTeX well but misses numbers glued
to CJK or Thai text ("答案是42", "所以她每天赚18美元") and does not know the native "the answer is"
phrases of the study's languages. We therefore extract with an explicit, ordered cascade
(``boxed`` -> ``####`` -> native answer phrase -> last number) whose winning step is recorded in
``Extraction.method``, and only use math-verify to decide *equivalence* (``\\frac{1}{2}`` ==
``0.5``), with a plain numeric comparison in front of it that is exact and fast.

Nothing here raises on model output: empty, unparseable or answer-less responses come back as
incorrect with a human-readable reason, so one bad generation never aborts an evaluation.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .language import identify, is_off_target

ANSWER_TYPES: tuple[str, ...] = ("number", "latex", "choice")

#: Seconds math-verify may spend parsing / comparing one answer (main thread only: its timeout
#: uses SIGALRM, which raises outside the main thread, so worker threads run without one).
MATH_VERIFY_TIMEOUT_S = 5

#: Choice labels accepted for multiple-choice answers (MMLU-ProX style goes up to J).
CHOICE_LETTERS = "ABCDEFGHIJ"

#: Native "the answer is" phrases, as data: (language, phrase). Matching is case-insensitive and
#: tolerant of trailing ``:``/``：``/dashes/``**``. The last occurrence in a response wins.
ANSWER_PHRASES: tuple[tuple[str, str], ...] = (
    ("en", "the final answer is"),
    ("en", "the answer is"),
    ("en", "final answer:"),
    ("en", "answer:"),
    ("de", "die antwort ist"),
    ("de", "die antwort lautet"),
    ("de", "antwort:"),
    ("fr", "la réponse finale est"),
    ("fr", "la réponse est"),
    ("fr", "réponse :"),
    ("fr", "réponse:"),
    ("es", "la respuesta final es"),
    ("es", "la respuesta es"),
    ("es", "respuesta:"),
    ("it", "la risposta è"),
    ("pt", "a resposta é"),
    ("nl", "het antwoord is"),
    ("ru", "ответ:"),
    ("ru", "ответ —"),
    ("ru", "ответ -"),
    ("ru", "ответ –"),
    ("ru", "ответ равен"),
    ("ru", "ответ будет"),
    ("zh", "最终答案是"),
    ("zh", "答案是"),
    ("zh", "答案为"),
    ("zh", "答案："),
    ("zh", "答案:"),
    ("ja", "答えは"),
    ("ja", "答え："),
    ("ja", "答え:"),
    ("ja", "解答は"),
    ("ko", "정답은"),
    ("ko", "답은"),
    ("th", "คำตอบคือ"),
    ("th", "คำตอบ:"),
    ("sw", "jibu ni"),
    ("sw", "jibu:"),
    ("bn", "উত্তর হল"),
    ("bn", "উত্তর হলো"),
    ("bn", "উত্তর হচ্ছে"),
    ("bn", "উত্তর:"),
    ("te", "సమాధానం"),
    ("te", "జవాబు"),
    ("hi", "उत्तर है"),
    ("hi", "उत्तर:"),
    ("ar", "الإجابة هي"),
    ("vi", "đáp án là"),
    ("vi", "câu trả lời là"),
    ("id", "jawabannya adalah"),
    ("id", "jawaban:"),
    ("tr", "cevap:"),
    ("tr", "yanıt:"),
)

#: Chain-of-thought headers that contain an answer word but precede the reasoning (the MGSM
#: exemplar prefixes our prompts use). They are blanked before phrase search so that
#: "Step-by-Step Answer: Roger started with 5 balls" never yields 5.
COT_HEADERS: tuple[str, ...] = (
    "step-by-step answer",
    "schritt-für-schritt-antwort",
    "réponse étape par étape",
    "respuesta paso a paso",
    "пошаговое решение",
    "逐步解答",
    "ステップごとの答え",
    "คำตอบทีละขั้นตอน",
    "jibu la hatua kwa hatua",
    "ধাপে ধাপে উত্তর",
    "దశలవారీగా సమాధానం",
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extraction:
    """An extracted answer and how it was found.

    ``method`` is one of ``boxed``, ``hash``, ``phrase``, ``last_number``, ``paren_letter``,
    ``line_letter`` or ``none``; ``reason`` explains a missing value (``None`` when found).
    """

    value: str | None
    method: str
    reason: str | None = None


# --------------------------------------------------------------------------- normalisation


_NON_ASCII_DIGIT = re.compile(r"(?![0-9])\d")


def _to_ascii_digits(text: str) -> str:
    """Map every Unicode decimal digit (Bengali ১, Thai ๑, full-width ４ ...) to ASCII."""
    return _NON_ASCII_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group(0), m.group(0))), text)


def normalize_text(text: str) -> str:
    """NFKC + ASCII digits + ASCII minus and slash, so one regex serves every script.

    NFKC turns full-width ``４２`` / ``＄`` / ``，`` into ASCII and ``½`` into ``1⁄2``; the
    Unicode minus (U+2212) and fraction slash (U+2044) are not ASCII after NFKC and are mapped.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _to_ascii_digits(text)
    return text.replace("\u2212", "-").replace("\u2044", "/")


# A number: optional sign (dropped when it is a binary minus, see below), digits with optional thousands groups (comma, space, nbsp, thin space or
# LaTeX "{,}"), optional decimal part (dot, or a European decimal comma not followed by a
# 3-digit group), optional "/denominator". Digits may be glued to CJK / Thai letters.
_NUMBER = re.compile(
    r"(?<![0-9.A-Za-z])"  # not inside "x2"/"H2O"; CJK/Thai letters may touch the digits
    r"(?P<sign>-\s?)?"
    r"(?<![0-9.])(?P<int>\d{1,3}(?:(?:,|\{,\}|[ \u00a0\u202f\u2009])\d{3})+(?!\d)|\d+)"
    r"(?P<frac>(?:\.|,(?!\d{3}(?!\d)))\d+)?"
    r"(?:/(?P<den>\d+))?"
)
# Before a "-": a digit or closing bracket ("10 - 3", "(a+b) -3") or a glued letter ("x-3") makes it
# a binary minus; after a spaced-out word ("baja a -7") it is a sign unless spaced too ("x - 7").
_BINARY_MINUS_BEFORE = re.compile(r"(?:[0-9)\]}]\s*|[A-Za-z])$")
_SPACED_AFTER_LETTER = re.compile(r"[A-Za-z]\s+$")
_COMMA_LIST = re.compile(r"\d+(?:,\d+){2,}")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")


def _space_comma_lists(text: str) -> str:
    """"1,2,3" is a list, not 1.2 then 3: give its commas a space (thousands like 1,234,567 stay)."""
    return _COMMA_LIST.sub(
        lambda m: m.group(0) if _THOUSANDS.fullmatch(m.group(0)) else m.group(0).replace(",", ", "),
        text,
    )


def _number_matches(text: str) -> list[str]:
    """All numbers in ``text`` (already normalised), canonicalised as ``-1234.5`` / ``3/4``."""
    return [value for value, _ in _number_spans(_space_comma_lists(text))]


def _number_spans(text: str) -> list[tuple[str, int]]:
    """``(canonical value, start offset)`` of every number in ``text``."""
    found = []
    for m in _NUMBER.finditer(text):
        sign = m.group("sign")
        lo, hi = max(0, m.start() - 40), m.start()  # "$" in the patterns anchors at hi
        if sign and (
            _BINARY_MINUS_BEFORE.search(text, lo, hi) or (sign != "-" and _SPACED_AFTER_LETTER.search(text, lo, hi))
        ):
            sign = None  # "10 - 3" / "x - 7": binary minus, not a negative number
        integer = re.sub(r"\{,\}|[, \u00a0\u202f\u2009]", "", m.group("int"))
        value = integer
        if m.group("frac"):
            value += "." + m.group("frac")[1:]
        if m.group("den"):
            value += "/" + m.group("den")
        if sign:
            value = "-" + value
        found.append((value, m.start()))
    return found


_LATEX_FRAC = re.compile(r"^(-?)\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(\d+)\s*\}$")
_LATEX_FRAC_SHORT = re.compile(r"^(-?)\\[dt]?frac(\d)(\d)$")
_LATEX_TEXT = re.compile(r"\\(?:text|mathrm|textbf|mbox)\s*\{[^{}]*\}")


def single_number(text: str) -> str | None:
    """Canonical form of ``text`` if it is exactly one number, else None.

    Tolerates what surrounds a bare number in answers: ``$...$`` delimiters, currency signs
    (``$18``, ``\\$18``, ``€``), ``%``, a trailing period, LaTeX ``\\text{...}`` units and simple
    ``\\frac{a}{b}``.
    """
    text = normalize_text(str(text)).strip()
    text = _LATEX_TEXT.sub("", text).strip()
    text = re.sub(r"^\$+|\$+$", "", text).strip()
    text = re.sub(r"^(?:\\\$|[$€£¥₹])\s*", "", text)
    text = re.sub(r"\s*(?:\\?%|\.)$", "", text).strip()
    frac = _LATEX_FRAC.match(text) or _LATEX_FRAC_SHORT.match(text)
    if frac:
        sign, num, den = frac.groups()
        value = f"{num}/{den}"
        return value[1:] if sign and value.startswith("-") else sign + value
    if not text or not re.fullmatch(r"-?\s?[0-9][0-9,.\s\u00a0\u202f\u2009/{}]*", text):
        return None
    numbers = _number_matches(text)
    if len(numbers) != 1:
        return None
    return numbers[0]


def parse_number(text: str) -> Fraction | None:
    """Exact value of a plain number string (``"1,234"``, ``"18.00"``, ``"-3/4"``, ``"$18"``)."""
    value = single_number(text)
    if value is None:
        return None
    try:
        return Fraction(value)
    except (ValueError, ZeroDivisionError):
        return None


# --------------------------------------------------------------------------- extraction

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASH = re.compile(r"####+[ \t]*([^\n]*)")
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", flags=re.DOTALL)
# separators after a marker; a hyphen directly before a digit is a minus sign and is kept
_LEADING_SEPARATORS = re.compile(r"^(?:[\s*:：—–=]|-(?!\d))*")
_LETTER_AT_START = re.compile(
    r"^[\s*:：\-—–=]*(?:\\text\{|\\textbf\{|\$)?[\s(（\[]*([" + CHOICE_LETTERS + r"])(?![A-Za-z])"
)
_PAREN_LETTER = re.compile(r"[(（]([" + CHOICE_LETTERS + r"])[)）]")
# "B) 42" or a line holding only "B" / "**B**" / "B."
_LINE_LETTER = re.compile(
    r"(?m)^\s*\**([" + CHOICE_LETTERS + r"])(?:\)|\**\s*[.:：]?\s*\**\s*$)"
)


def _compile_phrases(phrases: Sequence[tuple[str, str]]) -> re.Pattern[str]:
    """One alternation of all phrases, longest first so "the final answer is" beats "answer:"."""
    # normalised like responses: NFKC rewrites e.g. Thai SARA AM in "คำตอบคือ"
    ordered = sorted({normalize_text(p) for _, p in phrases}, key=len, reverse=True)
    alternation = "|".join(re.escape(p) for p in ordered)
    return re.compile(rf"(?:{alternation})", flags=re.IGNORECASE)


_PHRASE = _compile_phrases(ANSWER_PHRASES)
_HEADERS = re.compile("|".join(re.escape(normalize_text(h)) for h in COT_HEADERS), flags=re.IGNORECASE)


def _last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, honouring nested braces; None if absent/unclosed."""
    starts = [m.end() for m in _BOXED.finditer(text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i].strip()
    return None


def _math_value(expr: str, answer_type: str) -> str | None:
    """Canonical number if ``expr`` is one (``\\frac{3}{4}`` -> ``3/4``), else the expression."""
    expr = expr.strip()
    if answer_type == "number" and "=" in expr:
        expr = expr.rsplit("=", 1)[1].strip()  # "x = 5"
    if not expr:
        return None
    number = single_number(expr)
    return number if number is not None else expr


def _sentence(text: str) -> str:
    """Text up to the end of its sentence (a period not inside a number, or a CJK full stop)."""
    head = re.split(r"(?<!\d)\.|\.(?!\d)|[。！？!?;；]", text, maxsplit=1)[0]
    return head.strip().strip("*").strip()


def _value_from_segment(segment: str, answer_type: str) -> str | None:
    """The answer at the start of the text following a marker (phrase or ``####``)."""
    line = segment.split("\n", 1)[0]
    if answer_type == "choice":
        m = _LETTER_AT_START.match(line)
        return m.group(1) if m else None
    body = _LEADING_SEPARATORS.sub("", line)
    math = _MATH_SPAN.match(body)
    if math:
        inner = next(g for g in math.groups() if g is not None)
        value = _math_value(inner, answer_type)
        # "$18 and she spent $5": a currency sign, not a math span -> fall through to numbers
        if value is not None and (answer_type == "latex" or "\\" in inner or single_number(value)):
            return value
    if answer_type == "latex" and body.startswith("\\"):
        return _math_value(_sentence(body), answer_type)
    numbers = _number_matches(body)
    return numbers[0] if numbers else None


def extract_answer(response: str, answer_type: str = "number") -> Extraction:
    """Extract the final answer from a model response.

    Cascade (first hit wins): last ``\\boxed{}`` -> last ``#### X`` -> last native answer
    phrase ("The answer is", "答案是", "คำตอบคือ", ...) -> for ``latex`` the last ``$...$`` span
    if nothing numeric follows it -> last number; for ``choice`` the last ``(X)`` then a line
    holding only a letter.
    """
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; choose from {', '.join(ANSWER_TYPES)}")
    if response is None or not str(response).strip():
        return Extraction(None, "none", "empty response")
    text = _space_comma_lists(normalize_text(str(response)))

    boxed = _last_boxed(text)
    if boxed is not None:
        if answer_type == "choice":
            m = _LETTER_AT_START.match(boxed)
            value = m.group(1) if m else None
        else:
            value = _math_value(boxed, answer_type)
        if value is not None:
            return Extraction(value, "boxed")

    for m in reversed(list(_HASH.finditer(text))):
        value = _value_from_segment(m.group(1), answer_type)
        if value is not None:
            return Extraction(value, "hash")

    searchable = _HEADERS.sub(lambda m: " " * len(m.group(0)), text)
    for m in reversed(list(_PHRASE.finditer(searchable))):
        value = _value_from_segment(text[m.end():], answer_type)
        if value is not None:
            return Extraction(value, "phrase")

    if answer_type == "choice":
        letters = _PAREN_LETTER.findall(text)
        if letters:
            return Extraction(letters[-1], "paren_letter")
        letters = _LINE_LETTER.findall(text)
        if letters:
            return Extraction(letters[-1], "line_letter")
        return Extraction(None, "none", "no answer found")

    numbers = _number_spans(text)
    if answer_type == "latex":
        spans = list(_MATH_SPAN.finditer(text))
        if spans and (not numbers or numbers[-1][1] < spans[-1].end()):
            inner = next(g for g in spans[-1].groups() if g is not None)
            value = _math_value(inner, answer_type)
            if value is not None:
                return Extraction(value, "last_math")
    if numbers:
        return Extraction(numbers[-1][0], "last_number")
    return Extraction(None, "none", "no answer found")


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
) -> dict[str, Any]:
    """Extract, verify and language-tag one response.

    Returns ``{extracted, method, correct, reason, response_lang, off_target}``; ``reason`` is
    the extraction reason when nothing was extracted, else the verification reason.
    """
    response = "" if response is None else str(response)
    extraction = extract_answer(response, answer_type)
    if extraction.value is None:
        correct, reason = False, extraction.reason
    else:
        correct, reason = verify(extraction.value, gold, answer_type)
    response_lang, _ = identify(response, candidates)
    return {
        "extracted": extraction.value,
        "method": extraction.method,
        "correct": correct,
        "reason": reason,
        "response_lang": response_lang,
        "off_target": is_off_target(response_lang, lang),
    }
