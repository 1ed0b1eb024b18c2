"""How a response ended and what it cost: vLLM's finish reasons in ours, and the job's summary
(``_summary.json``) from the rows, rows of older runs without the fields included."""

from __future__ import annotations

from types import SimpleNamespace

from parallel_scaling.evaluate.samples import vllm_finish
from parallel_scaling.evaluate.summary import file_summary, log_lines, percentile, summarize


def test_vllm_finish_reasons_become_ours():
    out = lambda reason, stop=None: SimpleNamespace(finish_reason=reason, stop_reason=stop)  # noqa: E731
    assert vllm_finish(out("stop")) == "eos"  # the EOS token: stop_reason None
    assert vllm_finish(out("stop", 151645)) == "eos"  # a stop token id of the generation config
    assert vllm_finish(out("stop", "</answer>")) == "stop_string"
    assert vllm_finish(out("length")) == "length"
    assert vllm_finish(out("abort")) is None and vllm_finish(out(None)) is None


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([7], 99) == 7 and percentile([], 50) is None


def _row(reason, completion, prompt=10):
    return {"finish_reason": reason, "completion_tokens": completion, "prompt_tokens": prompt}


def test_the_summary_gives_the_length_cut_share_per_file_and_in_all():
    files = {("gsm8k", "en"): [_row("eos", 100), _row("length", 400), _row("eos", 50), _row("eos", 30)],
             ("gsm8k", "sw"): [_row("length", 400), _row("length", 400)]}
    s = summarize(files, max_new_tokens=400, generated_prompts=6, generated_tokens=1380, seconds=2.0)
    en, sw = s["files"]
    assert (en["benchmark"], en["lang"], en["cut_by_length"], en["finish_reasons"]) == ("gsm8k", "en", 0.25,
                                                                                       {"eos": 3, "length": 1})
    assert en["completion_length"] == {"mean": 145.0, "p50": 50, "p90": 400, "p99": 400, "max": 400}
    assert sw["cut_by_length"] == 1.0 and s["cut_by_length"] == 0.5
    assert (s["responses"], s["prompt_tokens"], s["completion_tokens"]) == (6, 60, 1380)
    assert s["this_run"] == {"prompts": 6, "completion_tokens": 1380, "seconds": 2.0, "tokens_per_s": 690.0}
    lines = log_lines(s)
    assert lines[0] == "[summary] this run: 6 prompts, 1380 completion tokens in 2.0 s of generation: 690.0 tokens/s"
    assert "[summary] gsm8k/sw: 2 responses, 100.0% cut at max_new_tokens (400)" in lines[2]
    assert lines[-1].startswith("[summary] all: 6 responses, 50.0% cut")


def test_rows_without_the_fields_count_as_unknown():
    """Rows of older runs (or made elsewhere) lack the fields: unknown reason, no length, not a cut."""
    s = file_summary([{"response": "x"}, _row("length", 8)])
    assert s["finish_reasons"] == {"length": 1, "unknown": 1} and s["cut_by_length"] == 0.5
    assert s["completion_length"]["mean"] == 8.0 and s["prompt_tokens"] == 10
    nothing = summarize({}, max_new_tokens=8, generated_prompts=0, generated_tokens=0, seconds=0.0)
    assert nothing["cut_by_length"] is None and nothing["this_run"]["tokens_per_s"] is None
    assert "no generation" in log_lines(nothing)[0]
