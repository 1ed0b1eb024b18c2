"""translate: identity, template, import and LLM (transformers on CPU) backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parallel_scaling.data import source as sources
from parallel_scaling.data import translate
from parallel_scaling.dataio.jsonl import read_jsonl
from study_substitutes import build_tiny_hf_model

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MGSM8K = DATA / "mgsm8kinstruct_questions"

SOURCE_ROWS = [
    {"id": "p-0", "question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "7",
     "solution": "3 + 4 = 7"},
    {"id": "p-1", "question": "A box holds 12 pens. How many pens are in 5 boxes?", "answer": "60", "solution": None},
    {"id": "p-2", "question": "Anna reads 10 pages a day for 6 days. How many pages?", "answer": "60",
     "solution": None},
]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_english_is_identity(tmp_path):
    src = _write_jsonl(tmp_path / "src.jsonl", SOURCE_ROWS)
    out = tmp_path / "en.jsonl"
    assert translate.main(["--source", str(src), "--lang", "en", "--out", str(out),
                           "--settings", json.dumps({"backend": "import"})]) == 0
    rows = read_jsonl(out)
    assert [r["lang"] for r in rows] == ["en"] * 3
    assert [(r["id"], r["question"], r["answer"], r["solution"]) for r in rows] == [
        (s["id"], s["question"], s["answer"], s["solution"]) for s in SOURCE_ROWS]
    assert json.loads((tmp_path / "en.meta.json").read_text())["backend"] == "identity"


def test_template_backend_uses_synth_render(tmp_path):
    from parallel_scaling.data import synth

    settings = {"synthetic": {"seed": 5, "min_number": 2, "max_number": 20, "max_factor": 9,
                              "templates": ["add", "sub", "mul", "addsub"], "n_train": 12, "n_test": 3}}
    src_rows = synth.generate_split(settings, "train")
    src = _write_jsonl(tmp_path / "src.jsonl", src_rows)
    out = tmp_path / "zh.jsonl"
    assert translate.main(["--source", str(src), "--lang", "zh", "--out", str(out),
                           "--settings", '{"backend": "template"}']) == 0
    rows = read_jsonl(out)
    for row, source in zip(rows, src_rows, strict=True):
        rendered = synth.render(source["spec"], "zh")
        assert row == {"id": source["id"], "lang": "zh", "question": rendered["question"],
                       "answer": source["answer"], "solution": rendered["solution"],
                       "source_question": source["question"]}


def test_template_backend_requires_spec(tmp_path, capsys):
    src = _write_jsonl(tmp_path / "src.jsonl", SOURCE_ROWS)
    assert translate.main(["--source", str(src), "--lang", "de", "--out", str(tmp_path / "de.jsonl"),
                           "--settings", '{"backend": "template"}']) == 2
    assert "needs field 'spec', missing in 3 of 3 rows" in capsys.readouterr().err


def test_import_backend_joins_by_id_and_counts(tmp_path, capsys):
    src = _write_jsonl(tmp_path / "src.jsonl", SOURCE_ROWS)
    _write_jsonl(tmp_path / "tr_de.jsonl", [
        {"idx": 0, "text": "Tom hat 3 Äpfel und kauft 4 weitere. Wie viele Äpfel hat er?"},
        {"idx": 2, "text": "Anna liest 6 Tage lang 10 Seiten am Tag. Wie viele Seiten?"},
        {"idx": 9, "text": "Unbekannt."},
    ])
    settings = {"backend": "import", "import": {"path": str(tmp_path / "tr_{lang}.jsonl"), "id_field": "idx",
                                                "id_template": "p-{}", "question_field": "text"}}
    out = tmp_path / "de.jsonl"
    assert translate.main(["--source", str(src), "--lang", "de", "--out", str(out),
                           "--settings", json.dumps(settings)]) == 0
    err = capsys.readouterr().err
    assert "1 of 3 translation rows have ids not in" in err and "2 of 3 source items have a translation" in err
    rows = read_jsonl(out)
    assert [(r["id"], r["answer"], r["lang"]) for r in rows] == [("p-0", "7", "de"), ("p-2", "60", "de")]
    assert rows[0]["source_question"] == SOURCE_ROWS[0]["question"]
    meta = json.loads((tmp_path / "de.meta.json").read_text())
    assert (meta["n_missing"], meta["n_unknown_ids"]) == (1, 1)

    wrong = {**settings, "import": {**settings["import"], "id_template": "q-{}"}}
    assert translate.main(["--source", str(src), "--lang", "de", "--out", str(out),
                           "--settings", json.dumps(wrong)]) == 2
    assert "none of the 3 translation ids matches a source id" in capsys.readouterr().err


@pytest.mark.skipif(not MGSM8K.exists(), reason="shared MGSM8KInstruct data not present")
def test_import_real_mgsm8kinstruct(tmp_path):
    source = sources.load_split({"kind": "file", "train": str(DATA / "gsm8k" / "train.jsonl"), "test_fraction": 0.0,
                                 "id_prefix": "gsm8k-{split}", "limit": 200}, "train")
    settings = {"backend": "import", "import": {"path": str(MGSM8K / "train_{lang}.jsonl"),
                                                "id_field": "gsm8k_train_index", "id_template": "gsm8k-train-{}"}}
    rows, meta = translate.translate(source, "zh", settings)
    assert meta["n_file"] == 7363 and meta["n_unknown_ids"] == 7363 - len(rows)
    assert len(rows) + meta["n_missing"] == 200
    assert rows[0]["id"] == "gsm8k-train-0" and rows[0]["answer"] == "72" and "娜塔莉" in rows[0]["question"]


# --------------------------------------------------------------------------------------------------
# LLM backends with a tiny random model built here (quality irrelevant: the real path must run)

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    corpus = [r["question"] for r in SOURCE_ROWS] * 20 + ["Translate the following math word problem into German."]
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny-model"), corpus)


def test_transformers_backend_generates_rows(tmp_path, tiny_model):
    src = _write_jsonl(tmp_path / "src.jsonl", SOURCE_ROWS)
    settings = {"backend": "transformers", "fields": ["question", "solution"],
                "model": {"path": str(tiny_model), "batch_size": 2, "max_new_tokens": 6, "temperature": 0.7,
                          "top_p": 0.9, "seed": 1, "device": "cpu"}}
    out = tmp_path / "de.jsonl"
    assert translate.main(["--source", str(src), "--lang", "de", "--out", str(out),
                           "--settings", json.dumps(settings)]) == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["p-0", "p-1", "p-2"]
    assert all(r["lang"] == "de" and isinstance(r["question"], str) for r in rows)
    assert any(r["question"] for r in rows)  # random weights still emit some text
    assert rows[0]["solution"] is not None and rows[1]["solution"] is None  # only existing solutions translated
    meta = json.loads((tmp_path / "de.meta.json").read_text())
    assert meta["backend"] == "transformers" and meta["chat_template"] is True
    assert "German" in meta["prompt_template"]["user"] and meta["sampling"]["temperature"] == 0.7
    # same seed, same settings -> same text
    again = tmp_path / "again.jsonl"
    assert translate.main(["--source", str(src), "--lang", "de", "--out", str(again),
                           "--settings", json.dumps(settings)]) == 0
    assert again.read_bytes() == out.read_bytes()


def test_prompt_rendering_with_and_without_chat_template(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompts = translate.load_prompts(None)
    templates = translate.prompt_templates(prompts, "zh")
    messages = translate.build_messages(templates, "Tom has {3} apples.", "math word problem")
    assert messages[0]["role"] == "system" and "Simplified Chinese" in messages[1]["content"]
    assert "Tom has {3} apples." in messages[1]["content"]
    chat = translate.render_prompt(tokenizer, messages)
    assert chat.startswith("<|im_start|>system\n") and chat.endswith("<|im_start|>assistant\n")
    tokenizer.chat_template = None
    plain = translate.render_prompt(tokenizer, messages)
    assert plain == messages[0]["content"] + "\n\n" + messages[1]["content"] + "\n\n"
    assert translate.clean_output("<think>hmm</think>\n Hallo ") == "Hallo"
    assert translate.clean_output("<think>unfinished") == ""
    with pytest.raises(translate.TranslationError, match="no language name for 'xx'"):
        translate.prompt_templates(prompts, "xx")


def test_vllm_engine_construction(tiny_model, monkeypatch):
    """Constructed, the engine has its tokenizer and arguments; vLLM itself starts at the first
    generate, after the prompts were checked (tests/test_vllm_cpu.py runs it)."""
    pytest.importorskip("vllm", reason="vllm is not installed (GPU-only dependency)")
    monkeypatch.setenv("PARALLEL_SCALING_VLLM_CPU", "1")  # the tests' switch: vLLM without a GPU
    engine = translate.make_engine("vllm", {"model": {"path": str(tiny_model), "max_new_tokens": 4},
                                            "vllm": {"gpu_memory_utilization": 0.2}})
    assert engine.tokenizer is not None and engine.sampling_kwargs["max_tokens"] == 4 and engine.llm is None
