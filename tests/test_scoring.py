"""The ``score`` command on shared MGSM data and on malformed input."""

from __future__ import annotations

import io
import json
import random
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pandas as pd
import pytest

from parallel_scaling.evaluate import score as scoring
from parallel_scaling.evaluate.score import SCORE_FIELDS, SUMMARY_COLUMNS, ScoreInputError, per_language_summary, score_rows

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MGSM = DATA / "mgsm" / "mgsm_test.jsonl"

#: Native final-answer sentences, as in the MGSM exemplars ({} = the answer as written upstream).
NATIVE_ANSWER = {
    "en": "The answer is {}.",
    "de": "Die Antwort ist {}.",
    "fr": "La réponse est {}.",
    "es": "La respuesta es {}.",
    "ru": "Ответ — {}.",
    "zh": "答案是 {}。",
    "ja": "答えは{}です。",
    "th": "คำตอบคือ {}",
    "sw": "Jibu ni {}.",
    "bn": "উত্তর হল {}।",
    "te": "సమాధానం {}.",
}


def _mgsm() -> list[dict]:
    if not MGSM.is_file():
        pytest.skip(f"shared MGSM data not available at {MGSM}")
    return [json.loads(line) for line in MGSM.read_text(encoding="utf-8").splitlines()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = scoring.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_gold_as_response_scores_100_percent_in_every_language(tmp_path: Path) -> None:
    mgsm = _mgsm()
    # Question + native answer sentence; answer_raw keeps upstream thousands separators (2,125).
    rows = [
        {
            "id": r["id"],
            "response": r["question"] + "\n" + NATIVE_ANSWER[r["lang"]].format(r["answer_raw"]),
            "gold": r["answer_number"],
            "lang": r["lang"],
        }
        for r in mgsm
    ]
    inp, out = _write(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    code, stdout, _ = _run([str(inp), "--out", str(out)])
    assert code == 0
    summary = pd.read_csv(io.StringIO(stdout), keep_default_na=False)
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert sorted(summary["lang"]) == sorted([*NATIVE_ANSWER, "all"])
    assert (summary["accuracy"] == 1.0).all()
    assert (summary["no_answer"] == 0).all()
    assert summary.set_index("lang").loc["all", "n"] == len(mgsm)
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [s["id"] for s in scored] == [r["id"] for r in rows]  # order and extra fields kept
    assert all(s["method"] == "phrase" for s in scored)
    assert set(SCORE_FIELDS) <= set(scored[0])


def test_many_inputs_are_scored_into_one_file_in_order(tmp_path: Path) -> None:
    """The pipeline's shape: every benchmark x language file of a checkpoint -> one scored file."""
    de = [{"id": "d1", "response": "Die Antwort ist 3.", "gold": "3", "lang": "de", "benchmark": "b"},
          {"id": "d2", "response": "keine Ahnung", "gold": "4", "lang": "de", "benchmark": "b"}]
    fr = [{"id": "f1", "response": "La réponse est 5.", "gold": "5", "lang": "fr", "benchmark": "b"}]
    a, b, out = _write(tmp_path / "de.jsonl", de), _write(tmp_path / "fr.jsonl", fr), tmp_path / "s.jsonl"
    code, stdout, _ = _run([str(a), str(b), "--out", str(out)])
    assert code == 0
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in scored] == ["d1", "d2", "f1"]
    assert [r["correct"] for r in scored] == [True, False, True]
    summary = pd.read_csv(io.StringIO(stdout), keep_default_na=False).set_index("lang")
    assert summary.loc["de", "correct"] == 1 and summary.loc["fr", "n"] == 1 and summary.loc["all", "n"] == 3


def test_a_malformed_second_input_writes_no_output(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.jsonl", [{"id": "1", "response": "3", "gold": "3", "lang": "en"}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "2", "response": "3"\n', encoding="utf-8")
    out = tmp_path / "s.jsonl"
    code, _, err = _run([str(good), str(bad), "--out", str(out)])
    assert code == 2 and f"{bad}:1" in err
    assert not out.exists()


def test_shuffled_answers_score_at_the_chance_rate(tmp_path: Path) -> None:
    mgsm = _mgsm()
    rng = random.Random(2510_02272)
    rows, expected = [], {}
    for lang in NATIVE_ANSWER:
        items = sorted((r for r in mgsm if r["lang"] == lang), key=lambda r: r["index"])
        shuffled = [r["answer_number"] for r in items]
        rng.shuffle(shuffled)
        expected[lang] = sum(s == r["answer_number"] for s, r in zip(shuffled, items)) / len(items)
        rows += [
            {"output": f"#### {s}", "target": r["answer_number"], "language": lang}
            for s, r in zip(shuffled, items)
        ]
    inp = _write(tmp_path / "external.jsonl", rows)
    code, stdout, _ = _run(
        [str(inp), "--response-field", "output", "--gold-field", "target", "--lang-field", "language"]
    )
    assert code == 0
    summary = pd.read_csv(io.StringIO(stdout), keep_default_na=False).set_index("lang")
    for lang, rate in expected.items():
        assert summary.loc[lang, "accuracy"] == pytest.approx(rate, abs=5e-5)  # CSV has 4 decimals
    total = sum(expected.values()) * 250 / len(rows)
    assert summary.loc["all", "accuracy"] == pytest.approx(total, abs=5e-5)
    assert summary.loc["all", "correct"] == round(total * len(rows))


def test_score_rows_and_summary_counts() -> None:
    rows = [
        {"response": "The answer is 18.", "gold": "18", "lang": "en"},
        {"response": "", "gold": "18", "lang": "en"},
        {"response": None, "gold": 3, "lang": "en"},
        {"response": "I have no idea.", "gold": "5", "lang": "en"},
        {"response": "Jibu ni 7.", "gold": 7, "lang": "sw"},
        {"response": "Roger has 5 balls and buys 6 more. The answer is 11.", "gold": 11, "lang": "sw"},
        {"response": "The answer is (C).", "gold": "C", "lang": "sw", "answer_type": "choice"},
        {"response": "\\boxed{\\frac{1}{2}}", "gold": "0.5", "lang": "sw", "answer_type": "latex"},
    ]
    scored = score_rows(rows)
    assert [s["correct"] for s in scored] == [True, False, False, False, True, True, True, True]
    assert [s["reason"] for s in scored[1:4]] == ["empty response", "empty response", "no answer found"]
    # rows 5 and 6 answer a Swahili item in English: scored on the answer, flagged off-target
    assert [s["off_target"] for s in scored[4:]] == [False, True, True, False]
    summary = per_language_summary(scored).set_index("lang")
    assert summary.loc["en"].to_dict() == {"n": 4, "correct": 1, "accuracy": 0.25, "no_answer": 3, "off_target_rate": 0.0}
    assert summary.loc["sw"].to_dict() == {"n": 4, "correct": 4, "accuracy": 1.0, "no_answer": 0, "off_target_rate": 0.5}
    assert summary.loc["all", "n"] == 8 and summary.loc["all", "correct"] == 5


def test_difficulty_weighted_accuracy_beside_accuracy(tmp_path: Path) -> None:
    rows = [
        {"response": "The answer is 4.", "gold": "4", "lang": "en", "level": "low"},
        {"response": "The answer is 5.", "gold": "4", "lang": "en", "level": "low"},
        {"response": "\\boxed{9}", "gold": "9", "lang": "en", "level": "top"},
        {"response": "Jibu ni 2.", "gold": "3", "lang": "sw", "level": "top"},
        {"response": "Jibu ni 3.", "gold": "3", "lang": "sw", "level": "low"},
    ]
    inp = _write(tmp_path / "lv.jsonl", rows)
    code, stdout, _ = _run([str(inp), "--difficulty-weights", '{"low": 1, "top": 8}', "--difficulty-field", "level"])
    assert code == 0
    table = pd.read_csv(io.StringIO(stdout)).set_index("lang")
    assert list(table.columns) == ["n", "correct", "accuracy", "weighted_accuracy", "no_answer", "off_target_rate"]
    assert table.loc["en", "weighted_accuracy"] == pytest.approx((0.5 + 8 * 1) / 9, abs=1e-4)
    assert table.loc["sw", "weighted_accuracy"] == pytest.approx((1 + 8 * 0) / 9, abs=1e-4)
    assert table.loc["all", "weighted_accuracy"] == pytest.approx((2 / 3 + 8 * 0.5) / 9, abs=1e-4)
    code, stdout, _ = _run([str(inp)])
    assert code == 0 and stdout.splitlines()[0] == ",".join(SUMMARY_COLUMNS)  # unchanged without weights
    code, _, stderr = _run([str(inp), "--difficulty-weights", '{"low": 1, "top": 8}'])
    assert code == 2 and "5 rows have no field 'difficulty'" in stderr


def test_answer_type_option_overrides_rows(tmp_path: Path) -> None:
    inp = _write(tmp_path / "mc.jsonl", [{"response": "I pick (B).", "gold": "B", "lang": "en"}])
    code, stdout, _ = _run([str(inp), "--answer-type", "choice"])
    assert code == 0 and "en,1,1,1.0000,0,0.0000" in stdout


def test_empty_input_gives_header_only(tmp_path: Path) -> None:
    inp = tmp_path / "empty.jsonl"
    inp.write_text("\n", encoding="utf-8")
    code, stdout, _ = _run([str(inp)])
    assert code == 0 and stdout.strip() == ",".join(SUMMARY_COLUMNS)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ('{"response": "4", "gold": 4, "lang": "en"}\n{"response": "4", "gold": 4\n', 2, "invalid JSON"),
        ('{"response": "4", "gold": 4, "lang": "en"}\n\n{"response": "4", "lang": "en"}\n', 3, "missing field 'gold'"),
        ('["not", "an", "object"]\n', 1, "expected a JSON object"),
        ('{"response": "4", "gold": null, "lang": "en"}\n', 1, "field 'gold'"),
        ('{"response": 4, "gold": 4, "lang": "en"}\n', 1, "field 'response' must be a string"),
        ('{"response": "4", "gold": 4, "lang": "en", "answer_type": "essay"}\n', 1, "'essay'"),
    ],
)
def test_malformed_input_reports_file_and_line(tmp_path: Path, content: str, line: int, message: str) -> None:
    inp = tmp_path / "bad.jsonl"
    inp.write_text(content, encoding="utf-8")
    code, stdout, stderr = _run([str(inp)])
    assert code == 2 and stdout == ""
    assert f"{inp}:{line}: " in stderr and message in stderr


def test_missing_file_and_bad_candidates(tmp_path: Path) -> None:
    code, _, stderr = _run([str(tmp_path / "nope.jsonl")])
    assert code == 2 and "nope.jsonl: file not found" in stderr
    inp = _write(tmp_path / "ok.jsonl", [{"response": "4", "gold": 4, "lang": "en"}])
    code, _, stderr = _run([str(inp), "--lid-candidates", "en,xx"])
    assert code == 2 and "xx" in stderr


def test_score_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^<rows>:2: missing field 'lang'"):
        score_rows([{"response": "1", "gold": 1, "lang": "en"}, {"response": "1", "gold": 1}])
    assert issubclass(ScoreInputError, ValueError)


def test_rows_prompt_and_finish_reason_decide_unfinished(tmp_path: Path) -> None:
    """Rows carrying ``prompt`` and ``finish_reason`` (issue #36) are read with them; a bad value is named."""
    cut = "So 8 + 9 = 17, \\boxed{17}. Wait, let me re-check the carry, since"
    rows = [
        {"prompt": "What is 8 + 9?\n<think>\n", "response": cut, "gold": "17", "lang": "en", "finish_reason": "length"},
        {"prompt": "What is 8 + 9?", "response": "The sum is \\boxed{17}.", "gold": "17", "lang": "en", "finish_reason": "eos"},
        {"response": "The sum is \\boxed{17}.", "gold": "17", "lang": "en"},  # an older row: no new fields
    ]
    scored = score_rows(rows)
    assert [(r["final_part"], r["correct"]) for r in scored] == [("unclosed", False), ("absent", True), ("absent", True)]
    table = per_language_summary(scored).set_index("lang")
    assert table.loc["en", "unfinished"] == 1 and table.loc["en", "correct"] == 2
    with pytest.raises(ScoreInputError, match=r"rows.jsonl:3: field 'finish_reason' is 'stop'"):
        score_rows([*rows[:2], {**rows[2], "finish_reason": "stop"}], source="rows.jsonl")
