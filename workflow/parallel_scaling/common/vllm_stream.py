"""One continuous stream of requests through a vLLM engine, each result handed on as it finishes.

Why: reasoning models write answers whose lengths are long-tailed (on grade-school math: median
about 390 tokens, p99 3,100, the longest 29,000). Blocking ``LLM.generate`` calls on chunks of
prompts wait for each chunk's longest answer on an almost empty GPU before the next chunk starts;
a simple model of continuous batching puts that at 2-6x the decode steps of one stream (issue #35,
docs/performance.md). Here every request is queued in the engine at once (``LLM.enqueue``, vLLM's
public API for that), and the engine is stepped (``LLM.llm_engine.step()``) until none is left:
vLLM's scheduler admits a waiting request as soon as a sequence finishes, exactly as inside one
``LLM.generate`` over everything, while finished requests are handed to ``on_done`` in groups at
most ``every`` seconds apart, so that a caller can save them (the prediction journal) and report
progress without waiting for the end.

A response does not depend on scheduling: each request carries its own ``SamplingParams``, whose
``seed`` (when set) seeds that request's own generator in vLLM (``seed + i`` for its i-th of ``n``
samples); what runs beside it never changes its random draws. Used by the ``vllm`` prediction
engine (``evaluate/predict.py``) and the ``vllm`` translation backend (``data/translate.py``).
Imports of vLLM stay inside the functions (the main environment has none).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

#: seconds between two hand-overs of finished requests (saves of the prediction journal): a kill
#: loses the requests in flight and at most this long of finished ones
SAVE_EVERY = 5.0


def final_only(params: Any) -> Any:
    """A copy of ``SamplingParams`` that returns each request's output once, when it finishes (what
    ``LLM.generate`` sets; the default streams every token's output)."""
    from vllm.sampling_params import RequestOutputKind

    params = params.clone()
    params.output_kind = RequestOutputKind.FINAL_ONLY
    return params


def stream(llm: Any, prompts: Mapping[int, Any], params: Any | Mapping[int, Any],
           on_done: Callable[[dict[int, Any]], None] | None = None, every: float | None = None
           ) -> dict[int, Any]:
    """Generate every prompt of ``prompts`` (key -> vLLM prompt, e.g. a ``TokensPrompt`` dict) in one
    continuous stream of ``llm`` (a ``vllm.LLM``), with ``params`` (one ``SamplingParams`` for all, or
    one per key). Returns key -> finished ``RequestOutput``; ``on_done`` gets the requests that
    finished since its last call, at most ``every`` seconds apart (default ``SAVE_EVERY``) and once
    more at the end (never empty). Requests are queued in key order (vLLM admits them first come,
    first served). If anything stops the loop (``on_done`` raising included), the requests still in
    the engine are aborted, so that the engine can serve the next call."""
    every = SAVE_EVERY if every is None else every
    keys = list(prompts)
    if not keys:
        return {}
    if isinstance(params, Mapping):
        per_request: Sequence[Any] = [final_only(params[k]) for k in keys]
    else:
        per_request = [final_only(params)] * len(keys)
    request_ids = llm.enqueue([prompts[k] for k in keys], list(per_request), use_tqdm=False)
    # enqueue returns the engine's internal ids, "<id>-<8 random characters>" (vLLM 0.30's
    # InputProcessor.assign_request_id); outputs carry "<id>", the one LLM numbered the request with
    external = [request_id.rsplit("-", 1)[0] for request_id in request_ids]
    key_of = dict(zip(external, keys, strict=True))
    engine = llm.llm_engine
    results: dict[int, Any] = {}
    group: dict[int, Any] = {}
    last = time.monotonic()
    try:
        while engine.has_unfinished_requests():
            for output in engine.step():
                if output.finished:
                    key = key_of[output.request_id]
                    results[key] = group[key] = output
            if group and on_done is not None and time.monotonic() - last >= every:
                on_done(group)
                group, last = {}, time.monotonic()
    except BaseException:
        # by the id LLM gave: it also names the n samples' child requests
        engine.abort_request([r for r, k in zip(external, keys) if k not in results])
        raise
    if group and on_done is not None:
        on_done(group)
    missing = [k for k in keys if k not in results]
    if missing:
        raise RuntimeError(f"vLLM's engine stopped with {len(missing)} of {len(keys)} requests unfinished "
                           f"(first: {missing[0]})")
    return results
