"""Benchmarks defined in config (no code change for a new one) and prompts from data files."""

from __future__ import annotations

import json

import pytest

from helpers import SHARED
from parallel_scaling.data import benchmark as benchmarks
from parallel_scaling.common import prompts
from parallel_scaling.dataio.jsonl import DataError

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


def test_the_forced_prefix_control_pins_every_language_the_native_set_asks_in():
    """boxed_native_forced is boxed_native plus a forced prefix in the question's language, for each of
    its languages (a language without one would fall out of the prompt-hacking control silently)."""
    import yaml

    sets = yaml.safe_load((prompts.PROMPTS_FILE).read_text(encoding="utf-8"))
    native, forced = sets["boxed_native"], sets["boxed_native_forced"]
    assert forced["user"] == native["user"]
    assert set(forced["assistant_prefix"]) == set(native["user"]) - {"default"}
    for lang in forced["assistant_prefix"]:
        text = prompts.build_prompt("2+2?", lang, "boxed_native_forced")
        assert text == prompts.build_prompt("2+2?", lang, "boxed_native") + forced["assistant_prefix"][lang]


def test_chat_template_is_applied_when_the_tokenizer_has_one():
    from parallel_scaling.train.build_init_model import train_tokenizer

    tok = train_tokenizer(["2+2? 4", "三たす四は七"], vocab_size=300)
    tok.chat_template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
                         "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    text = prompts.build_prompt("2+2?", "ja", "boxed_native_forced", tok)
    assert text.startswith("<|user|>2+2?") and text.endswith("<|assistant|>はい、段階的に考えてみます。")
    assert prompts.build_prompt("2+2?", "ja", "plain", tok) == "2+2?\n"  # plain sets never use it


# --------------------------------------------------------------------------- benchmarks in the formats users bring


def _json_arrays(tmp_path, per_lang: dict[str, list[dict]]) -> str:
    """One pretty-printed JSON array per language, as MMATH publishes them (<lang>.json)."""
    for lang, rows in per_lang.items():
        (tmp_path / f"{lang}.json").write_text(json.dumps(rows, ensure_ascii=False, indent=4), encoding="utf-8")
    return str(tmp_path / "{lang}.json")


def _items(lang: str) -> list[dict]:
    word = {"en": "What is", "sw": "Ni ngapi"}[lang]
    return [
        {"question": f"{word} {i} + {i}?", "answer": f"${2 * i}$", "data_source": src, "gid": i, "level": lvl}
        for i, (src, lvl) in enumerate([("olympiad", 3), ("textbook", 1), ("olympiad", 2), ("quiz", 1), ("textbook", 3)])
    ]


def test_json_array_per_language_through_config_alone(tmp_path):
    path = _json_arrays(tmp_path, {"en": _items("en"), "sw": _items("sw")})
    spec = {"preset": "mmath", "path": path}  # the preset's format: json
    s = benchmarks.resolve("mm", spec)
    rows = benchmarks.load_language("mm", s, "sw")
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert rows[2] == {"id": "2", "lang": "sw", "question": "Ni ngapi 2 + 2?", "answer": "$4$", "answer_type": "latex"}
    auto = benchmarks.resolve("mm", {**spec, "format": "auto"})  # .json holding an array is recognised
    assert benchmarks.load_language("mm", auto, "en") == [{**r, "lang": "en", "question": r["question"].replace(
        "Ni ngapi", "What is")} for r in rows]


@pytest.mark.parametrize(("wanted", "ids"), [
    ({"data_source": "olympiad"}, ["0", "2"]),
    ({"data_source": ["quiz", "textbook"]}, ["1", "3", "4"]),
    ({"level": 3}, ["0", "4"]),  # numbers compare as text: 3 == 3 == "3"
    ({"data_source": "olympiad", "level": [1, 2]}, ["2"]),  # every field must match
])
def test_row_filter_keeps_a_subset(tmp_path, wanted, ids):
    path = _json_arrays(tmp_path, {"en": _items("en")})
    s = benchmarks.resolve("mm", {"preset": "mmath", "path": path, "filter": wanted})
    assert [r["id"] for r in benchmarks.load_language("mm", s, "en")] == ids


def test_row_filter_errors_name_the_key_and_what_the_file_holds(tmp_path):
    path = _json_arrays(tmp_path, {"en": _items("en")})
    nothing = benchmarks.resolve("mm", {"preset": "mmath", "path": path, "filter": {"data_source": "Olympiad"}})
    with pytest.raises(DataError, match=r"benchmarks\.mm\.filter keeps no row: data_source in \['Olympiad'\] "
                                        r"\(present: olympiad, quiz, textbook\)"):
        benchmarks.load_language("mm", nothing, "en")
    typo = benchmarks.resolve("mm", {"preset": "mmath", "path": path, "filter": {"source": "quiz"}})
    with pytest.raises(DataError, match=r"en\.json:item 0: benchmark 'mm' row has no field 'source' "
                                        r"\(benchmarks\.mm\.filter; 5 of 5 rows lack it\)"):
        benchmarks.load_language("mm", typo, "en")
    for bad in ({}, {"level": []}, {"level": {"min": 1}}, ["level"]):
        with pytest.raises(ValueError, match=r"benchmarks\.mm\.filter"):
            benchmarks.resolve("mm", {"preset": "mmath", "filter": bad})


def test_difficulty_field_and_weights(tmp_path):
    path = _json_arrays(tmp_path, {"en": _items("en")})
    spec = {"preset": "mmath", "path": path, "difficulty_field": "level", "difficulty_weights": {1: 1, 2: 3, 3: 9}}
    rows = benchmarks.load_language("mm", benchmarks.resolve("mm", spec), "en")
    assert [r["difficulty"] for r in rows] == ["3", "1", "2", "1", "3"]
    assert benchmarks.difficulty_weights("mm", spec) == {"1": 1.0, "2": 3.0, "3": 9.0}
    partial = benchmarks.resolve("mm", {**spec, "difficulty_weights": {1: 1, 3: 9}})
    with pytest.raises(DataError, match=r"en\.json:item 2: .* level '2', which benchmarks\.mm\.difficulty_weights "
                                        r"does not weigh \(weighted: 1, 3\)"):
        benchmarks.load_language("mm", partial, "en")
    with pytest.raises(ValueError, match=r"benchmarks\.mm\.difficulty_weights: needs difficulty_field"):
        benchmarks.resolve("mm", {"preset": "mmath", "difficulty_weights": {"easy": 1}})
    with pytest.raises(ValueError, match=r"benchmarks\.mm\.difficulty_weights: weights must be positive"):
        benchmarks.resolve("mm", {**spec, "difficulty_weights": {1: 0, 2: 1}})
    plain = benchmarks.load_language("mm", benchmarks.resolve("mm", {"preset": "mmath", "path": path}), "en")
    assert all("difficulty" not in r for r in plain)  # rows are unchanged without a difficulty field


def test_hub_splits_as_difficulty_levels_and_lang_in_data_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for lang, word in (("en", "What is"), ("de", "Was ist")):
        (tmp_path / lang).mkdir()
        for split, n in (("easy", 3), ("hard", 2)):
            rows = [{"q": f"{word} {split} {i}?", "a": str(i)} for i in range(n)]
            (tmp_path / lang / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = {"kind": "huggingface", "hf_name": "json", "hf_split": ["easy", "hard"],
            "hf_data_files": {"easy": str(tmp_path / "{lang}" / "easy.jsonl"), "hard": str(tmp_path / "{lang}" / "hard.jsonl")},
            "question_field": "q", "answer_field": "a", "difficulty_field": "_split",
            "difficulty_weights": {"easy": 1, "hard": 4}}
    rows = benchmarks.load_language("lv", benchmarks.resolve("lv", spec), "de")
    assert [(r["question"], r["difficulty"]) for r in rows] == [
        ("Was ist easy 0?", "easy"), ("Was ist easy 1?", "easy"), ("Was ist easy 2?", "easy"),
        ("Was ist hard 0?", "hard"), ("Was ist hard 1?", "hard")]
    hard = benchmarks.resolve("lv", {**spec, "filter": {"_split": "hard"}})
    assert [r["question"] for r in benchmarks.load_language("lv", hard, "en")] == ["What is hard 0?", "What is hard 1?"]


def test_polymath_preset_weighs_its_four_levels():
    s = benchmarks.resolve("polymath", {"preset": "polymath"})
    assert s["hf_split"] == ["low", "medium", "high", "top"] and s["difficulty_field"] == "_split"
    assert benchmarks.difficulty_weights("polymath", s) == {"low": 1.0, "medium": 2.0, "high": 4.0, "top": 8.0}
    one_level = benchmarks.resolve("pm_top", {"preset": "polymath", "filter": {"_split": "top"}})
    assert benchmarks.filter_values("pm_top", one_level["filter"]) == {"_split": {"top"}}
