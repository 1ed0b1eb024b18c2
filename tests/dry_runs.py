"""Many Snakemake dry runs of one study in one process (a test helper, run as a subprocess).

Why: each ``snakemake -n`` pays about 2 s of start-up here (imports), and the rebuild test plans
the study once per package module and resource entry it edits. Through Snakemake's Python API the
Snakefile is parsed and the DAG built afresh for every edit, with the rerun triggers of the
workflow profile, at a fraction of that cost.

    python tests/dry_runs.py WORKDIR CONFIGFILE EDITS.json  ->  JSON list of {rule: jobs} on stdout

EDITS.json is a list of ``{"path": ..., "text": ...}`` (null for an unchanged plan); each file is
restored after its plan. The package modules are dropped from ``sys.modules`` before every plan,
so that the Snakefile imports (and hashes) the edited code.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections import Counter
from pathlib import Path

import yaml


def plan(workdir: Path, configfile: str, triggers: list[str]) -> dict[str, int]:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.enums import Quietness, RerunTrigger
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    for name in [m for m in sys.modules if m == "parallel_scaling" or m.startswith("parallel_scaling.")]:
        del sys.modules[name]
    rerun = frozenset(RerunTrigger.parse_choice(t) for t in triggers)
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        wf = api.workflow(resource_settings=ResourceSettings(cores=1),
                          config_settings=ConfigSettings(configfiles=[workdir / configfile]),
                          snakefile=workdir / "Snakefile", workdir=workdir)
        dag = wf.dag(DAGSettings(rerun_triggers=rerun))
        dag.execute_workflow(executor="dryrun")
        # the API gives no public view of the plan; a dry run marks its jobs finished
        jobs = wf._workflow.dag.needrun_jobs(exclude_finished=False)
        return dict(Counter(job.rule.name for job in jobs))


def main() -> int:
    workdir, configfile, edits_file = Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3]
    profile = yaml.safe_load((workdir / "profiles/default/config.yaml").read_text())
    results = []
    for edit in json.loads(Path(edits_file).read_text()):
        path = Path(edit["path"]) if edit else None
        original = path.read_text() if path else None
        try:
            if path:
                path.write_text(edit["text"])
            with contextlib.redirect_stdout(io.StringIO()):
                results.append(plan(workdir, configfile, profile["rerun-triggers"]))
        finally:
            if path:
                path.write_text(original)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
