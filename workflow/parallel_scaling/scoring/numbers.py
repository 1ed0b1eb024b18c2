"""Numbers in text, read one way everywhere: in model answers, in translations under QC, and in
reference answers.

One module because it is one concept with three uses that must agree: a number a model writes
as ``1,234``, ``১২৩৪`` or ``1 234`` is the same number that QC must find in a translation and that
the gold answer states. The three readings differ only where the use demands it (documented at
each function): an answer is parsed to one value, QC counts every number of a text and accepts
the other spellings a translator may use, a reference answer is reduced to its canonical string.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from fractions import Fraction
from typing import Any


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


#: Languages whose writers group thousands with a dot and write decimals with a comma
#: (``70.000`` is seventy thousand): there a single dot group of three digits is a thousands group.
DOT_THOUSANDS_LANGS: frozenset[str] = frozenset(
    {"de", "es", "it", "pt", "nl", "id", "tr", "vi", "da", "el", "ro", "hr", "sl", "sr"}
)
#: Languages written with Indian (lakh/crore) grouping: ``1,25,000`` is 125000.
INDIAN_GROUPING_LANGS: frozenset[str] = frozenset({"hi", "bn", "te", "ta", "mr", "gu", "kn", "ml", "pa", "ur", "ne"})

# LaTeX spacing inside a number: "8\,000", "8\ 000", "8~000" (a thin space then reads as a group);
# "\!" is a negative thin space ("70,\!000") that only ever tightens typography
_LATEX_GROUP_SPACE = re.compile(r"(?<=\d)(?:\\[,;: ]|~|\\thinspace(?![A-Za-z])\s*)(?=\d{3}(?!\d))")
_LATEX_NEG_SPACE = re.compile(r"\\!")
# LaTeX "{,}" is a comma without the math space: thousands before 3 digits ("1{,}234"), else decimal
_LATEX_DECIMAL_COMMA = re.compile(r"(?<=\d)\{,\}(?=\d)(?!\d{3}(?!\d))")
# dot groups: two or more ("1.000.000"), or one before a decimal comma ("70.000,50"), in any
# language; a single one ("70.000") only in the languages of DOT_THOUSANDS_LANGS
_DOT_GROUPS_ANY = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:(?:\.\d{3}){2,}(?!\d|[.,]\d)|(?:\.\d{3})+(?=,\d))")
_DOT_GROUPS_LOCALE = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:\.\d{3})+(?!\d|\.\d)")
_INDIAN_GROUPS = re.compile(r"(?<![\d.,])\d{1,2}(?:,\d{2})+,\d{3}(?!\d|,\d)")


def ungroup_numbers(text: str, lang: str | None = None) -> str:
    """Rewrite locale spellings of numbers into the one spelling :func:`number_items` reads.

    ``8\\,000`` / ``70,\\!000`` (LaTeX spacing) -> ``8 000`` / ``70,000`` and ``2{,}5`` -> ``2,5`` (a
    decimal comma; ``1{,}234`` stays a thousands group) in every language;
    ``1.000.000`` and ``70.000,50`` -> ``1000000`` and ``70000,50`` in every language; ``70.000`` ->
    ``70000`` only where ``lang`` groups thousands with a dot (elsewhere it stays 70.000 = 70), and
    ``1,25,000`` -> ``125000`` only where ``lang`` uses Indian grouping (elsewhere it is a list).
    ``text`` must be normalised (:func:`normalize_text`).
    """
    text = _LATEX_NEG_SPACE.sub("", text)
    text = _LATEX_GROUP_SPACE.sub("\u2009", text)
    text = _LATEX_DECIMAL_COMMA.sub(",", text)
    text = _DOT_GROUPS_ANY.sub(lambda m: m.group(0).replace(".", ""), text)
    if lang in DOT_THOUSANDS_LANGS:
        text = _DOT_GROUPS_LOCALE.sub(lambda m: m.group(0).replace(".", ""), text)
    if lang in INDIAN_GROUPING_LANGS:
        text = _INDIAN_GROUPS.sub(lambda m: m.group(0).replace(",", ""), text)
    return text


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


def space_comma_lists(text: str) -> str:
    """"1,2,3" is a list, not 1.2 then 3: give its commas a space (thousands like 1,234,567 stay)."""
    return _COMMA_LIST.sub(
        lambda m: m.group(0) if _THOUSANDS.fullmatch(m.group(0)) else m.group(0).replace(",", ", "),
        text,
    )


def number_matches(text: str) -> list[str]:
    """All numbers in ``text`` (already normalised), canonicalised as ``-1234.5`` / ``3/4``."""
    return [value for value, _ in number_spans(space_comma_lists(text))]


def number_spans(text: str) -> list[tuple[str, int]]:
    """``(canonical value, start offset)`` of every number in ``text``."""
    return [(value, start) for value, start, _ in number_items(text)]


def number_items(text: str) -> list[tuple[str, int, int]]:
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
    numbers = number_matches(text)
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


# --------------------------------------------------------------------------- counting numbers (QC)
# Every number of a text, as a multiset, so that QC can tell whether a translation kept the
# quantities of its English source. A translation may spell a number differently (European
# separators, "10 000", "100万", Han numerals), so this reading accepts those spellings too.


# digits with optional thousands groups and decimal part. Groups of exactly three digits after "," or
# "." (or an apostrophe / no-break / thin space) are thousands; any other final group is decimals.
_TEXT_NUMBER = re.compile(r"\d+(?:[,.'\u00a0\u202f]\d+)*")
# translations may also group thousands with a plain space ("10 000" in French)
_SPACED_NUMBER = re.compile(r"\d{1,3}(?: \d{3}(?!\d))+")
# CJK myriad units: "100万" is 1,000,000 and "3.5万" is 35,000
_CJK_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*([千万萬亿億])")
_CJK_FACTORS = {"千": 10**3, "万": 10**4, "萬": 10**4, "亿": 10**8, "億": 10**8}
# numbers written with Han numerals ("十二", "三十五", "两"), common in zh/ja translations
_HAN_NUMERAL = re.compile(r"[零〇一二两兩三四五六七八九十百千万萬亿億]+")
_HAN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "兩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
               "八": 8, "九": 9}
_HAN_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
# a leading decimal point ("$.25") means 0.25; "280k" means 280000
_LEADING_POINT = re.compile(r"(?<![\w.])\.(?=\d)")
_K_SUFFIX = re.compile(r"(?<![\d.,])(\d+)[kK](?![A-Za-z])")

def han_numeral_value(text: str) -> int:
    """Value of a Han numeral string: ``"三十五"`` -> 35, ``"两万"`` -> 20000, ``"十二"`` -> 12."""
    total = section = digit = 0
    for ch in text:
        if ch in _HAN_DIGITS:
            digit = _HAN_DIGITS[ch]
        elif ch in _HAN_SMALL_UNITS:
            section += (digit or 1) * _HAN_SMALL_UNITS[ch]
            digit = 0
        else:  # myriad units close a section
            total += (section + digit) * _CJK_FACTORS[ch] if (section + digit) else _CJK_FACTORS[ch]
            section = digit = 0
    return total + section + digit


def canonical_number(token: str) -> str:
    """``"1,000"``/``"1.000"`` -> ``"1000"``, ``"100.00"`` -> ``"100"``, ``"3,50"`` -> ``"3.5"``."""
    groups = re.split(r"[,.'\u00a0\u202f ]", token)
    decimals = ""
    if len(groups) > 1 and len(groups[-1]) != 3:
        decimals = groups.pop().rstrip("0")
    whole = "".join(groups).lstrip("0") or "0"
    return f"{whole}.{decimals}" if decimals else whole


def extract_numbers(text: str, translated: bool = False) -> Counter[str]:
    """Multiset of the numbers in ``text`` as canonical values (see :func:`canonical_number`).

    With ``translated=True`` the readings a translation may legitimately use are added too (plain
    space thousands, CJK myriad units): only numbers *missing* from a translation are checked, so
    extra readings can only excuse a number, never flag one. Both sides read ``$.25`` as 0.25 and
    ``280k`` as 280000.
    """
    text = _K_SUFFIX.sub(r"\g<1>000", _LEADING_POINT.sub("0.", normalize_text(text)))
    found: Counter[str] = Counter(canonical_number(t) for t in _TEXT_NUMBER.findall(text))
    if translated:
        found.update(canonical_number(t) for t in _SPACED_NUMBER.findall(text))
        for value, unit in _CJK_UNIT.findall(text):
            whole, _, frac = value.partition(".")
            scaled = (int(whole) * 10 ** len(frac) + int(frac or 0)) * _CJK_FACTORS[unit] // 10 ** len(frac)
            found[str(scaled)] += 1
        found.update(str(han_numeral_value(t)) for t in _HAN_NUMERAL.findall(text))
    return found


# --------------------------------------------------------------------------- reference answers


_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def normalize_answer(value: Any) -> str:
    """Reduce a reference answer to its verifiable final form.

    GSM8K solutions end in ``#### N``: only N is kept. Then ``$``, thousands commas, surrounding
    whitespace and a final full stop are dropped, a Unicode minus becomes ``-``, and numbers written
    as ``18.0`` / ``18.00`` become ``18`` so that string equality matches numeric equality for the
    integer answers of grade-school maths. Non-numeric answers are returned stripped, otherwise as is.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    text = str(value)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    text = text.strip().replace("\u2212", "-").replace("$", "").replace(",", "").strip()
    text = text.rstrip(".").strip() if re.fullmatch(r".*\d\.", text) else text
    if _NUMBER_RE.match(text) and "." in text:
        whole, _, frac = text.partition(".")
        frac = frac.rstrip("0")
        text = whole if not frac else f"{whole}.{frac}"
        if text in {"", "+", "-"}:
            text = "0"
    return text
