"""Command ``qc-table``: per-language QC summary (CSV + Markdown) from the ``qc`` reports.

A module of its own because each command is one module's ``main``; the logic lives in
:mod:`parallel_scaling.qc` next to the checks whose reasons it counts.
"""

from __future__ import annotations

from parallel_scaling.qc import qc_table_main


def main(argv: list[str] | None = None) -> int:
    """``qc-table --reports R1.tsv [R2.tsv ...] --csv T.csv --markdown T.md``."""
    return qc_table_main(argv)
