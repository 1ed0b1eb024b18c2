"""Responses saved as they are generated, so that a killed prediction job loses only what was in
flight.

A paper-scale prediction runs for many hours; a job killed at its SLURM time limit (or by a node
failure) must keep what it made, and its resubmission must not start over. The journal is a JSON
Lines file *beside* the job's output directory (Snakemake deletes the declared outputs of a failed
job, never this file): a header naming what is being generated, then one line per ``save``, each a
group of finished prompts with their samples (:class:`~parallel_scaling.evaluate.samples.Sample`:
text, finish reason, token counts). A rerun of the same job (same model content, prompts,
settings, engine and device) reads it back and generates only the missing prompts; each response
depends only on its prompt and the settings (per-batch seeds in the transformers engine, per-request
seeds in vLLM), so its final files are those of an uninterrupted run. Any other header (another
job's, or an older format whose lines held bare texts) means it is set aside, never mixed in. The
journal is deleted once the job's files and manifest are written.

What a kill loses: each ``save`` is written, flushed and fsynced before it returns, so a kill loses
what was not saved yet -- the transformers engine saves each batch as it ends (a kill loses the
batch being generated); the vLLM engine streams requests and saves what finished at most
``SAVE_EVERY`` seconds ago (:mod:`parallel_scaling.common.vllm_stream`): a kill loses the requests
in flight plus those finished in the last ``SAVE_EVERY`` seconds. A line cut off by the kill is
ignored (its prompts are generated again).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from parallel_scaling.evaluate.samples import Done, Sample

#: 2: samples with finish reason and token counts, any grouping (1: batches of bare texts)
FORMAT = "parallel-scaling prediction journal 2"


def identity(**parts: Any) -> str:
    """What the responses depend on, as one sha256 (prompts by their own hash, to keep it short)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _sample(value: Any) -> Sample:
    """A journal's sample, checked enough that a foreign line raises (and is skipped) here."""
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise ValueError(f"not a sample: {value!r:.80}")
    return {"text": value["text"], "finish_reason": value.get("finish_reason"),
            "prompt_tokens": int(value["prompt_tokens"]), "completion_tokens": int(value["completion_tokens"])}


class Journal:
    """Append-only record of finished prompts: one line ``{"responses": {prompt index: [sample, ...]}}``
    per :meth:`save`."""

    def __init__(self, path: str | Path, ident: str) -> None:
        self.path, self.ident = Path(path), ident

    def load(self) -> Done:
        """The samples an earlier run of this job saved; {} when there is none or it was another
        job's or another format's (then renamed to ``<path>.stale``, not deleted, and said so in the
        log). A line cut off by the kill is ignored: its prompts are generated again."""
        if not self.path.is_file():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except ValueError:
            head = {}
        if not isinstance(head, dict) or head.get("format") != FORMAT or head.get("identity") != self.ident:
            stale = self.path.with_name(self.path.name + ".stale")
            os.replace(self.path, stale)
            why = ("was written for other inputs (model, prompts or settings changed)"
                   if isinstance(head, dict) and head.get("format") == FORMAT else
                   f"is not a {FORMAT!r} file (an older version's journal)")
            print(f"[journal] {self.path} {why}; moved to {stale.name}, starting afresh", file=sys.stderr, flush=True)
            return {}
        done: Done = {}
        for line in lines[1:]:
            try:
                record = json.loads(line)
                done.update({int(i): [_sample(x) for x in r] for i, r in record["responses"].items()})
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # the line being written when the job was killed
        return done

    def save(self, made: Mapping[int, list[Sample]]) -> None:
        """Save finished prompts to disk, one line, flushed and fsynced: a kill right after loses
        none of them. The engines' ``save``."""
        if not made:
            return
        new = not self.path.is_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        cut = not new and self._ends_cut()
        with open(self.path, "a", encoding="utf-8") as fh:
            if new:
                fh.write(json.dumps({"format": FORMAT, "identity": self.ident}) + "\n")
            elif cut:  # the line a kill cut off stays alone on its line (ignored), not glued to this one
                fh.write("\n")
            record = {"responses": {str(i): r for i, r in made.items()}}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _ends_cut(self) -> bool:
        """Whether the file ends inside a line (the kill of an earlier run cut it)."""
        with open(self.path, "rb") as fh:
            if fh.seek(0, os.SEEK_END) == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
