"""The served engine's parts that need no server: planning (keys refused, endpoints required), the
settings split that keeps the endpoint out of a job's params, the request bodies and the answers'
finish reasons. Against a real server (vLLM's CPU build) with injected faults: tests/test_served_vllm.py
(``make test-vllm``)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from parallel_scaling.common import served
from parallel_scaling.common.openai_client import Endpoint, EndpointError, public_url, retry_after
from parallel_scaling.plan import check_config as configcheck

ROOT = Path(__file__).resolve().parents[1]
STARTER = ROOT / "configs/examples/served_model.yaml"


def _errors(tmp_path: Path, config: dict) -> list[str]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        merged, origins = configcheck.load_study([path])
    except configcheck.ConfigError as exc:
        return str(exc).splitlines()
    return configcheck.check_config(merged, origins)


def test_the_starter_config_plans():
    merged, origins = configcheck.load_study([STARTER])
    assert configcheck.check_config(merged, origins) == []
    assert merged["prediction"]["engine"] == "served"


@pytest.mark.parametrize("served_part, key", [
    ({"api_key": "sk-proj-" + "a" * 40}, "prediction.served.api_key"),  # a key-named setting
    ({"base_url": "https://me:hunter2secret@api.example.com/v1"}, "prediction.served.base_url"),  # URL password
    ({"key_env": "sk-proj-" + "a" * 40}, "prediction.served.key_env"),  # the key where its variable's name goes
])
def test_a_key_written_into_the_config_is_refused_naming_the_key(tmp_path, served_part, key):
    config = yaml.safe_load(STARTER.read_text())
    config["prediction"]["served"].update(served_part)
    errors = "\n".join(_errors(tmp_path, config))
    assert key in errors, errors
    assert "hunter2secret" not in errors and "a" * 40 not in errors


def test_a_served_engine_needs_its_endpoint_and_one_name_cannot_answer_for_two_models(tmp_path):
    config = yaml.safe_load(STARTER.read_text())
    broken = copy.deepcopy(config)
    broken["prediction"]["served"]["base_url"] = None
    assert any(e.startswith("prediction.served.base_url: required") or "prediction.served.base_url: required" in e
               for e in _errors(tmp_path, broken))
    two = copy.deepcopy(config)
    two["models"]["other"] = {**config["models"]["qwq_32b"], "path": "Qwen/Qwen2.5-7B-Instruct", "size_b": 7.6}
    assert _errors(tmp_path, two) == []  # each asked for by its own path
    two["prediction"]["served"]["model"] = "qwq"
    assert any("prediction.served.model: 'qwq' would answer for every model" in e for e in _errors(tmp_path, two))


def test_the_endpoint_and_transport_are_kept_out_of_the_settings_a_job_depends_on():
    section = {"engine": "served", "temperature": 0.0,
               "served": {"base_url": "http://a:1/v1", "model": "m", "revision": "r1", "api": "completions",
                          "concurrency": 8, "timeout_s": 60, "retries": 3, "key_env": "K", "not_sent": []}}
    settings, where = served.split_settings(section)
    assert where == {"base_url": "http://a:1/v1", "concurrency": 8, "timeout_s": 60, "retries": 3, "key_env": "K"}
    assert settings["served"] == {"model": "m", "revision": "r1", "api": "completions", "not_sent": []}
    moved = copy.deepcopy(section)
    moved["served"].update(base_url="http://b:2/v1", retries=20, concurrency=64)
    assert served.identity_settings(moved) == served.identity_settings(section)
    revised = copy.deepcopy(section)
    revised["served"]["revision"] = "r2"
    assert served.identity_settings(revised) != served.identity_settings(section)
    assert served.merge_transport(settings, where) == section
    # a study that does not serve keeps the params it had before the served keys existed
    assert served.split_settings({**section, "engine": "vllm"}) == ({"engine": "vllm", "temperature": 0.0}, {})
    assert served.split_settings({"backend": "template", "served": {"base_url": None}}) == ({"backend": "template"}, {})


def test_decoding_goes_in_every_request_and_what_is_not_sent_is_said():
    s = {"temperature": 0.6, "top_p": 0.95, "top_k": 40, "repetition_penalty": 1.0, "max_new_tokens": 100,
         "n": 4, "seed": 3}
    params, notes = served.request_params(s)
    assert params == {"max_tokens": 100, "n": 4, "temperature": 0.6, "top_p": 0.95, "top_k": 40,
                      "repetition_penalty": 1.0, "seed": 3} and notes == []
    params, notes = served.request_params(s, ["top_k", "repetition_penalty"])
    assert "top_k" not in params and "repetition_penalty" not in params
    assert notes == ["top_k=40 NOT sent: the server decodes without it, unlike the study's setting",
                     "repetition_penalty not sent (at its neutral value 1.0: no difference)"]
    greedy, _ = served.request_params({"max_new_tokens": 5, "temperature": 0.0, "top_p": 0.5, "top_k": 7})
    assert (greedy["top_p"], greedy["top_k"]) == (1.0, 0)  # as the vLLM engine


def test_chat_bodies_continue_a_forced_assistant_prefix():
    params = {"max_tokens": 5}
    body = served.body_of([{"role": "user", "content": "q"}, {"role": "assistant", "content": "Let me"}],
                          {"api": "chat"}, "m", params)
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    plain = served.body_of([{"role": "user", "content": "q"}], {"api": "chat"}, "m", params)
    assert "continue_final_message" not in plain and plain["messages"] == [{"role": "user", "content": "q"}]
    assert served.body_of("text", {"api": "completions"}, "m", params)["prompt"] == "text"


def test_finish_reasons_and_tokens_of_an_answer():
    answer = {"choices": [{"index": 1, "text": "b", "finish_reason": "length", "stop_reason": None},
                          {"index": 0, "text": "a", "finish_reason": "stop", "stop_reason": None}],
              "usage": {"prompt_tokens": 7, "completion_tokens": 9}}
    samples = served.samples_of(answer, "completions", 2, lambda text: 10 + len(text), "here")
    assert [(x["text"], x["finish_reason"], x["prompt_tokens"], x["completion_tokens"]) for x in samples] == \
        [("a", "eos", 7, 11), ("b", "length", 7, 11)]
    one = served.samples_of({"choices": [{"text": "x", "finish_reason": "stop", "stop_reason": "</answer>"}],
                             "usage": {"prompt_tokens": 3, "completion_tokens": 2}}, "completions", 1, None, "here")
    assert one[0]["finish_reason"] == "stop_string" and one[0]["completion_tokens"] == 2
    with pytest.raises(EndpointError, match="here: the server answered 1 choices for n = 2"):
        served.samples_of({"choices": [{}]}, "completions", 2, None, "here")


def test_urls_keys_and_retry_after(monkeypatch):
    assert public_url("https://u:p@api.example.com:8443/v1/?k=1#x") == "https://api.example.com:8443/v1"
    assert retry_after("7") == 7.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    with pytest.raises(EndpointError, match="the URL holds credentials"):
        Endpoint("https://u:p@api.example.com/v1")
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(EndpointError, match="prediction.served.key_env: the environment variable 'NO_SUCH_KEY_VAR'"):
        Endpoint("http://127.0.0.1:9/v1", key_env="NO_SUCH_KEY_VAR", key_name="prediction.served.key_env")
    monkeypatch.setenv("A_KEY_VAR", "sk-secret-" + "x" * 30)
    ep = Endpoint("http://127.0.0.1:9/v1", key_env="A_KEY_VAR")
    assert "sk-secret" not in repr(ep) and "sk-secret" not in repr(vars(ep).get("stats"))
