"""Scoring REAL reasoning-model outputs against our own human labels (issue #36).

Data: ``../shared/data/lrm_outputs/`` (its SOURCE.md): DeepSeek-R1-Distill-Qwen-7B/32B on MCLM's
translated MATH problems (158 rows, 20 languages; the chat template ends the prompt with
``<think>\\n``, so responses carry no opening marker) and Qwen3-1.7B/8B in thinking mode on MGSM (160
rows, en/bn/ja/sw; every response opens ``<think>`` and its ``</think>`` was lost in the authors'
decoding). The data stays in shared/ (the tests skip without it); the labels are ours,
``tests/fixtures/lrm_labels.yaml``, every item read by hand (its header says what each key means).

The rows carry no prompt and no ``finish_reason``, so each is scored as ``predict`` would have written
it: an R1-distill row gets the question followed by ``<think>\\n`` as its prompt (what the model's
chat template produces), a Qwen3 row no prompt (its template leaves the thinking to the model), and
no row a ``finish_reason`` (the text heuristics). The measurement is printed (``pytest -s``) and
recorded in docs/scoring.md.
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from helpers import REPO, SHARED
from parallel_scaling.scoring.answers import extract_answer
from parallel_scaling.scoring.grading import score_response
from parallel_scaling.scoring.thinking import UNFINISHED_STATES
from test_scoring import _run  # the score command in-process, its output captured

LABELS = yaml.safe_load((Path(__file__).parent / "fixtures" / "lrm_labels.yaml").read_text(encoding="utf-8"))
DATA = next(
    (d / "lrm_outputs" for d in (SHARED, REPO.parent.parent / "shared" / "data") if (d / "lrm_outputs").is_dir()),
    None,
)
pytestmark = pytest.mark.skipif(DATA is None, reason="../shared/data/lrm_outputs not present")

#: MCLM's language names -> the codes the scorer uses.
MCLM_LANGS = {
    "Arabic": "ar", "German": "de", "Greek": "el", "Hebrew": "he", "Hindi": "hi", "Indonesian": "id",
    "Polish": "pl", "Swahili": "sw", "Swedish": "sv", "Tagalog": "tl", "Thai": "th", "Bengali": "bn",
    "Catalan": "ca", "French": "fr", "Korean": "ko", "Portuguese": "pt", "Somali": "so", "Spanish": "es",
    "Ukrainian": "uk", "Vietnamese": "vi",
}
#: The issue's goal.
MIN_AGREEMENT = 0.995
MAX_ACCURACY_GAP = 0.01


def _key(item: dict[str, Any]) -> tuple[str, str, int]:
    return item["file"], item["source_file"], item.get("line", item.get("index_in_results"))


def _rows() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(label, prediction row as predict would have written it) for every labelled item."""
    found: dict[tuple[str, str, int], dict[str, Any]] = {}
    for line in (DATA / "mclm_r1_distill.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        found["mclm_r1_distill.jsonl", r["source_file"], r["line"]] = {
            "question": r["question"], "prompt": r["question"] + "\n<think>\n", "response": r["response"], "gold": r["answer"],
            "lang": MCLM_LANGS[r["language"]], "answer_type": "latex",
        }
    for line in (DATA / "mgsm_qwen3.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        found["mgsm_qwen3.jsonl", r["source_file"], r["index_in_results"]] = {
            "response": r["response"], "gold": r["gold"], "lang": r["language"], "answer_type": "number",
        }
    assert len(found) == len(LABELS) == 318
    return [(item, found[_key(item)]) for item in LABELS]


def _score(row: dict[str, Any], unfinished: str) -> dict[str, Any]:
    return score_response(
        row["response"], str(row["gold"]), row["lang"], row["answer_type"], unfinished=unfinished,
        prompt=row.get("prompt"), finish_reason=row.get("finish_reason"), question=row.get("question"),
    )


@pytest.fixture(scope="module")
def scored() -> dict[str, list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]]:
    rows = _rows()
    return {policy: [(item, row, _score(row, policy)) for item, row in rows] for policy in ("none", "thinking")}


def _human(item: dict[str, Any], policy: str) -> bool:
    """The human verdict as the setting reads: strict, or (``thinking``) what an unfinished thinking reached."""
    if policy == "thinking" and item["status"] == "unfinished":
        return bool(item["reached_correct"])
    return bool(item["correct"])


def _measure(triples, policy: str) -> tuple[float, dict[str, float], list[str]]:
    misses = [f"{item['file']}:{_key(item)[2]} {item['language']}" for item, _, r in triples if r["correct"] != _human(item, policy)]
    per_lang: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for item, row, r in triples:
        per_lang[row["lang"]].append((bool(r["correct"]), _human(item, policy)))
    gaps = {lang: (sum(c for c, _ in p) - sum(h for _, h in p)) / len(p) for lang, p in per_lang.items()}
    return 1 - len(misses) / len(triples), gaps, misses


def _report(name: str, agreement: float, gaps: dict[str, float], n: int) -> str:
    worst = max(gaps.items(), key=lambda kv: abs(kv[1]))
    text = (f"{name}: agreement {agreement:.1%} of {n} items, largest per-language gap "
            f"{100 * worst[1]:+.1f} points ({worst[0]}); " + ", ".join(f"{k} {100 * v:+.1f}" for k, v in sorted(gaps.items())))
    print(text)
    return text


def test_labels_are_well_formed() -> None:
    """Every item labelled once, 24 languages, consistent fields."""
    assert len({_key(it) for it in LABELS}) == len(LABELS) == 318
    assert len({it["language"] for it in LABELS}) >= 9
    for it in LABELS:
        assert it["status"] in ("finished", "unfinished"), _key(it)
        if it["status"] == "unfinished":
            assert it["answer"] is None and it["correct"] is False and "reached_correct" in it, _key(it)
        else:
            assert "reached" not in it and (it["answer"] is not None or it["correct"] is False), _key(it)


def test_default_counts_every_unfinished_response_as_unfinished(scored) -> None:
    """``unfinished_answer: none``: no labelled-unfinished response is read as an answer, right or wrong."""
    read_as_answer = [
        (_key(item), r["final_part"], r["extracted"]) for item, _, r in scored["none"]
        if item["status"] == "unfinished" and (r["final_part"] not in UNFINISHED_STATES or r["extracted"] is not None)
    ]
    assert not read_as_answer
    n = sum(item["status"] == "unfinished" for item in LABELS)
    print(f"unfinished (labelled) {n}: all counted unfinished under the default")


def test_default_agrees_with_the_human_verdicts(scored) -> None:
    agreement, gaps, misses = _measure(scored["none"], "none")
    _report("default (none)", agreement, gaps, len(scored["none"]))
    assert agreement >= MIN_AGREEMENT, misses
    assert all(abs(g) <= MAX_ACCURACY_GAP for g in gaps.values()), gaps


def test_lenient_agrees_with_the_human_reading(scored) -> None:
    """``unfinished_answer: thinking``: the issue's goal on all 318 items. A thinking cut in the middle of
    a re-check is read for the result it had stated (``method: stated``, scoring/reached.py), as the
    human reads it ("So, w = 6 - 5i. Wait, let me verify ..."), not for the last number of the check."""
    agreement, gaps, misses = _measure(scored["thinking"], "thinking")
    _report("lenient (thinking), all items", agreement, gaps, len(scored["thinking"]))
    cut = [t for t in scored["thinking"] if t[0]["kind"] == "cut_in_thinking"]
    _report("lenient (thinking), cut in the thinking", *_measure(cut, "thinking")[:2], len(cut))
    assert agreement >= MIN_AGREEMENT, misses
    assert all(abs(g) <= MAX_ACCURACY_GAP for g in gaps.values()), gaps


def test_the_stated_result_rule_acts_only_on_a_cut_thinking_read_leniently(scored) -> None:
    """The rule that reads a cut thinking's stated result needs a quantity the question asks for; scored
    with a question that names none, every row is the same except lenient rows whose thinking was cut
    (``unclosed``): finished answers, closed thinking and the default reading cannot move."""
    moved = []
    for policy, triples in scored.items():
        for item, row, r in triples:
            if row.get("question") is None:
                continue
            without = _score({**row, "question": "What is it?"}, policy)
            if (without["extracted"], without["correct"], without["final_part"]) != (r["extracted"], r["correct"], r["final_part"]):
                moved.append((policy, r["final_part"], r["method"], _key(item)))
    assert moved and all(p == "thinking" and fp == "unclosed" and m == "stated" for p, fp, m, _ in moved), moved
    print(f"the stated-result rule changed {len(moved)} rows, all lenient rows cut in their thinking")


def test_finished_answers_are_the_human_reading(scored) -> None:
    """The value read equals the committed answer of every finished, correct response."""
    for item, row, r in scored["none"]:
        if item["status"] == "finished" and item["correct"]:
            assert r["correct"] and r["final_part"] in ("present", "unmarked"), (_key(item), r["extracted"])


def test_score_command_unfinished_column_and_accuracy(scored, tmp_path: Path) -> None:
    """The ``score`` command on the rows as predict would have written them: its CSV's ``unfinished``
    column and per-language accuracy reflect the labels (default setting)."""
    src = tmp_path / "predictions.jsonl"
    src.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for _, row, _ in scored["none"]), encoding="utf-8")
    code, out, err = _run([str(src)])
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out)).set_index("lang")
    print(out)
    want: dict[str, int] = defaultdict(int)
    right: dict[str, list[bool]] = defaultdict(list)
    for item, row, _ in scored["none"]:
        want[row["lang"]] += item["status"] == "unfinished"
        right[row["lang"]].append(bool(item["correct"]))
    for lang, n in want.items():
        # two lost-marker responses that end without an answer phrase are counted unfinished too
        assert n <= table.loc[lang, "unfinished"] <= n + 2, lang
        assert abs(table.loc[lang, "accuracy"] - sum(right[lang]) / len(right[lang])) <= MAX_ACCURACY_GAP, lang
    assert table.loc["all", "unfinished"] == sum(want.values()) + 2


@pytest.mark.parametrize(
    ("index", "needle", "value"),
    [
        # real MGSM-ja answer sentences of Qwen3-1.7B with several numbers (index_in_results, a word of the line)
        (23, "1日に21個", "21"),    # "つまり、1日に21個の卵を売れます。": per 1 day -> 21 eggs
        (37, "60分は1時間", "1"),   # "60分は1時間です。": 60 minutes is 1 hour
        (37, "1分で6ピース", "6"),  # "1分で6ピースをはめます。": in 1 minute, 6 pieces
        (21, "15回の活動で45個", "45"),  # "15回の活動で45個のフランを作ることができます": 45 flans
    ],
)
def test_verb_final_answer_sentence_takes_the_committed_number(index: int, needle: str, value: str) -> None:
    """A ja answer sentence with several numbers commits to the one next to its predicate, read from
    real outputs: the line is taken from the shared file and put after an answer marker."""
    response = next(
        json.loads(line)["response"] for line in (DATA / "mgsm_qwen3.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["language"] == "ja" and json.loads(line)["index_in_results"] == index
    )
    sentence = next(line for line in response.splitlines() if needle in line)
    assert extract_answer(f"答え：{sentence.strip(' -')}", "number", "ja").value == value
