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
    import time
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
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 4:  # header + 3 batches
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
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



def test_journal_of_other_inputs_is_set_aside(tmp_path, capsys):
    """A journal whose header names other inputs is moved aside, never mixed in; a line cut off by
    the kill is ignored (its batch is generated again)."""
    from parallel_scaling.evaluate.journal import Journal

    path = tmp_path / "run.journal.jsonl"
    Journal(path, "sha256:a").append(0, {0: ["x"], 1: ["y"]})
    with open(path, "a") as fh:
        fh.write('{"batch": 1, "responses": {"2": ["cut')
    assert Journal(path, "sha256:a").load() == {0: ["x"], 1: ["y"]}
    assert Journal(path, "sha256:b").load() == {}
    assert "written for other inputs" in capsys.readouterr().err
    assert not path.exists() and (tmp_path / "run.journal.jsonl.stale").is_file()
