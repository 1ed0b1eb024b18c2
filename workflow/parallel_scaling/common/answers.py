"""Answer extraction and verification for multilingual math / multiple-choice responses.

Why our own extractor: math-verify finds ``\\boxed{}`` and LaTeX well but misses numbers glued
to CJK or Thai text ("答案是42", "所以她每天赚18美元") and does not know the native "the answer is"
phrases of the study's languages. We therefore extract with an explicit, ordered cascade
(``boxed`` -> ``####`` -> native answer phrase -> last number) whose winning step is recorded in
``Extraction.method``, and only use math-verify to decide *equivalence* (``\\frac{1}{2}`` ==
``0.5``), with a plain numeric comparison in front of it that is exact and fast.

An answer line is read the way a grader would read it: a calculation ("Answer: 1250 - 900 = 350")
gives the last value of its chain, and a line that commits to nothing ("cannot be determined",
"5 (if ...) or 6 (if ...)") gives *no* answer rather than a number picked from the reasoning.
Compound LaTeX answers ("\\lambda=2\\sqrt{2}, A(\\pm 1, 0)") are compared part by part, because
math-verify reads them as one unrelated expression.

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

from parallel_scaling.common.language import identify, is_off_target

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

#: Statements that the question cannot be answered, as data: (language, regular expression), matched
#: case-insensitively in the sentence after an answer marker, before its first number. An answer
#: line saying one of these commits to no value, so nothing is extracted (falling back to the last
#: number of the reasoning would grade a refusal as if it were an answer).
NO_ANSWER_PATTERNS: tuple[tuple[str, str], ...] = (
    ("en", r"(?:not possible|impossible|unable|no way) to (?:determine|calculate|compute|know|say|tell|find|answer)"),
    ("en", r"can(?:not|['’]t| not) (?:be )?(?:determined?|calculated?|computed?|known|answered|found|sa(?:y|id)|tell)"),
    ("en", r"(?:not enough|insufficient|missing) (?:information|data)"),
    ("en", r"\bundeterminable\b|\bnot determinable\b|\bundetermined\b"),
    ("de", r"nicht (?:eindeutig )?(?:bestimmbar|bestimmen|bestimmt werden|berechnet werden|ermittelt werden|sagen)"),
    ("de", r"(?:nicht möglich|unmöglich),? .{0,40}?(?:bestimmen|berechnen|ermitteln|sagen)"),
    ("de", r"(?:nicht genügend|nicht genug|unzureichende|fehlende) (?:informationen|angaben|daten)"),
    ("fr", r"(?:impossible|pas possible) de (?:déterminer|calculer|savoir|dire|répondre|trouver)"),
    ("fr", r"ne (?:peut|peuvent|pouvons|peux) pas (?:être )?(?:déterminer|déterminée?s?|calculer|calculée?s?|savoir)"),
    ("fr", r"(?:pas assez|manque) d'informations?|informations? insuffisantes?|données insuffisantes"),
    ("es", r"no (?:es posible|se puede|podemos|puedo) (?:determinar|calcular|saber|decir)"),
    ("es", r"imposible (?:de )?(?:determinar|calcular|saber|decir)|no (?:se )?puede ser determinad[oa]"),
    ("es", r"(?:información|datos) insuficientes?|no hay (?:suficiente información|suficientes datos)"),
    ("it", r"non (?:è possibile|si può|possiamo) (?:determinare|calcolare|sapere|dire)|informazioni insufficienti"),
    ("pt", r"não (?:é possível|se pode|podemos) (?:determinar|calcular|saber|dizer)|informações insuficientes"),
    ("nl", r"niet (?:te )?(?:bepalen|berekenen)|onvoldoende informatie"),
    ("ru", r"(?:невозможно|нельзя|не можем|не могу|не удаётся|не удается) (?:однозначно |точно )?"
           r"(?:определить|вычислить|сказать|найти|ответить|установить)"),
    ("ru", r"недостаточно (?:данных|информации|условий)|не может быть (?:определ|вычисл|найден)"),
    ("zh", r"无法(?:确定|判断|计算|得出|求出|回答|得知)|不能(?:确定|计算|求出|得出)|条件不足|信息不足|缺少(?:信息|条件|数据)"),
    ("ja", r"(?:決定|特定|判断|計算|確定|算出|判定)(?:することは|は)?できません|(?:決定|特定|判断|計算|確定)できない"),
    ("ja", r"(?:求め|決め)られ(?:ません|ない)|(?:情報|条件|データ)が(?:不足|足りません|足りない)"),
    ("ko", r"(?:결정|계산|확정|판단|구)할 수 없|알 수 없|정보가 (?:부족|충분하지)"),
    ("th", r"ไม่สามารถ(?:ระบุ|หา|คำนวณ|ตัดสิน|บอก|ทราบ|ตอบ)|ข้อมูลไม่(?:เพียงพอ|พอ|ครบ)"),
    ("sw", r"haiwezekani (?:kuamua|kujua|kuhesabu|kupata|kusema)|haiwezi kuamuliwa|hatuwezi (?:kuamua|kujua|kuhesabu)"),
    ("sw", r"taarifa (?:haitoshi|hazitoshi)|habari (?:haitoshi|hazitoshi)"),
    ("bn", r"নির্ধারণ করা (?:সম্ভব নয়|যায় না)|তথ্য (?:অপর্যাপ্ত|যথেষ্ট নয়)"),
    ("te", r"నిర్ణయించలేము|నిర్ధారించలేము|సమాచారం సరిపోదు"),
    ("hi", r"निर्धारित नहीं (?:किया जा सकता|कर सकते)|पर्याप्त जानकारी नहीं"),
    ("ar", r"لا يمكن (?:تحديد|حساب|معرفة)|معلومات غير كافية"),
    ("vi", r"không thể (?:xác định|tính|biết)|không đủ thông tin"),
    ("id", r"tidak (?:dapat|bisa) (?:ditentukan|dihitung|menentukan)|informasi tidak (?:cukup|memadai)"),
    ("tr", r"belirlenemez|hesaplanamaz|yeterli bilgi (?:yok|bulunmuyor)"),
)

#: Words for "or", as data: (language, regular expression). An answer sentence offering two
#: different numbers joined by one of them ("5 (if ...) or 6 (if ...)") is a hedge, not an answer.
#: Only used for ``number`` answers: a LaTeX answer such as ``x = 1 \text{ or } x = 2`` is legitimate.
OR_WORDS: tuple[tuple[str, str], ...] = (
    ("en", r"\bor\b"),
    ("de", r"\boder\b"),
    ("fr", r"\bou\b"),
    ("pt", r"\bou\b"),
    ("es", r"(?<=\s)[ou](?=\s)"),
    ("it", r"(?<=\s)o(?=\s)|\boppure\b"),
    ("ru", r"\bили\b|\bлибо\b"),
    ("zh", r"或者?|还是"),
    ("ja", r"または|もしくは|あるいは"),
    ("ko", r"또는|아니면|혹은"),
    ("th", r"หรือ"),
    ("sw", r"\bau\b"),
    ("bn", r"অথবা|(?<=\s)বা(?=\s)"),
    ("te", r"లేదా"),
    ("hi", r"अथवा|(?<=\s)या(?=\s)"),
    ("ar", r"(?<=\s)أو(?=\s)"),
    ("vi", r"\bhoặc\b"),
    ("id", r"\batau\b"),
    ("tr", r"\bveya\b|\bya da\b"),
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
    return [(value, start) for value, start, _ in _number_items(text)]


def _number_items(text: str) -> list[tuple[str, int, int]]:
    """``(canonical value, start, end)`` of every number in ``text``."""
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
        found.append((value, m.start(), m.end()))
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
    first = _number_items(sentence)
    return not first or m.start() < first[0][1]


def _is_hedge(sentence: str) -> bool:
    """Does the answer sentence offer two different numbers joined by "or" ("5 (if ...) or 6")?"""
    items = _number_items(sentence)
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
    items = _number_items(sentence)
    if items and items[0][1] < links[0].start() and not _OPERAND_TAIL.match(sentence, items[0][2]):
        return None
    tail = sentence[links[-1].end():]
    result = _number_items(tail)
    if not result or _NOT_A_RESULT.match(tail, result[0][2]):
        return None
    return result[0][0]


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
        if answer_type == "latex":
            joined = ", ".join([inner, *_more_math_spans(body, math.end())])
            inner = joined if is_compound(compound_parts(joined)) else inner
        value = _math_value(inner, answer_type)
        # "$18 and she spent $5": a currency sign, not a math span -> fall through to numbers
        if value is not None and (answer_type == "latex" or "\\" in inner or single_number(value)):
            return value
    if answer_type == "latex" and body.startswith("\\"):
        return _math_value(_sentence(body), answer_type)
    chained = _chain_value(_answer_sentence(body))
    if chained is not None:
        return chained
    numbers = _number_matches(body)
    return numbers[0] if numbers else None


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


def extract_answer(response: str, answer_type: str = "number") -> Extraction:
    """Extract the final answer from a model response.

    Cascade (first hit wins): last ``\\boxed{}`` -> last ``#### X`` -> last native answer
    phrase ("The answer is", "答案是", "คำตอบคือ", ...) -> for ``latex`` the last ``$...$`` span
    if nothing numeric follows it -> last number; for ``choice`` the last ``(X)`` then a line
    holding only a letter.

    On a marker's line, a calculation gives its last value ("Answer: 80 - 35 = 45" -> 45). When
    the last marker line that says anything says the answer cannot be determined, or (``number``)
    hedges between values ("14 (if ...) or 16 (if ...)"), nothing is extracted (method ``none``,
    with the reason) instead of falling back to a number of the reasoning.
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

    # the last marker whose line says something decides: a value, or no committed answer at all
    markers = [(m.group(1), "hash") for m in _HASH.finditer(text)]
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
            value = _value_from_segment(segment, answer_type)
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


# --------------------------------------------------------------------------- compound answers

# what separates the parts of a compound answer: ",", ";", "\quad", "\text{ and }", " and "
_PART_SEPARATOR = re.compile(r"\\q?quad(?![A-Za-z])|\\text\s*\{\s*(?:and|und|et|y|e|и|和|且|及|,|;)?\s*\}|;|\s+and\s+")
# LaTeX spacing and sizing that never changes a value
_LATEX_SPACING = re.compile(r"\\[,;:!> ]|~|\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\displaystyle(?![A-Za-z])")
# "x = ...", "\lambda = ...", "a_1 = ...", "f' = ..."
_EQUATION_LABEL = re.compile(r"((?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?'*)=(.+)", flags=re.DOTALL)
# a named point: "A(1, 0)", "P_1(2, -3)"
_POINT_LABEL = re.compile(r"([A-Z](?:_\{?[A-Za-z0-9]+\}?)?'*)(\(.*\))", flags=re.DOTALL)
_PLUS_MINUS = re.compile(r"\\pm(?![A-Za-z])|±")
_MINUS_PLUS = re.compile(r"\\mp(?![A-Za-z])|∓")


def compound_parts(expr: str) -> list[str]:
    """The top-level parts of an answer: ``"\\lambda=2\\sqrt{2}, A(\\pm 1, 0)"`` -> two parts.

    Commas inside brackets (points, intervals, ``1{,}234``) do not separate parts; math delimiters,
    LaTeX spacing and sizing commands are dropped. Every part comes back without spaces.
    """
    text = normalize_text(str(expr)).replace("$", "")
    text = re.sub(r"^\\[(\[]|\\[)\]]$", "", text.strip())
    text = _LATEX_SPACING.sub(" ", _PART_SEPARATOR.sub(",", text))
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [re.sub(r"\s+", "", p) for p in parts if p.strip()]


def _labelled(part: str) -> tuple[str | None, str]:
    """``(label, value)`` of one part: ``x=5`` -> ``("x", "5")``, ``A(1,0)`` -> ``("A", "(1,0)")``."""
    for pattern in (_EQUATION_LABEL, _POINT_LABEL):
        m = pattern.fullmatch(part)
        if m:
            return m.group(1), m.group(2)
    return None, part


def is_compound(parts: Sequence[str]) -> bool:
    """Several parts, at least one of them named (``x=...`` or a point ``A(...)``)."""
    return len(parts) > 1 and any(_labelled(p)[0] is not None for p in parts)


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
