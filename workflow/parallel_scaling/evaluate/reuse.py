"""Command ``reuse-predictions``: one checkpoint's predictions under another run's name.

In an observational study the trained model of one pair can be the starting model of another
(DeepScaleR starts from R1-Distill-Qwen-1.5B, which is itself the trained model of a pair). Both
runs evaluate the same checkpoint with the same prompts and settings; generating twice would cost
the GPU-hours twice (parallel_scaling.plan.prediction_jobs.duplicates). This command copies the
predictions of the run that generated them into the other run's folder, with the other run's
model, paradigm and mixture fields, so that scoring and tables see two runs as before; each row
says where it came from (``reused_from``).

    python -m parallel_scaling reuse-predictions --input BENCH LANG FILE [...] --meta JSON --outdir DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from parallel_scaling.dataio.jsonl import read_jsonl, write_json, write_jsonl
from parallel_scaling.jobs.integrity import add_token_argument


def relabel(rows: list[dict[str, Any]], meta: dict[str, Any], source: str) -> list[dict[str, Any]]:
    """Rows with ``meta``'s fields in place of their own, and where they were generated."""
    return [{**row, **meta, "reused_from": source} for row in rows]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="reuse-predictions", description=__doc__.splitlines()[0])
    p.add_argument("--input", nargs=3, action="append", required=True, metavar=("BENCHMARK", "LANG", "JSONL"),
                   help="a prediction file of the run that generated them; the shards of one benchmark "
                        "language in order (repeat)")
    p.add_argument("--meta", required=True, help="JSON of this run's fields (model, paradigm, mixture, k, ...)")
    p.add_argument("--source", required=True, help="the run that generated the predictions (model/paradigm/...)")
    p.add_argument("--settings", required=True, help="the generating run's _settings.json")
    p.add_argument("--outdir", required=True, help="writes OUTDIR/<benchmark>/<lang>.jsonl")
    add_token_argument(p)
    a = p.parse_args(argv)
    from parallel_scaling.jobs.integrity import write_manifest

    meta = json.loads(a.meta)
    files: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for bench, lang, path in a.input:
        files.setdefault((bench, lang), []).extend(read_jsonl(path))
    outdir = Path(a.outdir)
    for (bench, lang), rows in files.items():
        write_jsonl(outdir / bench / f"{lang}.jsonl", relabel(rows, meta, a.source))
    settings = json.loads(Path(a.settings).read_text())
    write_json(outdir / "_settings.json", {**settings, "meta": meta, "reused_from": a.source})
    write_manifest(outdir, a.manifest_token)
    return 0
