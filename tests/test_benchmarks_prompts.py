"""Benchmarks defined in config (no code change for a new one) and prompts from data files."""

from __future__ import annotations

import json

import pytest

from helpers import SHARED
from parallel_scaling import benchmarks, prompts
from parallel_scaling.jsonl import DataError

MGSM = SHARED / "mgsm"


@pytest.mark.skipif(not MGSM.exists(), reason="shared MGSM data not present")
def test_mgsm_preset_one_file_with_a_language_field():
    s = benchmarks.resolve("mgsm", {"preset": "mgsm", "path": str(MGSM / "mgsm_test.jsonl")})
    rows = benchmarks.load_language("mgsm", s, "th")
    assert len(rows) == 250 and {r["lang"] for r in rows} == {"th"}
    assert all(r["answer_type"] == "number" and r["answer"].lstrip("-").replace(".", "").isdigit() for r in rows)


@pytest.mark.skipif(not MGSM.exists(), reason="shared MGSM data not present")
def test_generic_benchmark_per_language_tsv_without_header():
    spec = {"kind": "file", "path": str(MGSM / "mgsm_{lang}.tsv"), "format": "tsv",
            "columns": ["question", "answer"], "question_field": "question", "answer_field": "answer",
            "answer_type": "number", "limit": 10}
    rows = benchmarks.load_language("mine", benchmarks.resolve("mine", spec), "ja")
    assert len(rows) == 10 and rows[0]["id"] == "mine-0"


def test_missing_field_is_reported_with_file_and_line(tmp_path):
    f = tmp_path / "b.jsonl"
    f.write_text(json.dumps({"q": "1+1?", "a": "2"}) + "\n" + json.dumps({"q": "2+2?"}) + "\n")
    spec = {"kind": "file", "path": str(f), "question_field": "q", "answer_field": "a"}
    with pytest.raises(DataError, match=r"b.jsonl:2: .* no field 'a'"):
        benchmarks.load_language("b", benchmarks.resolve("b", spec), "en")


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match="unknown preset 'nope'.*mgsm"):
        benchmarks.resolve("x", {"preset": "nope"})


def test_prompt_templates_per_language_and_forced_prefix():
    assert prompts.build_prompt("2+2?", "sw", "plain") == "2+2?\n"
    zh = prompts.build_prompt("2+2?", "zh", "boxed_native")
    assert zh.startswith("2+2?\n") and "中文" in zh and "\\boxed{}" in zh
    forced = prompts.build_prompt("2+2?", "ja", "boxed_native_forced")
    assert forced.endswith("はい、段階的に考えてみます。")
    assert prompts.missing_languages("boxed_native", ["en", "xx"]) == ["xx"]
    with pytest.raises(ValueError, match="prompt set 'nope' not found"):
        prompts.build_prompt("q", "en", "nope")


def test_chat_template_is_applied_when_the_tokenizer_has_one():
    from parallel_scaling.tiny_model import train_tokenizer

    tok = train_tokenizer(["2+2? 4", "三たす四は七"], vocab_size=300)
    tok.chat_template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    text = prompts.build_prompt("2+2?", "ja", "boxed_native_forced", tok)
    assert text.startswith("<|user|>2+2?") and text.endswith("<|assistant|>はい、段階的に考えてみます。")
    assert prompts.build_prompt("2+2?", "ja", "plain", tok) == "2+2?\n"  # plain sets never use it
