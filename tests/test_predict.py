"""The CPU prediction engine: one loaded checkpoint answers several (benchmark, language) files."""

from __future__ import annotations

import json
import re

from helpers import REPO, kill_tree, wait_until
from parallel_scaling.evaluate import predict
from parallel_scaling.dataio.jsonl import read_jsonl, write_jsonl
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
    err = capsys.readouterr().err
    assert "3/3 prompts" in err  # progress in the job's log
    # every row says how its response ended and what it cost
    assert all((r["finish_reason"], r["completion_tokens"]) == ("length", 5) or
               (r["finish_reason"] == "eos" and 1 <= r["completion_tokens"] <= 5) for r in en + zh), en + zh
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert all(r["prompt_tokens"] == len(tok(r["prompt"])["input_ids"]) for r in en + zh)
    lengths = [r["completion_tokens"] for r in en + zh]
    cut = {lg: sum(r["finish_reason"] == "length" for r in rows) / len(rows) for lg, rows in (("en", en), ("zh", zh))}
    # the summary beside the predictions, and in the log: per (benchmark, language) and in all
    summary = json.loads((tmp_path / "out/_summary.json").read_text())
    assert summary["completion_tokens"] == sum(lengths) and summary["responses"] == 6
    assert summary["prompt_tokens"] == sum(r["prompt_tokens"] for r in en + zh)
    assert [(f["benchmark"], f["lang"], f["responses"], f["cut_by_length"]) for f in summary["files"]] == [
        ("b1", "en", 4, cut["en"]), ("b1", "zh", 2, cut["zh"])]
    assert summary["files"][0]["completion_length"]["max"] == max(lengths[:4])
    run = summary["this_run"]
    assert run["prompts"] == 3 and run["completion_tokens"] == sum(lengths) and run["tokens_per_s"] > 0
    assert f"[summary] b1/zh: 2 responses, {100 * cut['zh']:.1f}% cut at max_new_tokens (5)" in err
    assert re.search(rf"\[summary\] this run: 3 prompts, {sum(lengths)} completion tokens in [\d.]+ s of generation: [\d.]+ tokens/s",
                     err), err


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


def _predict_args(tmp_path, outdir, settings):
    return ["--model", str(tmp_path / "m"), "--input", "b1", "en", str(tmp_path / "en.jsonl"),
            "--meta", json.dumps({"model": "tiny"}), "--settings", json.dumps(settings), "--prompt-set", "plain",
            "--outdir", str(outdir)]


def test_killed_prediction_resumes_with_the_output_of_an_uninterrupted_run(tmp_path, capsys):
    """A prediction job (the real CLI, in its own process) is SIGKILLed after it saved some batches;
    run again, it generates only the missing prompts and writes the very files of an uninterrupted
    run, sampled responses included (each batch has its own seed). A journal of other settings is
    set aside, never mixed in."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    _tiny_model(tmp_path / "m")
    write_jsonl(tmp_path / "en.jsonl", [{"id": str(i), "question": f"Tom has {i} apples and {i % 7} more.",
                                         "answer": str(i)} for i in range(60)])
    settings = {"engine": "transformers", "device": "cpu", "temperature": 0.8, "top_p": 0.9, "top_k": 0, "n": 2,
                "max_new_tokens": 16, "batch_size": 2, "seed": 0}
    assert predict.main(_predict_args(tmp_path, tmp_path / "whole", settings)) == 0
    assert not Path(f"{tmp_path / 'whole'}.journal.jsonl").exists()  # removed once the files are written
    capsys.readouterr()

    out = tmp_path / "killed"
    journal = Path(f"{out}.journal.jsonl")
    pkg = str(Path(predict.__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=pkg + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "parallel_scaling", "predict",
                             *_predict_args(tmp_path, out, settings)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if wait_until(lambda: journal.is_file() and len(journal.read_text().splitlines()) >= 4, 300, proc):
        kill_tree(proc.pid)  # once the header and 3 batches are saved
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not (out / "b1/en.jsonl").exists()
    saved = sum(len(json.loads(line)["responses"]) for line in journal.read_text().splitlines()[1:] if line.endswith("}"))
    assert 0 < saved < 60

    assert predict.main(_predict_args(tmp_path, out, settings)) == 0
    err = capsys.readouterr().err
    assert f"resuming: {saved} of 60 prompts were answered by an earlier run" in err
    assert f"/{60 - saved} prompts" in err  # progress counts only what is generated now
    assert (out / "b1/en.jsonl").read_bytes() == (tmp_path / "whole/b1/en.jsonl").read_bytes()
    assert not journal.exists()


#: the released tiny model: trained, so some answers end with EOS and others run to max_new_tokens
RELEASED = REPO / "models" / "tiny-qwen2"
QUESTIONS = ["Tom has 3 apples and buys 4 more. How many apples does he have?", "What is 7 + 5?",
             "A box holds 6 eggs. How many eggs are in 3 boxes?", "Anna has 10 pens and gives away 3. How many are left?"]


def test_finish_reason_and_token_counts_are_those_of_each_prompt_generated_alone():
    """Batched with left padding (the padded rows of a batch run to its longest), each sample's
    finish reason and token counts equal those of its prompt generated alone by plain
    ``model.generate``: EOS ends it ("eos", the EOS token counted, as vLLM counts it), else it is
    cut at max_new_tokens ("length"); padding is never counted."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from parallel_scaling.common.decoding import transformers_generation_config
    from parallel_scaling.common.prompts import build_prompt

    tok = AutoTokenizer.from_pretrained(RELEASED)
    prompts = [build_prompt(q, "en", "plain", tok) for q in QUESTIONS]
    settings = {"temperature": 0.0, "max_new_tokens": 40, "batch_size": 4, "seed": 0}
    batched = predict.generate_transformers(str(RELEASED), prompts, settings, "cpu")

    model = AutoModelForCausalLM.from_pretrained(RELEASED).eval()
    config = transformers_generation_config(settings, tok, model.generation_config)
    for prompt, samples in zip(prompts, batched, strict=True):
        enc = tok(prompt, return_tensors="pt", add_special_tokens=True)
        alone = model.generate(**enc, generation_config=config)[0, enc["input_ids"].shape[1]:].tolist()
        (got,) = samples
        assert got["prompt_tokens"] == enc["input_ids"].shape[1]
        assert got["completion_tokens"] == len(alone)
        assert got["finish_reason"] == ("eos" if alone[-1] in config.eos_token_id else "length")
        assert got["text"] == tok.decode(alone, skip_special_tokens=True)
    reasons = [s[0]["finish_reason"] for s in batched]
    assert set(reasons) == {"eos", "length"}, reasons  # both ends are covered
    assert all(s[0]["completion_tokens"] == 40 for s, r in zip(batched, reasons) if r == "length")


def test_finish_of_a_padded_row():
    from parallel_scaling.evaluate.samples import transformers_finish

    # pad == EOS (0): the first EOS ends the response, the rest is the batch's padding
    assert transformers_finish([5, 6, 0, 0, 0], [0], 5) == ("eos", 3)
    assert transformers_finish([5, 6, 7, 8, 9], [0], 5) == ("length", 5)
    # a distinct pad token (9) is never mistaken for a stop; any of the stop ids ends it
    assert transformers_finish([5, 2, 9, 9], [0, 2], 4) == ("eos", 2)
    assert transformers_finish([0], [0], 1) == ("eos", 1)  # EOS as the last allowed token: finished
