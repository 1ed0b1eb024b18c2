"""Offline language identification of model responses (py3langid).

Why this module exists: the study measures *off-target* answers — a model asked in Swahili that
reasons in English — so every response needs a language label. py3langid is offline, fast and
covers all MGSM languages. Two things would otherwise make its labels noisy on math text:

* math (LaTeX, equations, digits) carries no language signal but still produces byte n-gram
  features, so ``3 + 5 = 8 #### 8`` would get a confident-looking but meaningless label.
  We strip math first and return ``("und", 0.0)`` when too few letters remain;
* langid separates Wu/Cantonese from Mandarin and has a "no linguistic content" class; for
  off-target checks those are folded into the macro-language (``wuu``/``yue`` -> ``zh``) or
  ``und``.
"""

from __future__ import annotations

import copy
import re
import threading
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

#: Label returned when the text has too little language content to identify.
UNDETERMINED = "und"

#: Minimum number of letters (after removing math, digits and isolated single Latin letters such
#: as variable names) needed before we trust an identification. Three letters is one CJK word
#: like "答案是" yet excludes stray variables ("x = y + 2").
MIN_LETTERS = 3

#: langid labels folded into the code used by the study's language lists.
LABEL_ALIASES: dict[str, str] = {
    "wuu": "zh",  # Wu Chinese: written Han text; MGSM zh is occasionally labelled wuu
    "yue": "zh",  # Cantonese
    "zxx": UNDETERMINED,  # langid's "no linguistic content"
}

# Display/inline math in unambiguous delimiters. Single "$...$" is deliberately not removed: in
# word problems "$2 per egg ... $18" is currency around real words (LaTeX inside "$" is still
# reduced to nothing by the command, digit and symbol stripping below).
_MATH_SPANS = re.compile(
    r"\$\$.*?\$\$|\\\[.*?\\\]|\\\(.*?\\\)|\\begin\{(\w+\*?)\}.*?\\end\{\1\}",
    flags=re.DOTALL,
)
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
# A lone Latin letter with no letter on either side is almost always a math variable.
_ISOLATED_LATIN_LETTER = re.compile(r"(?<![^\W\d_])[A-Za-z](?![^\W\d_])")
_SPACES = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")  # word characters minus digits/underscore: letters

_IDENTIFIER_LOCK = threading.Lock()


def strip_math(text: str) -> str:
    """Remove LaTeX, math spans, digits and punctuation, keeping the words that carry language.

    Why: byte n-grams of ``\\frac{3}{4}`` or ``5 + 6 = 11`` are noise that pushes short
    responses towards arbitrary languages.
    """
    # NFC, not NFKC: langid was trained on NFC text and NFKC decomposes e.g. Thai SARA AM
    text = unicodedata.normalize("NFC", text)
    text = _MATH_SPANS.sub(" ", text)
    text = _LATEX_COMMAND.sub(" ", text)
    # Keep letters (L*) and combining marks (M*: Thai, Bengali, Telugu vowel signs are marks,
    # not \w), drop digits, punctuation and symbols.
    text = "".join(ch if unicodedata.category(ch)[0] in "LM" else " " for ch in text)
    return _SPACES.sub(" ", text).strip()


def count_letters(text: str) -> int:
    """Number of letters that count as language evidence (isolated Latin letters excluded)."""
    text = _ISOLATED_LATIN_LETTER.sub(" ", text)
    return len(_LETTER.findall(text))


@lru_cache(maxsize=1)
def _base_identifier():  # -> py3langid.langid.LanguageIdentifier
    """Load the bundled model once (about a second) with calibrated probabilities."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def supported_languages() -> list[str]:
    """Language codes the bundled py3langid model can output."""
    return list(_base_identifier().labels)


@lru_cache(maxsize=64)
def _identifier_for(candidates: frozenset[str] | None):
    """An identifier restricted to ``candidates`` (cached per set; the base model is shared).

    ``set_languages`` re-slices the probability tables into new arrays, so a shallow copy of the
    base identifier is enough and the full model is never mutated.
    """
    base = _base_identifier()
    if candidates is None:
        return base
    unknown = sorted(candidates - set(base.labels))
    if unknown:
        raise ValueError(
            f"language code(s) {', '.join(unknown)} not supported by py3langid; "
            f"choose from: {', '.join(sorted(base.labels))}"
        )
    restricted = copy.copy(base)
    restricted.set_languages(sorted(candidates))
    return restricted


def identify(text: str, candidates: Sequence[str] | None = None) -> tuple[str, float]:
    """Return ``(iso_639_1_code, probability)`` for ``text``, or ``("und", 0.0)``.

    ``candidates`` restricts the decision to those languages (the probability is then
    renormalised over them), which is more accurate on short texts when the set of plausible
    languages is known. Text with fewer than :data:`MIN_LETTERS` letters after removing math
    is undetermined.
    """
    cleaned = strip_math(text or "")
    if count_letters(cleaned) < MIN_LETTERS:
        return UNDETERMINED, 0.0
    key = None
    if candidates is not None:
        key = frozenset(c for c in candidates if c != UNDETERMINED)
        if not key:
            raise ValueError("candidates must name at least one language")
    with _IDENTIFIER_LOCK:  # the lru_cache fill is not atomic; identifiers themselves are read-only
        identifier = _identifier_for(key)
    folded: dict[str, float] = {}
    for label, prob in identifier.rank(cleaned):
        label = LABEL_ALIASES.get(label, label)
        folded[label] = folded.get(label, 0.0) + float(prob)
    best = max(folded, key=folded.__getitem__)
    if best == UNDETERMINED:
        return UNDETERMINED, 0.0
    return best, folded[best]


def is_off_target(response_lang: str, expected: str) -> bool:
    """True when a response was identified in a language other than the expected one.

    Undetermined responses (pure math, empty) are never off-target: there is no evidence the
    model switched language.
    """
    if response_lang == UNDETERMINED or not response_lang:
        return False
    expected = LABEL_ALIASES.get(expected, expected)
    return LABEL_ALIASES.get(response_lang, response_lang) != expected
