"""parallel-scaling: the logic behind the Snakemake pipeline.

Every Snakemake rule calls ``python -m parallel_scaling <command>``; each command lives in the
module named after what it does (see :mod:`parallel_scaling.cli`). Modules imported while the
Snakefile is parsed (``study``, ``prompts``, ``synth``) must stay light: no torch, no transformers.
"""

__version__ = "0.1.0"
