"""Command-line entry point: ``python -m parallel_scaling <command> [args]``.

Each command is the ``main(argv)`` function of one module, imported only when that command runs,
so that ``--help`` and light commands never pay for importing torch.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

#: command name -> (module, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "source": ("sources", "Read the English source (synthetic/file/Hugging Face) into JSONL rows"),
    "translate": ("translate", "Make one language's parallel copy (template/import/transformers/vllm)"),
    "qc": ("qc", "Quality-control one language's translations; kept rows + per-item report"),
    "qc-table": ("qc_table", "Per-language QC summary table (CSV + Markdown)"),
    "mixture": ("mixtures", "Build one English + k parallel-language training mixture"),
    "benchmark": ("benchmarks", "Normalise one benchmark language file (generic/MGSM/...) to JSONL rows"),
    "build-tiny": ("tiny_model", "Build the embedded study's tiny multilingual initial model"),
    "train-grpo": ("grpo", "GRPO post-training of one initial model on one mixture (TRL)"),
    "train-sft": ("sft", "SFT of one initial model on one mixture (TRL), for RL-vs-SFT"),
    "manifest": ("manifest", "List files with sizes and sha256 (one input for many files)"),
    "predict": ("predict", "Answer every benchmark x language with one loaded checkpoint"),
    "score": ("scoring", "Score model responses (JSONL) and print per-language accuracy as CSV"),
    "analyze": ("analysis", "Accuracy, MTI and Parallel Scaling Law tables and figures from scored items"),
    "fit-law": ("fitlaw", "Fit y = a*x^b (+c) to an accuracy CSV (k=0 is the English-only point)"),
    "plot-training": ("training_plots", "Plot GRPO/SFT training curves from checkpoint curves.csv files"),
    "archive": ("archive", "Pack results, logs, report, config and provenance into a Workflow Run RO-Crate"),
    "verify-archive": ("archive_verify", "Check an archive: sha256 of every file, provenance chain, RO-Crate profiles"),
    "cost-plan": ("cost_plan", "Estimate GPU-hours and tokens per rule before launching a study"),
    "check-config": ("configcheck", "Check a study's config as planning does, naming file, line and key"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m parallel_scaling <command> [options]\n\ncommands:")
        for name, (_, desc) in sorted(COMMANDS.items()):
            print(f"  {name:<16} {desc}")
        return 0
    provenance: str | None = None
    if argv[0] == "--provenance":
        if len(argv) < 3:
            print("error: --provenance needs a path and a command", file=sys.stderr)
            return 2
        provenance, argv = argv[1], argv[2:]
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; choose from {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    module = importlib.import_module(f"parallel_scaling.{COMMANDS[name][0]}")

    def run() -> int:
        try:
            return int(module.main(rest) or 0)
        except (ValueError, RuntimeError, FileNotFoundError) as exc:
            # user-facing failures (bad config value, malformed row, missing file): one clear line
            print(f"error [{name}]: {exc}", file=sys.stderr)
            return 2

    if provenance is None:
        return run()
    from parallel_scaling.provenance import run_with_provenance

    return run_with_provenance(Path(provenance), name, rest, run)
