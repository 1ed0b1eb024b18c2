"""The CPU prediction engine: one loaded checkpoint answers several (benchmark, language) files."""

from __future__ import annotations

import json

from parallel_scaling.evaluate import predict
from parallel_scaling.common.jsonl import read_jsonl, write_jsonl
from parallel_scaling.train.build_init_model import build_model, save_tokenizer, train_tokenizer


def _tiny_model(path):
    tok = train_tokenizer(["Tom has 3 apples. 3 + 4 = 7 #### 7", "小明有3个苹果。"], vocab_size=300)
    model = build_model(tok, {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                              "intermediate_size": 64, "max_position": 128}, seed=0, attn_implementation="eager")
    model.save_pretrained(path)
    save_tokenizer(tok, path)


def test_predict_writes_one_file_per_benchmark_language_with_samples(tmp_path, capsys):
    _tiny_model(tmp_path / "m")
    write_jsonl(tmp_path / "en.jsonl", [{"id": "a", "question": "Tom has 3 apples.", "answer": "3", "difficulty": "low"},
                                        {"id": "b", "question": "Tom has 4 apples.", "answer": "4", "difficulty": "top"}])
    write_jsonl(tmp_path / "zh.jsonl", [{"id": "a", "question": "小明有3个苹果。", "answer": "3"}])
    settings = {"engine": "transformers", "device": "cpu", "temperature": 0.8, "top_p": 0.9, "n": 2,
                "max_new_tokens": 5, "batch_size": 2, "seed": 0}
    meta = {"model": "tiny", "paradigm": "init"}
    rc = predict.main(["--model", str(tmp_path / "m"), "--input", "b1", "en", str(tmp_path / "en.jsonl"),
                       "--input", "b1", "zh", str(tmp_path / "zh.jsonl"), "--meta", json.dumps(meta),
                       "--settings", json.dumps(settings), "--prompt-set", "plain", "--outdir", str(tmp_path / "out")])
    assert rc == 0
    en = read_jsonl(tmp_path / "out/b1/en.jsonl")
    zh = read_jsonl(tmp_path / "out/b1/zh.jsonl")
    assert [(r["id"], r["sample"]) for r in en] == [("a", 0), ("a", 1), ("b", 0), ("b", 1)]
    assert len(zh) == 2 and all(r["lang"] == "zh" and r["model"] == "tiny" and r["gold"] == "3" for r in zh)
    # an item's difficulty level travels with its predictions (the weighted accuracy needs it)
    assert [r["difficulty"] for r in en] == ["low", "low", "top", "top"] and all("difficulty" not in r for r in zh)
    assert all(isinstance(r["response"], str) and r["prompt"].endswith("\n") for r in en + zh)
    recorded = json.loads((tmp_path / "out/_settings.json").read_text())
    assert recorded["settings"] == settings and recorded["engine"] == "transformers"
    assert "3/3 prompts" in capsys.readouterr().err  # progress in the job's log


def test_length_sorted_batches_answer_each_prompt_as_alone(tmp_path):
    """Prompts are batched shortest first; every response still belongs to its own prompt and is
    the one that prompt gets when generated alone (greedy, so comparable token for token)."""
    _tiny_model(tmp_path / "m")
    prompts = ["Tom has 3 apples and 4 more apples.\n", "3\n", "小明有3个苹果。\n", "Tom has 4 apples.\n", "7 + 7\n"]
    settings = {"temperature": 0.0, "max_new_tokens": 6, "batch_size": 3, "seed": 0}
    batched = predict.generate_transformers(str(tmp_path / "m"), prompts, settings, "cpu")
    alone = [predict.generate_transformers(str(tmp_path / "m"), [p], settings, "cpu")[0] for p in prompts]
    assert batched == alone
    assert predict.by_length([[1, 2, 3], [1], [1, 2], [4]]) == [1, 3, 2, 0]  # ties keep input order
