"""The command table: every ``python -m parallel_scaling <command>``, the module that runs it and a
one-line description.

It sits below everything that needs it (the CLI dispatches on it; code hashes, ``pin-code`` and the
archive's crate map a command to its module) and imports nothing, so that none of them has to import
the CLI: the package has no import circles (checked by tests/test_imports.py).
"""

from __future__ import annotations

#: command name -> ("module[:function]" below the package, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    # data.smk
    "source": ("data.source", "Read the English source (synthetic/file/Hugging Face) into JSONL rows"),
    "translate": ("data.translate", "Make one language's parallel copy (template/import/transformers/vllm)"),
    "qc": ("data.qc", "Quality-control one language's translations; kept rows + per-item report"),
    "qc-table": ("data.qc:qc_table_main", "Per-language QC summary table (CSV + Markdown)"),
    "mixture": ("data.mixture", "Build one English + k parallel-language training mixture"),
    "benchmark": ("data.benchmark", "Normalise one benchmark language file (generic/MGSM/...) to JSONL rows"),
    # train.smk
    "build-init-model": ("train.build_init_model", "Build the embedded study's tiny multilingual initial model"),
    "train-grpo": ("train.grpo", "GRPO post-training of one initial model on one mixture (TRL)"),
    "train-sft": ("train.sft", "SFT of one initial model on one mixture (TRL), for RL-vs-SFT"),
    # evaluate.smk
    "benchmark-manifest": ("evaluate.benchmark_manifest", "List a benchmark's files with sizes and sha256"),
    "predict": ("evaluate.predict", "Answer every benchmark x language with one loaded checkpoint"),
    "reuse-predictions": ("evaluate.reuse", "One checkpoint's predictions under another run's name (evaluated once)"),
    "score": ("evaluate.score", "Score model responses (JSONL) and print per-language accuracy as CSV"),
    # analysis.smk
    "analyze": ("analysis.analyze", "Accuracy, MTI and Parallel Scaling Law tables and figures from scored items"),
    "plot-training": ("analysis.plot_training", "Plot GRPO/SFT training curves from checkpoint curves.csv files"),
    # archive.smk
    "archive": ("archive.pack", "Pack results, logs, report, config and provenance into a Workflow Run RO-Crate"),
    # for researchers, outside the DAG
    "fit-law": ("analysis.fit_law", "Fit y = a*x^b (+c) to an accuracy CSV (k=0 is the English-only point)"),
    "verify-archive": ("archive.verify", "Check an archive: sha256 of every file, provenance chain, RO-Crate profiles"),
    "cost-plan": ("plan.cost_plan", "Estimate GPU-hours and tokens per rule before launching a study"),
    "answer-lengths": ("plan.answer_lengths", "Completion-token figures of prediction files: the cost plan's measured answer lengths"),
    "check-config": ("plan.check_config", "Check a study's config as planning does, naming file, line and key"),
    "config-docs": ("plan.config_docs", "Print the configuration reference (docs/configuration.md) from the config schema"),
    "pin-code": ("plan.pin_code", "Keep a command's finished jobs after a code change you judged harmless"),
}
