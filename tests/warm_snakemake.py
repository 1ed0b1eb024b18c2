"""`python -m snakemake ARGS` for the tests, forked from a warm server (parallel_scaling/jobs/warm.py)
that imported Snakemake (and torch & co. for the jobs) once: each `snakemake` call of the suite would
otherwise spend 1.5-2 CPU-seconds importing it, and the suite makes about 160 of them. Snakemake's
own `main` runs in the worker with this process's descriptors, environment and directory; without a
server it runs here. Not named `snakemake`: the stale-lock check (jobs/locks.py) takes processes of
that name for Snakemakes working in their directory, and this one's worker is no child of it."""

import sys

from parallel_scaling.jobs import warm

if __name__ == "__main__":
    code = warm.run_warm(sys.argv[1:], module="snakemake") if warm.eligible() else None
    if code is None:
        from snakemake.cli import main

        main(sys.argv[1:])
    sys.exit(code)
