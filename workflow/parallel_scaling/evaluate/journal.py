"""Responses saved as they are generated, so that a killed prediction job loses at most one batch.

A paper-scale prediction runs for many hours; until now it wrote its files only at the end, so a job
killed at its SLURM time limit (or by a node failure) kept nothing and its resubmission started over,
to be killed again. The journal is a JSON Lines file *beside* the job's output directory (Snakemake
deletes the declared outputs of a failed job, never this file): a header naming what is being
generated, then one line per finished batch. A rerun of the same job (same model content, prompts,
settings, engine and device) reads it back and generates only the missing batches, with the same
batch composition and per-batch seeds, so its final files are those of an uninterrupted run. Any
other header means another job's journal: it is set aside, never mixed in. The journal is deleted
once the job's files and manifest are written.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

FORMAT = "parallel-scaling prediction journal 1"


def identity(**parts: Any) -> str:
    """What the responses depend on, as one sha256 (prompts by their own hash, to keep it short)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()
    return "sha256:" + hashlib.sha256(blob).hexdigest()


class Journal:
    """Append-only record of finished batches: ``{"batch": b, "responses": {prompt index: [...]}}``."""

    def __init__(self, path: str | Path, ident: str) -> None:
        self.path, self.ident = Path(path), ident

    def load(self) -> dict[int, list[str]]:
        """The responses an earlier run of this job saved; {} when there is none or it was another
        job's (then renamed to ``<path>.stale``, not deleted, and said so in the log). A line cut
        off by the kill is ignored: its batch is generated again."""
        if not self.path.is_file():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            head = json.loads(lines[0]) if lines else {}
        except ValueError:
            head = {}
        if head.get("format") != FORMAT or head.get("identity") != self.ident:
            stale = self.path.with_name(self.path.name + ".stale")
            os.replace(self.path, stale)
            print(f"[journal] {self.path} was written for other inputs (model, prompts or settings "
                  f"changed); moved to {stale.name}, starting afresh", file=sys.stderr, flush=True)
            return {}
        done: dict[int, list[str]] = {}
        for line in lines[1:]:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the batch being written when the job was killed
            done.update({int(i): list(r) for i, r in record["responses"].items()})
        return done

    def append(self, batch: int, responses: Mapping[int, list[str]]) -> None:
        """Save one finished batch to disk (flushed and fsynced: a kill right after loses nothing)."""
        new = not self.path.is_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            if new:
                fh.write(json.dumps({"format": FORMAT, "identity": self.ident}) + "\n")
            record = {"batch": batch, "responses": {str(i): r for i, r in responses.items()}}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
