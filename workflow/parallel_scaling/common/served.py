"""The ``served`` engine: predictions and translations from a model behind an OpenAI-compatible API.

Models too large for one job (a 32B reasoning model over GPUs, R1 over nodes) or hosted elsewhere
are served by ``vllm serve``, SGLang or a provider and reached over HTTP. This engine sends the
prompts the in-process engines would see and returns samples in the engine contract's shape
(``{"text", "finish_reason", "prompt_tokens", "completion_tokens"}``), so the journal, the rows and
scoring do not know which engine ran.

* **The same prompt.** ``api: completions`` sends the prompt text the other engines tokenize (the
  chat template applied by us; the server tokenizes it with its special tokens, as they do). ``api:
  chat`` sends the messages and the server applies its own chat template; a prompt set's forced
  assistant prefix is sent as a final assistant message to be continued (``continue_final_message``,
  a vLLM/SGLang extension). docs/served-models.md says what differs.
* **The same decoding.** temperature, top_p, top_k, repetition_penalty, max tokens, n and the seed
  go into every request (explicitly, so a server's own generation defaults never apply); those the
  server does not accept are listed in ``not_sent``, left out, and said in the log and the record.
* **Bounded and resumable.** At most ``concurrency`` requests in flight; each finished prompt is
  handed to ``save`` at once; a request that fails for good stops new requests, lets those in flight
  finish and be saved, then fails the job naming the endpoint, the status and the item.
"""

from __future__ import annotations

import concurrent.futures as cf
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from parallel_scaling.common.decoding import sampling
from parallel_scaling.common.openai_client import Endpoint, EndpointError, public_url

Sample = dict[str, Any]
Done = dict[int, list[Sample]]
Save = Callable[[Done], None]
#: a completions prompt (text) or a chat prompt (messages)
Prompt = str | Sequence[Mapping[str, str]]

#: settings that only decide how requests travel, not what is generated: left out of the identity
#: of a job's journal, so that a rerun with more retries or a longer timeout resumes
TRANSPORT_KEYS = ("concurrency", "timeout_s", "retries", "key_env")
#: decoding settings a server may not accept (OpenAI's own API: top_k, repetition_penalty)
OPTIONAL_PARAMS = ("top_k", "repetition_penalty", "seed", "top_p")
#: the neutral value of each: leaving out a setting at this value changes nothing
NEUTRAL = {"top_k": 0, "repetition_penalty": 1.0, "top_p": 1.0}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def identity_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a job's outputs (and its journal) depend on: all but where the requests go and
    how they travel (:func:`split_settings`), so a rerun with more retries or on a moved server resumes."""
    return split_settings(settings)[0]


def request_params(settings: Mapping[str, Any], not_sent: Sequence[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """The decoding fields of a request and the notes on those left out.

    Greedy decoding (temperature 0) sends top_p 1 and top_k 0, as the vLLM engine does. A setting
    in ``not_sent`` is not sent; at a non-neutral value that means the server decodes differently
    from the study's settings, which the note says."""
    s = sampling(settings)
    greedy = s["temperature"] == 0
    params: dict[str, Any] = {"max_tokens": s["max_new_tokens"], "n": s["n"], "temperature": s["temperature"],
                              "top_p": 1.0 if greedy else s["top_p"], "top_k": 0 if greedy else s["top_k"],
                              "repetition_penalty": s["repetition_penalty"], "seed": s["seed"]}
    notes = []
    for key in not_sent:
        value = params.pop(key, None)
        if key in NEUTRAL and value == NEUTRAL[key]:
            notes.append(f"{key} not sent (at its neutral value {value!r}: no difference)")
        elif key == "seed" and greedy:
            notes.append("seed not sent (greedy decoding: no difference)")
        else:
            notes.append(f"{key}={value!r} NOT sent: the server decodes without it, unlike the study's setting")
    return params, notes


def finish_reason(choice: Mapping[str, Any]) -> str | None:
    """The contract's finish reason of one choice: vLLM's ``stop`` with a string ``stop_reason`` is a
    stop string, ``stop`` otherwise the end-of-sequence token, ``length`` the token limit."""
    reason = choice.get("finish_reason")
    if reason == "length":
        return "length"
    if reason == "stop":
        return "stop_string" if isinstance(choice.get("stop_reason"), str) else "eos"
    return None


def samples_of(answer: Mapping[str, Any], api: str, n: int, count: Callable[[str], int] | None,
               where: str) -> list[Sample]:
    """The n samples of one answer in the contract's shape. The server reports the tokens of the
    whole request; with n > 1 each sample's completion tokens are counted with ``count`` (the local
    tokenizer) when there is one, else left None."""
    choices = sorted(answer.get("choices") or [], key=lambda c: c.get("index", 0))
    if len(choices) != n:
        raise EndpointError(f"{where}: the server answered {len(choices)} choices for n = {n}")
    usage = answer.get("usage") or {}
    out = []
    for c in choices:
        text = c.get("text") if api == "completions" else (c.get("message") or {}).get("content")
        text = text or ""
        if isinstance(c.get("token_ids"), list):  # vLLM, when the ids are returned
            tokens = len(c["token_ids"])
        elif n == 1 and usage.get("completion_tokens") is not None:
            tokens = int(usage["completion_tokens"])
        else:
            tokens = count(text) if count else None
        out.append({"text": text, "finish_reason": finish_reason(c),
                    "prompt_tokens": usage.get("prompt_tokens"), "completion_tokens": tokens})
    return out


def body_of(prompt: Prompt, cfg: Mapping[str, Any], model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """One request's JSON body for the configured API."""
    body: dict[str, Any] = {"model": model, **params}
    if cfg.get("api", "completions") == "chat":
        messages = [dict(m) for m in prompt]  # type: ignore[union-attr]
        body["messages"] = messages
        if messages and messages[-1].get("role") == "assistant":  # a forced prefix, continued
            body.update(add_generation_prompt=False, continue_final_message=True)
    else:
        if not isinstance(prompt, str):
            raise TypeError("api: completions needs prompt text")
        body["prompt"] = prompt
    return body


def endpoint_of(cfg: Mapping[str, Any], key_name: str) -> Endpoint:
    """The configured endpoint (``key_name``: the config key of the section, for messages)."""
    if not cfg.get("base_url"):
        raise EndpointError(f"{key_name}.base_url: required for the served engine (e.g. http://HOST:8000/v1)")
    return Endpoint(str(cfg["base_url"]), key_env=cfg.get("key_env"), timeout_s=float(cfg.get("timeout_s", 600)),
                    retries=int(cfg.get("retries", 8)), key_name=f"{key_name}.key_env", log=log)


def generate_served(prompts: Sequence[Prompt], s: Mapping[str, Any], model: str, *, key_name: str = "prediction.served",
                    labels: Sequence[str] | None = None, count: Callable[[str], int] | None = None,
                    done: Done | None = None, save: Save | None = None,
                    endpoint: Endpoint | None = None, progress: Any = None) -> list[list[Sample]]:
    """Every prompt's ``n`` samples from the endpoint of ``s["served"]``; only prompts not in ``done``
    are asked for, each finished one is given to ``save`` as it arrives.

    ``model``: the name the server knows; ``labels`` name the prompts in messages (item ids);
    ``progress``: the job's progress line (``start(total, label)``, ``update(prompts, tokens)``)."""
    cfg = dict(s.get("served") or {})
    api = cfg.get("api", "completions")
    ep = endpoint or endpoint_of(cfg, key_name)
    params, notes = request_params(s, cfg.get("not_sent") or ())
    for note in notes:
        log(f"[served] {key_name}.not_sent: {note}")
    path = "/chat/completions" if api == "chat" else "/completions"
    done = dict(done or {})
    todo = [i for i in range(len(prompts)) if i not in done]
    log(f"[served] {len(todo)} of {len(prompts)} prompts to ask {ep.url}{path} (model {model!r}), "
        f"at most {int(cfg.get('concurrency', 8))} in flight")
    label = (lambda i: labels[i]) if labels else (lambda i: f"prompt {i}")
    if progress is not None:
        progress.start(len(todo), "served")

    def one(i: int) -> list[Sample]:
        answer = ep.post(path, body_of(prompts[i], cfg, model, params), item=label(i))
        with ep.lock:
            ep.stats.answered_by.add((answer.get("model"), answer.get("system_fingerprint")))
        return samples_of(answer, api, int(params["n"]), count, f"{ep.url}{path} for {label(i)}")

    failure: BaseException | None = None
    finished = 0
    with cf.ThreadPoolExecutor(max_workers=max(1, int(cfg.get("concurrency", 8)))) as pool:
        futures = {pool.submit(one, i): i for i in todo}
        pending = set(futures)
        while pending:
            ready, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            made: Done = {}
            for f in ready:
                if f.cancelled():
                    continue
                exc = f.exception()
                if exc is not None:
                    if failure is None:  # stop asking; what is in flight still finishes and is saved
                        failure = exc
                        for other in pending:
                            other.cancel()
                    continue
                made[futures[f]] = f.result()
                ep.stats.prompt_tokens += made[futures[f]][0]["prompt_tokens"] or 0
                ep.stats.completion_tokens += sum(x["completion_tokens"] or 0 for x in made[futures[f]])
            if made:
                done.update(made)
                if save:
                    save(made)
                finished += len(made)
                if progress is not None:
                    progress.update(len(made), sum(x["completion_tokens"] or 0 for v in made.values() for x in v))
                elif finished == len(todo) or finished % max(1, len(todo) // 10) < len(made):
                    log(f"[served] {finished}/{len(todo)} prompts answered")
    st = ep.stats
    log(f"[served] tokens: {st.prompt_tokens} prompt, {st.completion_tokens} completion; "
        f"{st.requests} requests, {st.retries} retried")
    if failure is not None:
        missing = len(prompts) - len(done)
        raise EndpointError(f"{failure} ({len(done)} of {len(prompts)} prompts answered and saved, {missing} "
                            "missing)") from failure
    return [done[i] for i in range(len(prompts))]


def server_record(cfg: Mapping[str, Any], model: str, endpoint: Endpoint | None = None,
                  key_name: str = "prediction.served") -> dict[str, Any]:
    """What answered, for the record beside the outputs: the URL without credentials, the API, the
    declared model and revision, and what the server says of itself (``GET /models``: its model ids
    and roots; vLLM's ``GET /version``) when it says it. Never the key."""
    ep = endpoint or endpoint_of(cfg, key_name)
    record: dict[str, Any] = {"base_url": public_url(str(cfg.get("base_url"))), "api": cfg.get("api", "completions"),
                              "model": model, "revision": cfg.get("revision"),
                              "not_sent": list(cfg.get("not_sent") or [])}
    try:
        listed = ep.get("/models")
        record["server_models"] = [{k: m.get(k) for k in ("id", "root", "owned_by", "max_model_len") if k in m}
                                   for m in listed.get("data", []) if isinstance(m, dict)]
    except (EndpointError, AttributeError) as exc:
        record["server_models"] = None
        log(f"[served] {ep.url}/models did not list the models ({exc})")
    root = ep.base_url[: -len("/v1")] if ep.base_url.endswith("/v1") else None
    if root:
        probe = Endpoint(root, timeout_s=min(ep.timeout_s, 30.0), retries=0)
        probe._headers = ep._headers  # same key, if any
        try:
            version = probe.get("/version")
            record["server_version"] = version.get("version") if isinstance(version, dict) else None
        except EndpointError:
            record["server_version"] = None
    if record.get("server_models") and model not in [m.get("id") for m in record["server_models"]]:
        raise EndpointError(f"{key_name}.model: {ep.url} serves {[m.get('id') for m in record['server_models']]}, "
                            f"not {model!r}: serve this model there (vllm serve PATH, or --served-model-name "
                            f"{model!r}), or name the served one in {key_name}.model")
    return record


def answered(ep: Endpoint) -> list[dict[str, Any]]:
    """The model names and system fingerprints the answers carried (a hosted model can change behind
    its name: the fingerprint, where the provider gives one, says when it did)."""
    return [{"model": m, "system_fingerprint": fp} for m, fp in sorted(ep.stats.answered_by, key=str)]


def split_settings(section: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A config section (``prediction`` or ``translation``) as (what the outputs depend on, where the
    requests go): the second holds ``served.base_url`` and the transport keys. The rules give the
    first as the job's settings (a Snakemake param: changing it reruns the job) and the second apart,
    so that a server moved to another node, or more retries, reruns nothing that was answered. A
    section whose engine or backend is not ``served`` is given without its ``served`` keys: a study
    that does not use them keeps the params it had."""
    if section.get("engine", section.get("backend")) != "served":  # unused: not part of the job at all
        return {k: v for k, v in section.items() if k != "served"}, {}
    served = dict(section.get("served") or {})
    where = {k: served.pop(k) for k in ("base_url", *TRANSPORT_KEYS) if k in served}
    return ({**section, "served": served} if "served" in section else dict(section)), where


def merge_transport(settings: Mapping[str, Any], transport: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings with the served section's transport (``--served`` of the commands) put back."""
    if not transport:
        return dict(settings)
    return {**settings, "served": {**(settings.get("served") or {}), **transport}}


class ServedEngine:
    """Texts for prompts from an endpoint, for callers that want one text per prompt (translation):
    ``tokenizer`` (None for the chat API without a local tokenizer) renders completions prompts;
    with the chat API ``takes_messages`` tells the caller to give messages instead."""

    def __init__(self, s: Mapping[str, Any], model: str, tokenizer: Any, key_name: str,
                 context: tuple[int | None, str] = (None, "unknown")) -> None:
        self.settings, self.model, self.tokenizer, self.key_name = dict(s), model, tokenizer, key_name
        self.context = context
        cfg = self.settings.get("served") or {}
        self.takes_messages = cfg.get("api", "completions") == "chat"
        self.endpoint = endpoint_of(cfg, key_name)
        self.record: dict[str, Any] = {}

    def generate(self, prompts: Sequence[Prompt], labels: Sequence[str] | None = None) -> list[str]:
        self.record = server_record(self.settings.get("served") or {}, self.model, self.endpoint, self.key_name)
        samples = generate_served(prompts, {**self.settings, "n": 1}, self.model, key_name=self.key_name,
                                  labels=labels, count=_counter(self.tokenizer), endpoint=self.endpoint)
        self.record["answered_by"] = answered(self.endpoint)
        return [s[0]["text"] for s in samples]


def _counter(tokenizer: Any) -> Callable[[str], int] | None:
    """Tokens of a completion by the local tokenizer (n > 1: the server counts only the request)."""
    if tokenizer is None:
        return None
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
