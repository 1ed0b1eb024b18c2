"""The ``served`` engine against a real ``vllm serve`` of the released tiny model (``make test-vllm``).

One OpenAI-compatible vLLM server (vLLM's CPU build, float32, on 127.0.0.1 at a free port, with an
API key from the environment) runs for the module; a fault-injecting proxy
(``tests/fault_proxy.py``) stands in front of it and counts the generation requests per prompt.

* a ``predict`` job run by Snakemake with ``prediction.engine: served`` (completions API) equals
  the transformers engine item by item, with finish reasons and token counts; the endpoint, the
  server's model list and version are in ``_served.json``; the key is in no file of the run;
* faults: 429 with Retry-After, 500, a hung request, a dropped connection: the job survives, every
  prompt reaches the server once (a faulted one once more), the files equal a clean run's;
* a request that keeps failing fails the job naming the endpoint, the status and the item, after
  saving the rest; the rerun asks only for that item;
* the server killed mid-job: the job fails once its retries are spent, keeping what was answered;
  with the server restarted the rerun asks only for the rest and ends with a clean run's files;
* the ``served`` translation backend equals the ``transformers`` backend row by row, and a
  ``translate`` job run by Snakemake asks the server once per row;
* the chat API: the server renders the messages to our prompt's token ids, and its translations
  equal the transformers backend's with the same chat template (the server runs a copy of the tiny
  model with one; the released model has none);
* a moved server reruns nothing, a new declared revision reruns the predictions (dry runs); every
  field we send is one vLLM's request models read.

The server is started as ``python -m vllm.entrypoints.openai.api_server`` (what ``vllm serve`` runs:
the ``vllm`` command looks up the distribution ``vllm``, and the CPU build is ``vllm-cpu``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fault_proxy import Fault, free_port, start, stop, wait_ready
from helpers import REPO, copy_workflow, load_yaml, snakemake, write_config
from parallel_scaling.jobs import preflight

if importlib.util.find_spec("vllm") is None:
    if preflight.vllm_cpu_allowed():
        raise ImportError(f"{preflight.VLLM_CPU_ENV}=1 but vLLM is not installed: run `make test-vllm`")
    pytest.skip("vLLM is not installed here (make test-vllm runs these tests in .venv-vllm)",
                allow_module_level=True)

pytestmark = pytest.mark.slow

MODEL = REPO / "models" / "tiny-qwen2"
#: the name the server registers: the study's model path (config.yaml), as `vllm serve PATH` would
SERVED_NAME = "models/tiny-qwen2"
LIMIT = 3  # items per (benchmark, language): 9 languages x 3 = 27 prompts
TARGET = "results/tiny/predictions/tiny/init/init/s0"
MAX_NEW = 12  # the tiny model's answers take 10-13 tokens: some stop at EOS, some are cut
KEY_ENV = "SERVED_TEST_API_KEY"
KEY = "sk-test-" + "k3y" * 10  # shaped like an OpenAI key: the redaction rules would know it too
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1"}


#: a chat template for the served copy of the tiny model (the released one has none): the chat API
#: needs one, and the transformers backend renders the same with it
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def chat_copy(dest: Path) -> Path:
    """The released tiny model with :data:`CHAT_TEMPLATE` in its tokenizer config (same weights)."""
    import shutil

    shutil.copytree(MODEL, dest)
    config = json.loads((dest / "tokenizer_config.json").read_text())
    (dest / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": CHAT_TEMPLATE}))
    return dest


class Server:
    """``vllm serve`` of the tiny model (float32, its sampling defaults off, the key required), from
    a copy with a chat template; registered under the study's model path."""

    def __init__(self, log: Path, model: Path) -> None:
        self.port, self.log, self.proc, self.model = free_port(), log, None, model

    def start(self) -> None:
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model),
               "--served-model-name", SERVED_NAME, "--dtype", "float32", "--generation-config", "vllm",
               "--seed", "0", "--enforce-eager", "--host", "127.0.0.1", "--port", str(self.port),
               "--api-key", KEY]
        env = {**os.environ, **CPU_ENV}
        with open(self.log, "a") as fh:  # its own session: killing it ends its engine process too
            self.proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_ready(self.port, timeout=400, proc=self.proc)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    where = tmp_path_factory.mktemp("vllm")
    srv = Server(where / "serve.log", chat_copy(where / "tiny-qwen2-chat"))
    srv.start()
    yield srv
    srv.kill()


@pytest.fixture
def proxy(server):
    httpd, state = start(server.port)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    stop(httpd, state)


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def _rows(outdir: Path) -> dict[str, list[dict[str, Any]]]:
    from parallel_scaling.dataio.jsonl import read_jsonl

    return {str(p.relative_to(outdir)): read_jsonl(p) for p in sorted(outdir.glob("*/*.jsonl"))}


def _served(url: str, **extra: Any) -> dict[str, Any]:
    return {"base_url": url, "key_env": KEY_ENV, "concurrency": 4, "timeout_s": 60, "retries": 3, **extra}


@pytest.fixture(scope="module")
def study(tmp_path_factory, server) -> dict[str, Any]:
    """The default study's predict job with the served engine, through a clean proxy, by Snakemake;
    then the same command line with the transformers engine, in this process."""
    from parallel_scaling.evaluate import predict

    httpd, state = start(server.port)
    try:
        wd = copy_workflow(tmp_path_factory.mktemp("study") / "wd")
        config = load_yaml(REPO / "config.yaml")
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        config["prediction"].update(engine="served", limit=LIMIT, max_new_tokens=MAX_NEW, served=_served(url, revision="released-0.1"))
        write_config(wd / "study.yaml", config)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(KEY_ENV, KEY)  # the jobs inherit it; nothing else carries it
            snakemake(wd, TARGET, "--configfile", "study.yaml", timeout=900)
    finally:
        stop(httpd, state)
    record = json.loads((wd / "logs/tiny/predict/tiny/init/init/s0.prov.json").read_text())
    argv = list(record["argv"])
    i = argv.index("--settings") + 1
    settings = json.loads(argv[i])
    argv[i] = json.dumps({**settings, "engine": "transformers", "device": "cpu"})
    j = argv.index("--served")
    del argv[j:j + 2]
    argv[argv.index("--outdir") + 1] = str(wd / "transformers")
    argv[argv.index("--journal") + 1] = str(wd / "transformers.journal.jsonl")
    cwd = Path.cwd()
    os.chdir(wd)
    try:
        assert predict.main(argv) == 0
    finally:
        os.chdir(cwd)
    return {"wd": wd, "record": record, "served": wd / TARGET, "transformers": wd / "transformers",
            "argv": argv, "proxy": state, "config": config}


def test_a_served_predict_job_equals_the_transformers_engine_item_by_item(study):
    served, local = _rows(study["served"]), _rows(study["transformers"])
    assert len(served) == 9 and list(served) == list(local)
    reasons = set()
    for name, rows in served.items():
        assert len(rows) == LIMIT
        for s, t in zip(rows, local[name], strict=True):
            assert (s["id"], s["prompt"], s["response"]) == (t["id"], t["prompt"], t["response"]), name
            assert (s["finish_reason"], s["prompt_tokens"], s["completion_tokens"]) == \
                (t["finish_reason"], t["prompt_tokens"], t["completion_tokens"]), (name, s["id"])
            reasons.add(s["finish_reason"])
    assert reasons == {"eos", "length"}, reasons  # both ends of a response are compared
    # every prompt was asked once
    assert sorted(study["proxy"].forwarded.values()) == [1] * 27


def test_the_record_says_what_answered_and_the_key_is_in_no_file(study):
    wd = study["wd"]
    rec = json.loads((study["served"] / "_served.json").read_text())
    assert rec["base_url"].startswith("http://127.0.0.1:") and rec["model"] == SERVED_NAME
    assert rec["revision"] == "released-0.1" and rec["server_version"] == "0.30.0"
    assert [m["id"] for m in rec["server_models"]] == [SERVED_NAME]
    assert rec["answered_by"][0]["model"] == SERVED_NAME
    assert rec["answered_by"][0]["system_fingerprint"].startswith("vllm-0.30.0")
    assert rec["tokens"]["completion"] == sum(r["completion_tokens"] for rows in _rows(study["served"]).values()
                                              for r in rows)
    log = (wd / "logs/tiny/predict/tiny/init/init/s0.log").read_text()  # 27 prompts + the model list
    assert "[served] tokens:" in log and "28 requests, 0 retried" in log, log[-2000:]
    leaks = [p for p in wd.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []


def test_a_moved_server_reruns_nothing_and_a_new_revision_reruns_the_predictions(study):
    """The endpoint is not part of the job's identity, the declared model is (dry runs)."""
    import re

    wd, config = study["wd"], study["config"]
    moved = json.loads(json.dumps(config))
    moved["prediction"]["served"].update(base_url="http://127.0.0.1:9/v1", retries=20, concurrency=64)
    write_config(wd / "moved.yaml", moved)
    out = snakemake(wd, TARGET, "--configfile", "moved.yaml", "-n")
    assert "Nothing to be done" in out.stdout + out.stderr, out.stdout[-2000:]
    revised = json.loads(json.dumps(config))
    revised["prediction"]["served"]["revision"] = "released-0.2"
    write_config(wd / "revised.yaml", revised)
    out = snakemake(wd, TARGET, "--configfile", "revised.yaml", "-n")
    assert re.search(r"^predict\s+1\b", out.stdout + out.stderr, re.M), out.stdout[-2000:]


def _predict(study: dict[str, Any], tmp: Path, url: str, **served: Any) -> int:
    """The study's predict command line against ``url``, into ``tmp`` (its own journal)."""
    from parallel_scaling.evaluate import predict

    argv = list(study["argv"])
    i = argv.index("--settings") + 1
    settings = json.loads(argv[i])
    argv[i] = json.dumps({**settings, "engine": "served", "served": {"revision": "released-0.1"}})
    argv[argv.index("--outdir") + 1] = str(tmp / "out")
    argv[argv.index("--journal") + 1] = str(tmp / "journal.jsonl")
    argv += ["--served", json.dumps(_served(url, **served))]
    cwd = Path.cwd()
    os.chdir(study["wd"])
    try:
        return predict.main(argv)
    finally:
        os.chdir(cwd)


def _prompts(study: dict[str, Any]) -> list[str]:
    return [r["prompt"] for rows in _rows(study["served"]).values() for r in rows]


def test_429_500_a_hung_request_and_a_dropped_connection_are_retried_and_nothing_twice(study, proxy, tmp_path, capfd):
    prompts = _prompts(study)
    proxy.faults += [Fault("429", prompts[0], retry_after="2"), Fault("500", prompts[1]),
                     Fault("hang", prompts[2]), Fault("drop", prompts[3])]
    assert _predict(study, tmp_path, proxy.url, timeout_s=5) == 0
    err = capfd.readouterr().err
    assert proxy.faults == [] and len(proxy.injected) == 4
    assert "status 429: injected 429; retry 1 of 3 in 2.0 s" in err, err[-3000:]
    assert "status 500" in err and "no answer within 5 s" in err and "connection failed" in err, err[-3000:]
    # each prompt generated once: the faulted ones never reached the server the first time
    assert sorted(proxy.forwarded.values()) == [1] * 27
    assert all(proxy.received[p] == 2 for p in prompts[:4])
    assert _rows(tmp_path / "out") == _rows(study["served"])


def test_a_request_that_keeps_failing_fails_the_job_naming_it_and_the_rerun_asks_only_for_it(study, proxy,
                                                                                              tmp_path):
    from parallel_scaling.common.openai_client import EndpointError

    prompts = _prompts(study)
    proxy.faults += [Fault("500", prompts[5]) for _ in range(3)]  # 3 tries with retries=2
    with pytest.raises(EndpointError) as err:
        _predict(study, tmp_path, proxy.url, retries=2)
    message = str(err.value)
    assert f"POST {proxy.url}/completions for item " in message and "failed 3 times" in message, message
    assert "status 500" in message and "26 of 27 prompts answered and saved, 1 missing" in message, message
    assert KEY not in message
    first = dict(proxy.forwarded)
    assert sorted(first.values()) == [1] * 26 and prompts[5] not in first
    proxy.forwarded.clear()
    assert _predict(study, tmp_path, proxy.url, retries=2) == 0
    assert dict(proxy.forwarded) == {prompts[5]: 1}  # only what was missing
    assert _rows(tmp_path / "out") == _rows(study["served"])


def test_the_server_killed_mid_job_loses_nothing_and_the_rerun_asks_only_for_the_rest(study, server, proxy,
                                                                                        tmp_path, capfd):
    import threading

    prompts = _prompts(study)
    proxy.faults.append(Fault("hang", prompts[-1]))  # holds the job while the server is killed
    killed = threading.Event()

    def kill_when_most_are_done() -> None:
        for _ in range(600):
            if sum(proxy.forwarded.values()) >= 20:
                break
            killed.wait(0.1)
        server.kill()
        killed.set()

    threading.Thread(target=kill_when_most_are_done, daemon=True).start()
    from parallel_scaling.common.openai_client import EndpointError

    try:
        with pytest.raises(EndpointError) as err:
            _predict(study, tmp_path, proxy.url, retries=1, timeout_s=10, concurrency=2)
        assert killed.is_set()
        assert "status 502" in str(err.value) or "connection failed" in str(err.value), str(err.value)
    finally:
        server.kill()
        server.start()  # the other tests' server
    from parallel_scaling.evaluate.journal import Journal

    saved = Journal(tmp_path / "journal.jsonl", "").path.read_text().count("\n")
    assert saved >= 2  # the header and the answered prompts
    first = dict(proxy.forwarded)
    proxy.forwarded.clear()
    assert _predict(study, tmp_path, proxy.url) == 0
    asked_again = set(proxy.forwarded)
    answered_first = {p for p in first if p not in asked_again}
    assert len(answered_first) >= 15, (len(first), len(asked_again))
    assert all(proxy.forwarded[p] == 1 for p in asked_again)
    assert len(asked_again) + len(answered_first) == 27
    assert _rows(tmp_path / "out") == _rows(study["served"])
    assert "[journal] resuming" in capfd.readouterr().err


def test_every_field_we_send_is_one_the_server_reads():
    """vLLM ignores unknown request fields (logged at debug level only): each field of our bodies,
    for both APIs, must be a field of its request model, else a setting would be silently dropped."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.entrypoints.openai.completion.protocol import CompletionRequest

    from parallel_scaling.common import served

    params, _ = served.request_params({"temperature": 0.7, "top_p": 0.9, "top_k": 5, "repetition_penalty": 1.1,
                                       "max_new_tokens": 8, "n": 2, "seed": 1})
    completion = served.body_of("text", {"api": "completions"}, "m", params)
    chat = served.body_of([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
                          {"api": "chat"}, "m", params)
    assert set(completion) - set(CompletionRequest.model_fields) == set()
    assert set(chat) - set(ChatCompletionRequest.model_fields) == set()
    request = CompletionRequest(**completion).to_sampling_params(max_tokens=8, default_sampling_params={})
    assert (request.temperature, request.top_p, request.top_k, request.repetition_penalty, request.n,
            request.seed) == (0.7, 0.9, 5, 1.1, 2, 1)


def _translation(backend: str, url: str | None, prompts_file: Path) -> dict[str, Any]:
    model = {"path": SERVED_NAME if backend == "served" else str(MODEL), "dtype": "float32", "device": "cpu",
             "temperature": 0.0, "max_new_tokens": 24, "batch_size": 16, "seed": 0, "prompts_file": str(prompts_file)}
    out: dict[str, Any] = {"backend": backend, "fields": ["question", "solution"], "model": model}
    if url:
        out["served"] = {"base_url": url, "key_env": KEY_ENV}
    return out


def test_the_served_translation_backend_equals_the_transformers_backend(study, proxy, tmp_path):
    from parallel_scaling.dataio.jsonl import read_jsonl, write_jsonl
    from parallel_scaling.data import translate

    prompts = tmp_path / "short.yaml"
    prompts.write_text("languages: {de: German}\ndefault:\n  user: \"{language}: {text}\"\n")
    source = read_jsonl(study["wd"] / "results/tiny/data/source/test.jsonl")[:8]
    write_jsonl(tmp_path / "src.jsonl", source)
    cwd = Path.cwd()
    os.chdir(study["wd"])  # model path relative to the run's directory, as in the rule
    try:
        for backend in ("served", "transformers"):
            settings = _translation(backend, proxy.url, prompts)
            argv = ["--source", str(tmp_path / "src.jsonl"), "--lang", "de", "--out", str(tmp_path / f"{backend}.jsonl"),
                    "--settings", json.dumps(settings)]
            assert translate.main(argv) == 0
    finally:
        os.chdir(cwd)
    served, local = read_jsonl(tmp_path / "served.jsonl"), read_jsonl(tmp_path / "transformers.jsonl")
    assert len(served) == 8 and served == local
    assert sum(proxy.forwarded.values()) == 16  # question and solution of each row, once
    meta = json.loads((tmp_path / "served.meta.json").read_text())
    assert meta["backend"] == "served" and meta["served"]["server_version"] == "0.30.0"
    assert meta["served"]["base_url"] == proxy.url and KEY not in json.dumps(meta)


def test_a_translate_job_run_by_snakemake_asks_the_server_once_per_text(study, proxy):
    """The translate rule with ``translation.backend: served``: the endpoint reaches the job apart from
    its settings (data.smk), every source question is asked once, the sidecar says what answered."""
    wd = study["wd"]
    names = {"de": "German", "fr": "French", "es": "Spanish", "ru": "Russian", "zh": "Chinese", "ja": "Japanese",
             "th": "Thai", "sw": "Swahili", "en": "English"}
    (wd / "short.yaml").write_text("languages: " + json.dumps(names) + "\ndefault:\n  user: \"{language}: {text}\"\n")
    config = json.loads(json.dumps(study["config"]))
    config["translation"] = {"backend": "served", "fields": ["question"],
                             "model": {"path": SERVED_NAME, "prompts_file": "short.yaml", "max_new_tokens": 16,
                                       "temperature": 0.0, "seed": 0},
                             "served": {"base_url": proxy.url, "key_env": KEY_ENV, "concurrency": 4}}
    write_config(wd / "translate.yaml", config)
    target = "results/tiny/data/translated/test/de.jsonl"
    snakemake(wd, target, "--configfile", "translate.yaml", "--allowed-rules", "translate", timeout=900)
    from parallel_scaling.dataio.jsonl import read_jsonl

    rows, source = read_jsonl(wd / target), read_jsonl(wd / "results/tiny/data/source/test.jsonl")
    assert [r["id"] for r in rows] == [r["id"] for r in source] and all(r["lang"] == "de" for r in rows)
    # one request per row: as many prompts as distinct questions, as many requests as rows
    assert sum(proxy.forwarded.values()) == len(source) and len(proxy.forwarded) == len({r["question"] for r in source})
    meta = json.loads((wd / "results/tiny/data/translated/test/de.meta.json").read_text())
    assert meta["backend"] == "served" and meta["served"]["model"] == SERVED_NAME
    assert meta["served"]["answered_by"][0]["model"] == SERVED_NAME
    prov = (wd / "logs/tiny/translate/test/de.prov.json").read_text()
    assert proxy.url in prov and KEY not in prov


def test_the_chat_api_sends_the_messages_and_equals_the_same_template_applied_here(server, proxy, tmp_path):
    """``api: chat``: the messages go to the server, which applies the model's chat template; with
    the same template applied here (the transformers backend on the same files) the translations are
    equal row by row. No local model is needed for the chat API."""
    from parallel_scaling.dataio.jsonl import read_jsonl, write_jsonl
    from parallel_scaling.data import translate

    prompts = tmp_path / "short.yaml"
    prompts.write_text("languages: {de: German}\ndefault:\n  user: \"{language}: {text}\"\n")
    write_jsonl(tmp_path / "src.jsonl", [{"id": str(i), "question": f"Tom has {i} apples and {i + 2} pears.",
                                           "answer": str(2 * i + 2)} for i in range(6)])
    sampling = {"dtype": "float32", "device": "cpu", "temperature": 0.0, "max_new_tokens": 16, "seed": 0,
                "prompts_file": str(prompts)}
    chat = {"backend": "served", "fields": ["question"], "model": sampling,
            "served": {"base_url": proxy.url, "key_env": KEY_ENV, "api": "chat", "model": SERVED_NAME}}
    local = {"backend": "transformers", "fields": ["question"], "model": {**sampling, "path": str(server.model)}}
    for name, settings in (("chat", chat), ("local", local)):
        argv = ["--source", str(tmp_path / "src.jsonl"), "--lang", "de", "--out", str(tmp_path / f"{name}.jsonl"),
                "--settings", json.dumps(settings)]
        assert translate.main(argv) == 0
    served_rows, local_rows = read_jsonl(tmp_path / "chat.jsonl"), read_jsonl(tmp_path / "local.jsonl")
    assert len(served_rows) == 6 and served_rows == local_rows
    assert sum(proxy.forwarded.values()) == 6  # one chat request per question
    assert json.loads((tmp_path / "chat.meta.json").read_text())["served"]["api"] == "chat"
    # the server rendered exactly our prompt: its tokens of the messages are ours of the rendered text
    from transformers import AutoTokenizer

    from parallel_scaling.common.decoding import encode_prompts
    from parallel_scaling.common.openai_client import Endpoint

    messages = [{"role": "user", "content": "German: Tom has 3 apples."}]
    tok = AutoTokenizer.from_pretrained(server.model)
    ours = encode_prompts(tok, [translate.render_prompt(tok, messages)])[0]
    theirs = Endpoint(f"http://127.0.0.1:{server.port}", key_env=KEY_ENV).post(
        "/tokenize", {"model": SERVED_NAME, "messages": messages})["tokens"]
    assert theirs == ours and len(ours) > len(encode_prompts(tok, [messages[0]["content"]])[0]) + 4
