"""What a prediction job's responses cost and how they ended: ``_summary.json`` beside the
predictions, and the same in the job's log.

A reasoning model cut at ``max_new_tokens`` is a finding, not noise: the share of answers cut by the
length limit is given per benchmark and language (next to the completion lengths: mean, median,
p90, p99, longest), with the prompt and completion token totals and this run's generation speed.
Only the speed depends on the run (and on the machine); everything else follows from the rows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

SUMMARY_FILE = "_summary.json"


def percentile(sorted_values: Sequence[int], q: float) -> int | None:
    """Nearest-rank percentile (``q`` in 0..100) of sorted values; None for none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return int(sorted_values[rank - 1])


def file_summary(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Finish reasons, length-cut share and completion lengths of one (benchmark, language) file."""
    reasons = Counter(str(r.get("finish_reason") or "unknown") for r in rows)
    lengths = sorted(int(r["completion_tokens"]) for r in rows if r.get("completion_tokens") is not None)
    n = len(rows)
    return {
        "responses": n,
        "finish_reasons": dict(sorted(reasons.items())),
        "cut_by_length": round(reasons.get("length", 0) / n, 4) if n else None,
        "prompt_tokens": sum(int(r.get("prompt_tokens") or 0) for r in rows),
        "completion_tokens": sum(lengths),
        "completion_length": {"mean": round(sum(lengths) / len(lengths), 1) if lengths else None,
                              "p50": percentile(lengths, 50), "p90": percentile(lengths, 90),
                              "p99": percentile(lengths, 99), "max": lengths[-1] if lengths else None},
    }


def summarize(files: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]], *, max_new_tokens: int,
              generated_prompts: int, generated_tokens: int, seconds: float) -> dict[str, Any]:
    """The job's summary: per (benchmark, language) file and in all, and this run's speed
    (``generated_*``: what this run generated, not what it read back from the journal)."""
    per_file = [{"benchmark": b, "lang": lg, **file_summary(rows)} for (b, lg), rows in files.items()]
    everything = file_summary([r for rows in files.values() for r in rows])
    return {
        "max_new_tokens": max_new_tokens,
        **everything,
        "this_run": {"prompts": generated_prompts, "completion_tokens": generated_tokens,
                     "seconds": round(seconds, 3),
                     "tokens_per_s": round(generated_tokens / seconds, 1) if seconds > 0 else None},
        "files": per_file,
    }


def log_lines(summary: Mapping[str, Any]) -> list[str]:
    """The summary as the job's log shows it: one line per file, one for the run."""
    run = summary["this_run"]
    speed = f"{run['tokens_per_s']:.1f} tokens/s" if run["tokens_per_s"] is not None else "no generation"
    lines = [f"[summary] this run: {run['prompts']} prompts, {run['completion_tokens']} completion tokens in "
             f"{run['seconds']:.1f} s of generation: {speed}"]
    for f in [*summary["files"], {"benchmark": "all", "lang": "", **summary}]:
        length = f["completion_length"]
        cut = f"{100 * f['cut_by_length']:.1f}%" if f["cut_by_length"] is not None else "-"
        lines.append(f"[summary] {f['benchmark']}{'/' if f['lang'] else ''}{f['lang']}: {f['responses']} responses, "
                     f"{cut} cut at max_new_tokens ({summary['max_new_tokens']}); completion tokens mean "
                     f"{length['mean']}, p50 {length['p50']}, p90 {length['p90']}, p99 {length['p99']}, "
                     f"max {length['max']}")
    return lines
