"""Command ``pin-code``: keep a command's finished (and resumable) jobs after a code change that
you have judged not to affect them.

    python -m parallel_scaling pin-code train-grpo --configfile configs/parallel_paper.yaml \\
        --reason "log message fix in train/shared.py"

Finds the code hash the study's finished jobs of that command ran (their provenance records,
``logs/<study>/**/*.prov.json``), shows which modules differ from the code here now, and records
the pin in ``code-pins.json`` (:mod:`parallel_scaling.jobs.codepins`): from then on the workflow
tracks the old hash for this exact code, so ``snakemake -n`` schedules none of those jobs again
and a killed GRPO run resumes from its checkpoint. Any later edit of those modules is not covered.
``--from HASH`` chooses among several older hashes; ``--dry-run`` shows what would be pinned.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from parallel_scaling.jobs import codepins
from parallel_scaling.jobs.codedeps import actual_code_hash, command_modules, package_modules
from parallel_scaling.jobs.integrity import sha256_file


def finished_runs(logs: Path, command: str) -> dict[str, list[dict[str, Any]]]:
    """Provenance records of the finished jobs of ``command`` under ``logs``, by tracked code hash."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(logs.rglob("*.prov.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("command") != command or record.get("status") != "ok":
            continue
        tracked = (record.get("code") or {}).get("code_hash")
        if tracked:
            out.setdefault(tracked, []).append({"path": str(path), **record})
    return out


def changed_modules(command: str, record: dict[str, Any]) -> list[str]:
    """Modules the command can run whose bytes differ from those a finished job loaded (or that
    it did not load: new modules)."""
    known = package_modules()
    ran = (record.get("code") or {}).get("modules") or {}
    return [m for m in command_modules(command)
            if m in known and ran.get(m) != sha256_file(known[m])
            and (m in ran or m not in ("__init__", "__main__"))]  # the package's own, never recorded


def main(argv: list[str] | None = None) -> int:
    from parallel_scaling.commands import COMMANDS
    from parallel_scaling.jobs.provenance import code_version, login_name
    from parallel_scaling.plan import check_config as configcheck

    ap = argparse.ArgumentParser(prog="parallel_scaling pin-code", description=__doc__.splitlines()[0])
    ap.add_argument("command", help="the command whose jobs to keep (train-grpo, train-sft, predict, ...)")
    ap.add_argument("--configfile", nargs="+", default=["config.yaml"], help="the study's config file(s)")
    ap.add_argument("--reason", required=True, help="why the change does not affect the results (recorded)")
    ap.add_argument("--from", dest="old", default=None, help="the older code hash to keep (when there are several)")
    ap.add_argument("--dry-run", action="store_true", help="show what would be pinned, write nothing")
    a = ap.parse_args(argv)
    if a.command not in COMMANDS:
        print(f"error [pin-code]: unknown command {a.command!r}; choose from {', '.join(sorted(COMMANDS))}",
              file=sys.stderr)
        return 2
    config, _origins = configcheck.load_study(a.configfile)
    study = config.get("study") or "tiny"
    logs = Path("logs") / study
    actual = actual_code_hash(a.command)
    if codepins.pin_for(a.command, actual):
        print(f"pin-code: {a.command} is already pinned for this code ({codepins.pins_path()})")
        return 0
    runs = {h: r for h, r in finished_runs(logs, a.command).items() if h != actual}
    if a.old:
        runs = {h: r for h, r in runs.items() if h == a.old}
    if not runs:
        print(f"error [pin-code]: no finished {a.command} job in {logs}/ ran code other than this checkout's "
              f"({actual})" + (f" with hash {a.old}" if a.old else "") + "; nothing to pin", file=sys.stderr)
        return 1
    if len(runs) > 1:
        listing = "; ".join(f"{h} ({len(r)} jobs)" for h, r in sorted(runs.items()))
        print(f"error [pin-code]: finished {a.command} jobs ran several older codes: {listing}; choose one "
              "with --from", file=sys.stderr)
        return 1
    (old, records), = runs.items()
    modules = changed_modules(a.command, records[0])
    pin = {"command": a.command, "pinned": old, "actual": actual, "modules_changed": modules,
           "jobs_kept": len(records), "study": study, "reason": a.reason, "by": login_name(),
           "at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "code_version": code_version()}
    print(f"pin-code: {a.command}: this code ({actual}) will stand for {old}, the code of {len(records)} finished "
          f"job(s) in {logs}/; modules changed since: {', '.join(modules) or 'none found'}")
    if a.dry_run:
        print("pin-code: --dry-run, nothing written")
        return 0
    path = codepins.add(pin)
    print(f"pin-code: recorded in {path}; `snakemake -n` no longer reruns those jobs for this change")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
