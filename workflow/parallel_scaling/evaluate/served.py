"""``prediction.engine: served``: the ``predict`` job's prompts answered by a model on a server.

The requests, retries and the endpoint's record are :mod:`parallel_scaling.common.served`'s (shared
with the translation backend); here is what is particular to predictions: the prompt of each item
(the text the in-process engines see, or the prompt set's messages for the chat API), the names of
items in messages, and ``_served.json`` beside the predictions: what answered (the URL without
credentials, the declared model and revision, the server's model list and version, the model names
and fingerprints its answers carried) and the job's token totals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from parallel_scaling.common import served
from parallel_scaling.dataio.jsonl import write_json
from parallel_scaling.common.prompts import prompt_set
from parallel_scaling.common.served import identity_settings, merge_transport  # noqa: F401 (predict's names)

KEY = "prediction.served"


def is_chat(s: Mapping[str, Any]) -> bool:
    return s.get("engine") == "served" and (s.get("served") or {}).get("api") == "chat"


def chat_messages(question: str, lang: str, set_name: str) -> list[dict[str, str]]:
    """The prompt set's messages for one question: the user turn, and the forced assistant prefix,
    if the set has one, as an assistant turn the server continues (vLLM's continue_final_message)."""
    ps = prompt_set(set_name)
    user = ps.get("user", {})
    template = user.get(lang, user.get("default"))
    if template is None:
        raise ValueError(f"prompt set {set_name!r} has no template for language {lang!r} and no default")
    messages = [{"role": "user", "content": template.format(question=question)}]
    prefix = (ps.get("assistant_prefix") or {}).get(lang, "")
    if prefix:
        messages.append({"role": "assistant", "content": prefix})
    return messages


def load_tokenizer(model: str, s: Mapping[str, Any]) -> Any:
    """The local tokenizer of ``model`` (its chat template renders a completions prompt, as for the
    other engines); with the chat API it is optional: None when ``model`` is only a served name."""
    from transformers import AutoTokenizer

    from parallel_scaling.jobs.preflight import check_model_path

    if is_chat(s):
        try:
            return AutoTokenizer.from_pretrained(model)
        except (OSError, ValueError):
            return None
    check_model_path(model, key="model")
    return AutoTokenizer.from_pretrained(model)


def generate(model: str, prompts: list[str], s: Mapping[str, Any], tokenizer: Any, prompt_set_name: str,
             jobs: Sequence[tuple[str, str, list[dict[str, Any]]]], outdir: str | Path,
             done: served.Done | None, save: served.Save | None, progress: Any = None) -> list[list[served.Sample]]:
    """Every prompt's samples from the endpoint (only those not in ``done``); writes
    ``OUTDIR/_served.json`` once every prompt is answered."""
    cfg = dict(s.get("served") or {})
    name = str(cfg.get("model") or model)
    endpoint = served.endpoint_of(cfg, KEY)
    record = served.server_record(cfg, name, endpoint, KEY)  # a wrong name or URL fails here, first
    labels = [f"item {r['id']!r} of {bench}/{lang}" for bench, lang, rows in jobs for r in rows]
    asked: Sequence[served.Prompt] = prompts
    if is_chat(s):
        asked = [chat_messages(r["question"], lang, prompt_set_name) for _, lang, rows in jobs for r in rows]
    count: Callable[[str], int] | None = served._counter(tokenizer)
    samples = served.generate_served(asked, s, name, key_name=KEY, labels=labels, count=count, done=done,
                                     save=save, endpoint=endpoint, progress=progress)
    st = endpoint.stats
    record.update(answered_by=served.answered(endpoint), requests=st.requests, retried=st.retries,
                  tokens={"prompt": sum(x[0]["prompt_tokens"] or 0 for x in samples),
                          "completion": sum(y["completion_tokens"] or 0 for x in samples for y in x)})
    write_json(Path(outdir) / "_served.json", record)
    return samples
