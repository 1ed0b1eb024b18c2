"""The result a thinking had reached when generation cut it off (the lenient reading, issue #36).

Why a module of its own: under ``unfinished_answer: thinking`` a response cut by the length limit in
the middle of its thinking is read as if the thinking were its answer. The cascade on that thinking
(last ``\\boxed{}``, answer phrase, last number) reads whatever number the cut left last, and a
reasoning model cut while *re-checking* a result it already stated ("So, w = 6 - 5i. Wait, let me
verify by rotating the vector (√2, -3√2) ...") leaves a number of the check there. A human reader
credits the result the thinking had stated. This module finds that statement: the quantity the
question asks for (:func:`asked_quantity`: ``$w$`` in "Find $w.$", ``$x + y$`` in "What is the value
of $x + y$?", in any language, since it is read from the math, not the words) equated with a closed
value (:func:`stated_result`: ``w = 6 - 5i``, ``x + y = 8 + 9 = 17``).

:func:`~parallel_scaling.scoring.answers.extract_answer` uses it only for a thinking cut before its
end (``final_part: unclosed``) read with ``unfinished: thinking``, after a ``\\boxed{}`` and before the
answer phrases and the last number; chat answers, finished responses and the default reading never
come here. The value it returns is graded like a boxed one (math-verify).
"""

from __future__ import annotations

import re

from parallel_scaling.scoring.numbers import normalize_text

# $$...$$, $...$, \(...\), \[...\]
_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$]+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", flags=re.DOTALL)
_ASY = re.compile(r"\[asy\].*?\[/asy\]", flags=re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"<think(?:ing)?>|◁think▷", flags=re.IGNORECASE)
# a sentence ends at a full stop / question mark of any script followed by a space, or a line's end
_SENTENCE_END = re.compile(r"[.?!。？！؟।॥።۔](?=\s|$)|\n")
# a relation makes a span a condition ("$x > 7$", "$2^n = 64$"), not the quantity asked for
_RELATION = re.compile(r"[=<>≤≥≠≈∈]|\\(?:le|ge|leq|geq|neq|ne|lt|gt|in|approx|equiv|sim|mid|boxed)(?![A-Za-z])")
_COMMAND = re.compile(r"\\[A-Za-z]+")
#: LaTeX commands a closed value may hold: numbers, roots, fractions, pi, degrees, products, spacing.
_VALUE_COMMANDS = frozenset(
    {"sqrt", "frac", "dfrac", "tfrac", "pi", "cdot", "times", "div", "left", "right", "circ", "pm", "mp", "infty"}
)
_MAX_ASKED_CHARS = 30
#: Greek letters as models write them in text, and as questions write them in LaTeX ("θ = 2π")
_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "θ": "theta", "λ": "lambda", "μ": "mu",
    "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau", "φ": "phi", "ω": "omega",
}
_GREEK_LETTER = re.compile("|".join(_GREEK))
# a quantity named by one Greek letter: "$\theta$" (pi is a number)
_GREEK_QUANTITY = re.compile(r"\\(?:" + "|".join(v for v in _GREEK.values() if v != "pi") + r")")


def _latex(text: str) -> str:
    """Normalised text with Greek letters spelled as LaTeX commands, one spelling to match."""
    return _GREEK_LETTER.sub(lambda m: f"\\{_GREEK[m.group(0)]} ", normalize_text(text))


def _span_text(m: re.Match[str]) -> str:
    return next(g for g in m.groups() if g is not None)


def asked_quantity(question: str | None) -> str | None:
    """The quantity the question asks for, as it writes it in math: the one math span of its asking
    sentence (the last sentence that holds math), when that span is a quantity, not a condition.

    "... Finde $w.$" -> ``w``; "$x > 7$ है। $x + y$ का मान क्या है?" -> ``x + y``. None when the asking
    sentence holds no math, several spans ("Find $n$ such that $2^n = 64$"), a relation, no
    letter ("What is $2^{10}$ modulo 7?") or a word (dollar signs of prices read as math): the rule
    then does not apply. Of a rendered prompt only the text before its last opening thinking marker
    is read; ``[asy]`` figures are skipped.
    """
    if not question:
        return None
    pieces = _OPEN_THINK.split(str(question))  # a rendered prompt: the text before its last <think>
    text = _ASY.sub(" ", _latex("".join(pieces[:-1]) if len(pieces) > 1 else pieces[0]))
    spans = list(_MATH.finditer(text))
    if not spans:
        return None
    # mask the math so a period inside "$w.$" or "$3.5$" ends no sentence
    masked = _MATH.sub(lambda m: "\0" * len(m.group(0)), text)
    end = spans[-1].end()
    ends = [m.start() for m in _SENTENCE_END.finditer(masked) if m.start() < spans[-1].start()]
    start = ends[-1] if ends else 0
    in_sentence = [m for m in spans if m.start() >= start and m.end() <= end]
    if len(in_sentence) != 1:
        return None
    asked = _span_text(in_sentence[0]).strip().rstrip(".,;:?!。").strip()
    if not asked or len(asked) > _MAX_ASKED_CHARS or _RELATION.search(asked):
        return None
    # math, not words: variables and names of points ("x + y", "DE", "\\tan A", "\\theta"), not "$2 per egg and $"
    letters = _COMMAND.sub(" ", asked)
    named = re.search(r"[A-Za-z]", letters) or _GREEK_QUANTITY.fullmatch(asked)
    return asked if named and not re.search(r"[a-z]{2,}", letters) else None


# where a stated value ends: a math span's end, a line's end, a sentence's end, a clause
_VALUE_END = re.compile(r"\\\)|\\\]|\$|\n|[;；，,。](?=\s|$)|\.(?!\d)|[?!](?=\s|$)")
# a word (two letters or more, not a LaTeX command) or a non-Latin letter ends the value: "6 - 5i which"
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}|[^\W\d_A-Za-z]")
_OPERATOR_BEFORE = re.compile(r"[+\-*/^=<>·×÷|]\s*$|[A-Za-z0-9_\\'.)}\]|]$")
_INCOMPLETE_END = re.compile(r"(?:[+\-*/^=·×÷({\[_]|\\)\s*$")


def _closed(value: str) -> bool:
    """Is ``value`` a result, not a formula: a digit, no letter but the imaginary unit ``i`` outside
    the LaTeX of numbers (roots, fractions, pi), balanced brackets, nothing left open at its end."""
    if not re.search(r"\d", value) or _INCOMPLETE_END.search(value):
        return False
    if any(value.count(a) != value.count(b) for a, b in ("()", "{}", "[]")):
        return False
    if any(c.group(0)[1:] not in _VALUE_COMMANDS for c in _COMMAND.finditer(value)):
        return False
    return set(re.findall(r"[A-Za-z]", _COMMAND.sub(" ", value))) <= {"i"}


def stated_result(thinking: str, asked: str | None) -> str | None:
    """The value of the last complete statement in ``thinking`` that equates the asked quantity with a
    closed value: "So, w = 6 - 5i." -> ``6 - 5i``; "x + y = 8 + 9 = 17" -> ``17`` (a calculation gives
    its last value). A statement the cut itself ends ("w = 6 - 5", nothing after it) is incomplete
    and skipped; so are formulas ("w = (z - c)e^{i\\pi/4} + c") and a quantity that is part of
    another term ("2w = ...", "z - w = ...", "|w| = ..."). None without such a statement."""
    if not asked or not thinking:
        return None
    text = _latex(thinking)
    # "\tan A" -> "\tan", "A"; a command may be written without its backslash in text ("tan A = 3/4")
    tokens = [rf"\\?{t[1:]}" if t.startswith("\\") else re.escape(t) for t in re.findall(r"\\[A-Za-z]+|\S", asked)]
    pattern = re.compile(r"\s*".join(tokens) + r"\s*=(?!=)")
    found = None
    for m in pattern.finditer(text):
        if _OPERATOR_BEFORE.search(text[max(0, m.start() - 3): m.start()]):
            continue
        stop = _VALUE_END.search(text, m.end())
        if stop is None:
            continue  # the cut ends the statement: it may be incomplete
        value = text[m.end(): stop.start()]
        word = _WORD.search(value)
        value = (value[: word.start()] if word else value).rsplit("=", 1)[-1].strip()
        if _closed(value):
            found = _ROOT.sub(r"\\sqrt{\1}", value)
    return found


# "√51", "3√2": the root sign as a LaTeX root, so math-verify reads the value
_ROOT = re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z])")
