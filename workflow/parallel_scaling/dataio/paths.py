"""Where the workflow's own files are, relative to the installed package (one place for all)."""

from pathlib import Path

#: workflow/parallel_scaling
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: workflow/ (rules, schemas, resources, report captions)
WORKFLOW_DIR = PACKAGE_DIR.parent
#: the repository (Snakefile, config.yaml, envs/, profiles/)
REPO_DIR = WORKFLOW_DIR.parent
#: data files the code reads: prompt sets, benchmark presets, translation prompts, GPU figures
RESOURCE_DIR = WORKFLOW_DIR / "resources"
#: the config schema: every key with its type, default and description
SCHEMA_FILE = WORKFLOW_DIR / "schemas" / "config.schema.json"
