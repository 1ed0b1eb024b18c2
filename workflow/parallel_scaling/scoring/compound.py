"""Compound LaTeX answers: an answer of several named parts ("\\lambda=2\\sqrt{2}, A(\\pm 1, 0)").

Why a module of its own: math-verify reads such an answer as one unrelated expression, so the
extractor (:mod:`~parallel_scaling.scoring.answers`) joins the parts it finds and the grader
(:mod:`~parallel_scaling.scoring.grading`) compares them part by part; both split them here, one way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from parallel_scaling.scoring.numbers import normalize_text

_PART_SEPARATOR = re.compile(r"\\q?quad(?![A-Za-z])|\\text\s*\{\s*(?:and|und|et|y|e|и|和|且|及|,|;)?\s*\}|;|\s+and\s+")
# LaTeX spacing and sizing that never changes a value
_LATEX_SPACING = re.compile(r"\\[,;:!> ]|~|\\(?:left|right|big|Big|bigg|Bigg)(?![A-Za-z])|\\displaystyle(?![A-Za-z])")
# "x = ...", "\lambda = ...", "a_1 = ...", "f' = ..."
_EQUATION_LABEL = re.compile(r"((?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?'*)=(.+)", flags=re.DOTALL)
# a named point: "A(1, 0)", "P_1(2, -3)"
_POINT_LABEL = re.compile(r"([A-Z](?:_\{?[A-Za-z0-9]+\}?)?'*)(\(.*\))", flags=re.DOTALL)


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
