"""Answer extraction for multilingual math / multiple-choice responses: which part of a response is
its final answer.

Why our own extractor: math-verify finds ``\\boxed{}`` and LaTeX well but misses numbers glued
to CJK or Thai text ("答案是42", "所以她每天赚18美元") and does not know the native "the answer is"
phrases of the study's languages (:mod:`~parallel_scaling.scoring.answer_phrases`). We therefore
extract with an explicit, ordered cascade (``boxed`` -> ``####`` -> native answer phrase -> last
number) whose winning step is recorded in ``Extraction.method``; whether the answer is right is
:mod:`~parallel_scaling.scoring.grading`'s question.

An answer line is read the way a grader would read it: a calculation ("Answer: 1250 - 900 = 350")
gives the last value of its chain, and a line that commits to nothing ("cannot be determined",
"5 (if ...) or 6 (if ...)") gives *no* answer rather than a number picked from the reasoning.
Compound LaTeX answers are split into their parts by :mod:`~parallel_scaling.scoring.compound`.

Nothing here raises on model output: an empty or answer-less response gives no value and a reason.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

from parallel_scaling.scoring.answer_phrases import (
    ANSWER_PHRASES, COT_HEADERS, NO_ANSWER_PATTERNS, OR_WORDS, VERB_FINAL_LANGS,
)
from parallel_scaling.scoring.numbers import (
    normalize_text, number_items, number_matches, number_spans, single_number, space_comma_lists, ungroup_numbers,
)
from parallel_scaling.scoring.compound import _labelled, compound_parts, is_compound  # noqa: F401 (re-exported)
from parallel_scaling.scoring.reached import asked_quantity, stated_result
from parallel_scaling.scoring.thinking import UNFINISHED_POLICIES, UNFINISHED_REASONS, classify

ANSWER_TYPES: tuple[str, ...] = ("number", "latex", "choice")

#: Choice labels accepted for multiple-choice answers (MMLU-ProX style goes up to J).
CHOICE_LETTERS = "ABCDEFGHIJ"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extraction:
    """An extracted answer and how it was found.

    ``method`` is one of ``boxed``, ``hash``, ``phrase``, ``last_number``, ``last_math``, ``paren_letter``,
    ``line_letter``, ``stated`` (a cut thinking's stated result, lenient reading) or ``none``; ``reason`` explains a missing value (``None`` when found).
    ``final_part`` is how the response's final part stands (one of
    :data:`~parallel_scaling.scoring.thinking.FINAL_PART_STATES`; ``absent`` for a chat model).
    """

    value: str | None
    method: str
    reason: str | None = None
    final_part: str = "absent"


# --------------------------------------------------------------------------- extraction

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASH = re.compile(r"####+[ \t]*([^\n]*)")
# a Markdown heading "#### 5. Step title" (at the start of a line) is no "#### 72" answer line
_NUMBERED_HEADING = re.compile(r"\d+[.)]\s+\D")


def _is_heading(text: str, hashes: re.Match[str]) -> bool:
    return (hashes.start() == 0 or text[hashes.start() - 1] == "\n") and bool(_NUMBERED_HEADING.match(hashes.group(1)))
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


def _compile_alternatives(patterns: Sequence[tuple[str, str]]) -> re.Pattern[str]:
    """One case-insensitive alternation of regular expressions, normalised like responses."""
    return re.compile("|".join(f"(?:{normalize_text(p)})" for _, p in patterns), flags=re.IGNORECASE)


_NO_ANSWER = _compile_alternatives(NO_ANSWER_PATTERNS)
_OR_WORD = _compile_alternatives(OR_WORDS)
_SENTENCE_END = re.compile(r"(?<!\d)\.|\.(?!\d)|[。！？!?;；]")
# "=" and "≈" link the steps of a calculation ("1250 - 900 = 350", "22/7 ≈ 3.14")
_CHAIN_LINK = re.compile(r"=|≈|\\approx(?![A-Za-z])")
# after an operand: an optional unit ("$", "%", "元", "apples") then an operator, or a glued variable
# then "=" ("2x = 10"); "3 hours = 180 minutes" restates a value and is no calculation
_OPERAND_TAIL = re.compile(
    r"[A-Za-z](?![A-Za-z])\s*[=≈]"
    r"|\s*(?:[$€£¥₹%]|[^\W\d_]{1,12})?\s*(?:[+*/×·÷^]|-\s*[$€£¥₹(]?\s*\d|\\(?:times|cdot|div)(?![A-Za-z]))"
)
# after a result: an operator and another operand mean the "result" is itself an expression
_NOT_A_RESULT = re.compile(r"\s*(?:[$€£¥₹%]\s*)?(?:[+*/×·÷^]|-\s*\d|\\(?:times|cdot|div)(?![A-Za-z]))")


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


# LaTeX that wraps words or spaces a unit off, inside a boxed answer: "10\,L", "\text{it cost \$15}"
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_LATEX_SPACE = re.compile(r"\\[,;: !]|~|\\q?quad(?![A-Za-z])|\\thinspace(?![A-Za-z])")
# words, a unit or a currency sign next to a boxed number: it states a value, it is no expression
_WORDS_OR_CURRENCY = re.compile(r"[^\W\d_]|[$€£¥₹]")


def _boxed_value(content: str, answer_type: str) -> str | None:
    """The value of a ``\\boxed{}``: a number, else (``number``) the number stated among words or a
    unit (``10\\,L``, ``114,200\\,\\text{dollars}``, ``\\text{it cost \\$15}``), else the expression.

    Words are what tell a stated number from an expression: ``\\boxed{2\\sqrt{2}}`` or
    ``\\boxed{2+3}`` stays an expression for math-verify.
    """
    value = _math_value(content, answer_type)
    if answer_type != "number" or value is None or single_number(value) is not None:
        return value
    plain = _LATEX_SPACE.sub(" ", _TEXT_WRAPPER.sub(lambda m: f" {m.group(1)} ", content))
    plain = plain.replace("\\$", "$").replace("\\%", "%")
    if "\\" in plain or not _WORDS_OR_CURRENCY.search(plain) or not number_items(plain):
        return value
    return _value_from_segment(plain, answer_type) or value


# a parenthesis of plain text ("18 $ (9 eggs at 2 $ each)"), not LaTeX's inline math "\(...\)"
_PARENTHESIS = re.compile(r"(?<!\\)[(（][^()（）\n]*(?<!\\)[)）]")


def _last_unbracketed(text: str, numbers: list[tuple[str, int]]) -> str:
    """The last number, unless it sits in a parenthesis that explains a number stated before it
    in the same sentence: "Janet makes $18 a day (9 eggs at $2)" states 18, not 2, whereas
    "for a speed of (2/3*6=4 miles per hour)" states 4 (nothing before the parenthesis)."""
    last, start = numbers[-1]
    paren = next((m for m in _PARENTHESIS.finditer(text) if m.start() < start < m.end()), None)
    if paren is None:
        return last
    line_start = text.rfind("\n", 0, paren.start()) + 1
    ends = list(_SENTENCE_END.finditer(text, line_start, paren.start()))
    sentence_start = ends[-1].end() if ends else line_start
    inside = [(m.start(), m.end()) for m in _PARENTHESIS.finditer(text, sentence_start, paren.start())]
    stated = [
        value for value, pos in numbers
        if sentence_start <= pos < paren.start() and not any(lo <= pos < hi for lo, hi in inside)
    ]
    return stated[-1] if stated else last


def _sentence(text: str) -> str:
    """Text up to the end of its sentence (a period not inside a number, or a CJK full stop)."""
    head = re.split(r"(?<!\d)\.|\.(?!\d)|[。！？!?;；]", text, maxsplit=1)[0]
    return head.strip().strip("*").strip()


def _answer_sentence(text: str) -> str:
    """The first sentence of ``text``, not cut inside brackets ("5 (if Mr. X ...) or 6")."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in "([{（":
            depth += 1
        elif ch in ")]}）":
            depth = max(0, depth - 1)
        elif depth == 0 and _SENTENCE_END.match(text, i):
            return text[:i]
    return text


def _is_refusal(sentence: str) -> bool:
    """Does the answer sentence say the answer cannot be given (before stating any number)?"""
    m = _NO_ANSWER.search(sentence)
    if not m:
        return False
    first = number_items(sentence)
    return not first or m.start() < first[0][1]


def _is_hedge(sentence: str) -> bool:
    """Does the answer sentence offer two different numbers joined by "or" ("5 (if ...) or 6")?"""
    items = number_items(sentence)
    for m in _OR_WORD.finditer(sentence):
        before = [v for v, _, end in items if end <= m.start()]
        after = [v for v, start, _ in items if start >= m.end()]
        if before and after and _as_fraction(before[-1]) != _as_fraction(after[0]):
            return True
    return False


def _as_fraction(value: str) -> Fraction | str:
    """Exact value of a canonical number string (the string itself if it is not one)."""
    try:
        return Fraction(value)
    except (ValueError, ZeroDivisionError):
        return value


def _chain_value(sentence: str) -> str | None:
    """The last value of an answer written as a calculation, else None.

    "1250 - 900 = 350" and "3R - 16 = 3(46) - 16 = 122" give 350 and 122; so do "x = 5" and
    "Total = 5 + 3 = 8" (nothing numeric before the first "="). A sentence that states its value
    first and explains it after ("18 (since 9 × 2 = 18)", "25%, as 1/4 = 0.25") is not a
    calculation: its first number is not an operand. A last step that is itself an expression
    ("x = 9 × 2") gives None, so the caller keeps the first number.
    """
    links = list(_CHAIN_LINK.finditer(sentence))
    if not links:
        return None
    items = number_items(sentence)
    if items and items[0][1] < links[0].start() and not _OPERAND_TAIL.match(sentence, items[0][2]):
        return None
    tail = sentence[links[-1].end():]
    result = number_items(tail)
    if not result or _NOT_A_RESULT.match(tail, result[0][2]):
        return None
    return result[0][0]


def _value_from_segment(segment: str, answer_type: str, lang: str | None = None) -> str | None:
    """The answer at the start of the text following a marker (phrase or ``####``)."""
    line = segment.split("\n", 1)[0]
    if answer_type == "choice":
        m = _LETTER_AT_START.match(line)
        return m.group(1) if m else None
    body = _LEADING_SEPARATORS.sub("", line)
    math = _MATH_SPAN.match(body)
    if math:
        inner = next(g for g in math.groups() if g is not None)
        if answer_type == "latex":
            joined = ", ".join([inner, *_more_math_spans(body, math.end())])
            inner = joined if is_compound(compound_parts(joined)) else inner
        value = _math_value(inner, answer_type)
        # "$18 and she spent $5": a currency sign, not a math span -> fall through to numbers
        if value is not None and (answer_type == "latex" or "\\" in inner or single_number(value)):
            return value
    if answer_type == "latex" and body.startswith("\\"):
        return _math_value(_sentence(body), answer_type)
    emphasised = _emphasised_value(_answer_sentence(body))
    if emphasised is not None:
        return emphasised
    chained = _chain_value(_answer_sentence(body))
    if chained is not None:
        return chained
    if lang in VERB_FINAL_LANGS:
        stated = number_matches(_answer_sentence(body))
        if stated:
            return stated[-1]
    numbers = number_matches(body)
    return numbers[0] if numbers else None


_EMPHASIS = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")


def _emphasised_value(sentence: str) -> str | None:
    """The number an answer sentence emphasises when it states several ("after these 4 hours he is
    **45 miles** from home" -> 45): the one number in bold, else None (no emphasis, or several)."""
    if len({v for v, _, _ in number_items(sentence)}) < 2:
        return None
    emphasised = [
        values for m in _EMPHASIS.finditer(sentence) if (values := number_matches(m.group(1) or m.group(2)))
    ]
    if len(emphasised) != 1 or len(set(emphasised[0])) != 1:
        return None
    return emphasised[0][0]


_SPAN_JOINER = re.compile(r"\s*(?:,|;|\band\b|&)\s*")


def _more_math_spans(body: str, pos: int) -> list[str]:
    """Math spans that continue an answer's first one: "$x = 2$, $A(1, 0)$" is one compound answer."""
    found = []
    while True:
        joiner = _SPAN_JOINER.match(body, pos)
        span = _MATH_SPAN.match(body, joiner.end()) if joiner else None
        if span is None:
            return found
        found.append(next(g for g in span.groups() if g is not None))
        pos = span.end()


def _no_commitment(segment: str, answer_type: str) -> str | None:
    """Why the answer line after a marker commits to no answer, or None when it may hold one."""
    sentence = _answer_sentence(_LEADING_SEPARATORS.sub("", segment.split("\n", 1)[0]))
    if _is_refusal(sentence):
        return "answer line says the answer cannot be determined"
    if answer_type == "number" and _is_hedge(sentence):
        return "answer line hedges between several values"
    return None


def extract_answer(
    response: str,
    answer_type: str = "number",
    lang: str | None = None,
    unfinished: str = "none",
    prompt: str | None = None,
    finish_reason: str | None = None,
    question: str | None = None,
) -> Extraction:
    """Extract the final answer from a model response.

    A reasoning model's response is read in its final part only (after ``</think>``,
    :func:`~parallel_scaling.scoring.thinking.split_response`): numbers of the thinking never
    override the answer it commits to. When the thinking is cut off (no ``</think>``), nothing
    follows it, or what follows states no answer, ``unfinished`` decides: ``none`` extracts nothing
    (the reason says which), ``thinking`` reads the thinking part as if it were the answer; one cut
    before its end gives, after a ``\\boxed{}``, the last result it stated for the quantity the
    ``question`` (else the ``prompt``) asks for (method ``stated``, :mod:`~parallel_scaling.scoring.reached`).
    ``Extraction.final_part`` records the state. ``prompt`` (a prompt whose last thinking marker is ``<think>``
    opens the thinking) and ``finish_reason`` (``eos``, ``length``, ``stop_string``, ``None``) decide which
    responses are cut: :func:`~parallel_scaling.scoring.thinking.classify`.

    ``lang`` (the language the answer is written in) decides the locale readings of numbers that are
    ambiguous across languages: ``70.000`` is 70000 in German, ``1,25,000`` is 125000 in Bengali
    (:func:`~parallel_scaling.scoring.numbers.ungroup_numbers`).

    Cascade (first hit wins): last ``\\boxed{}`` -> last ``#### X`` -> last native answer
    phrase ("The answer is", "答案是", "คำตอบคือ", ...) -> for ``latex`` the last ``$...$`` span
    if nothing numeric follows it -> last number; for ``choice`` the last ``(X)`` then a line
    holding only a letter.

    On a marker's line, an emphasised number is the one the sentence commits to ("he is **45
    miles** from home after 4 hours" -> 45), else a calculation gives its last value ("Answer: 80 -
    35 = 45" -> 45), else the first number. A ``\\boxed{}`` holding a number with words or a unit
    (``\\boxed{10\\,L}``, ``\\boxed{\\text{it cost \\$15}}``) gives that number. When the last
    marker line that says anything says the answer cannot be determined, or (``number``) hedges
    between values ("14 (if ...) or 16 (if ...)"), nothing is extracted (method ``none``, with the
    reason) instead of falling back to a number of the reasoning.
    """
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; choose from {', '.join(ANSWER_TYPES)}")
    if unfinished not in UNFINISHED_POLICIES:
        raise ValueError(f"unknown unfinished-answer policy {unfinished!r}; choose from {', '.join(UNFINISHED_POLICIES)}")
    if response is None or not str(response).strip():
        return Extraction(None, "none", "empty response")
    parts = classify(str(response), prompt, finish_reason, lambda text: _states_answer(text, answer_type, lang))
    text = parts.final
    if parts.unfinished:
        if unfinished == "none" or not parts.thinking:
            return Extraction(None, "none", UNFINISHED_REASONS[parts.state], parts.state)
        text = parts.thinking
        read = _extract(text, answer_type, lang)
        if parts.state == "unclosed" and read.method != "boxed" and answer_type != "choice":  # cut mid-way
            stated = stated_result(ungroup_numbers(normalize_text(text), lang), asked_quantity(question or prompt))
            read = Extraction(_math_value(stated, answer_type), "stated") if stated is not None else read
        return replace(read, final_part=parts.state)
    return replace(_extract(text, answer_type, lang), final_part=parts.state)


# an answer header alone on its line ("### Answer:", "**উত্তর:**"), the answer on the next line
_HEADER_ONLY = re.compile(r"^[\s*#:：✅\-—–]*(?:\n|$)")


def _states_answer(text: str, answer_type: str, lang: str | None) -> bool:
    """Does ``text`` state an explicit answer: a ``\\boxed{}``, ``####`` or answer phrase with a value
    (or saying there is none), or an answer header whose next line holds a number?"""
    found = _extract(text, answer_type, lang)
    if found.method in ("boxed", "hash", "phrase", "paren_letter", "line_letter") or (found.method == "none" and found.reason != "no answer found"):
        return True
    normalised = normalize_text(text)
    for m in _PHRASE.finditer(normalised):
        rest = normalised[m.end():]
        if _HEADER_ONLY.match(rest):
            following = [line for line in rest.split("\n")[1:] if line.strip(" *#")]
            if following and number_items(following[0]):
                return True
    return False


def _extract(response: str, answer_type: str, lang: str | None) -> Extraction:
    """The cascade of :func:`extract_answer` on one part of a response."""
    text = space_comma_lists(ungroup_numbers(normalize_text(response), lang))

    boxed = _last_boxed(text)
    if boxed is not None:
        if answer_type == "choice":
            m = _LETTER_AT_START.match(boxed)
            value = m.group(1) if m else None
        else:
            value = _boxed_value(boxed, answer_type)
        if value is not None:
            return Extraction(value, "boxed")

    # the last marker whose line says something decides: a value, or no committed answer at all
    markers = [(m.group(1), "hash") for m in _HASH.finditer(text) if not _is_heading(text, m)]
    searchable = _HEADERS.sub(lambda m: " " * len(m.group(0)), text)
    phrases = [(text[m.end():], "phrase") for m in _PHRASE.finditer(searchable)]
    for segments in (markers, phrases):
        decided = False
        for segment, method in reversed(segments):
            if not decided and _LEADING_SEPARATORS.sub("", segment.split("\n", 1)[0]).strip():
                decided = True  # only the last non-empty answer line may withdraw the answer
                reason = _no_commitment(segment, answer_type)
                if reason is not None:
                    return Extraction(None, "none", reason)
            value = _value_from_segment(segment, answer_type, lang if method == "phrase" else None)
            if value is not None:
                return Extraction(value, method)

    if answer_type == "choice":
        letters = _PAREN_LETTER.findall(text)
        if letters:
            return Extraction(letters[-1], "paren_letter")
        letters = _LINE_LETTER.findall(text)
        if letters:
            return Extraction(letters[-1], "line_letter")
        return Extraction(None, "none", "no answer found")

    numbers = number_spans(text)
    if answer_type == "latex":
        spans = list(_MATH_SPAN.finditer(text))
        if spans and (not numbers or numbers[-1][1] < spans[-1].end()):
            inner = next(g for g in spans[-1].groups() if g is not None)
            value = _math_value(inner, answer_type)
            if value is not None:
                return Extraction(value, "last_math")
    if numbers:
        return Extraction(_last_unbracketed(text, numbers) if answer_type == "number" else numbers[-1][0], "last_number")
    return Extraction(None, "none", "no answer found")
