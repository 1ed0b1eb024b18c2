"""``manifest``: one small JSON listing files with their sizes and sha256.

Why: a prediction job reads every (benchmark, language) file of a benchmark. Depending on one
manifest per benchmark instead of on each file keeps a paper-scale DAG (thousands of files) quick
to plan, while the manifest's checksums still change whenever any listed file does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from parallel_scaling.dataio.jsonl import write_json
from parallel_scaling.jobs.integrity import sha256_file


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmark-manifest", description=__doc__)
    p.add_argument("files", nargs="+")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    missing = [f for f in a.files if not Path(f).exists()]
    if missing:
        raise FileNotFoundError(f"manifest: missing {', '.join(missing)}")
    write_json(a.out, {f: {"bytes": Path(f).stat().st_size, "sha256": sha256_file(f)} for f in a.files})
    return 0
