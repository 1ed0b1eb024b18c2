"""What a SLURM profile (``slurm/config.yaml``) gives each rule, with the line that sets it, and the
checks made on it before anything is submitted.

Why here and not in Snakemake: the plugin submits whatever it is given. A site placeholder left in
the shipped profile (``slurm_account: myaccount``) or a partition the cluster does not have goes to
``sbatch`` as is, and a job whose estimated hours exceed its ``runtime`` is killed at its limit,
resubmitted with the same limit and killed again. The workflow (``workflow/rules/common.smk``,
``onstart``: after planning, before the first submission) and ``cost-plan`` both call the functions
below, and every message names the profile file and line to edit.

Pure functions except :func:`cluster_partitions` (asks ``sinfo``) and :func:`profile_file`
(reads the command line Snakemake was started with).
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

#: values shipped in slurm/config.yaml that can only be the site's to fill in: a job submitted with
#: one of them is refused (name of the resource -> placeholder values, compared case-insensitively)
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "slurm_account": ("myaccount", "your_account", "youraccount", "changeme", "edit-me"),
    "slurm_partition": ("mypartition", "your_partition", "changeme", "edit-me"),
}

#: profile file names Snakemake 9 reads from a profile folder, in its order of preference
PROFILE_NAMES = ("config.v9+.yaml", "config.v8+.yaml", "config.yaml")


@dataclass(frozen=True)
class Setting:
    """One resource value of a profile: where it came from (file and line, 0 when unknown)."""

    value: Any
    file: str
    line: int

    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


def _as_mapping(entry: Any) -> dict[str, Any]:
    """A resources entry as a mapping: profiles may give ``{k: v}`` or the CLI form ``["k=v", ...]``."""
    if isinstance(entry, Mapping):
        return dict(entry)
    out: dict[str, Any] = {}
    for item in entry or []:
        key, _, value = str(item).partition("=")
        out[key.strip()] = value.strip()
    return out


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line number (1-based) of every mapping key of a block-style YAML file, by key path."""
    lines: dict[tuple[str, ...], int] = {}
    stack: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.lstrip().startswith("#"):
            continue
        hit = re.match(r"^(\s*)([A-Za-z0-9_.+\-]+)\s*:(\s|$)", raw)
        if not hit:
            continue
        indent = len(hit.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, hit.group(2)))
        lines[tuple(k for _, k in stack)] = number
    return lines


@dataclass
class Profile:
    """A SLURM profile's resources: ``default-resources`` and per rule ``set-resources``."""

    file: str
    defaults: dict[str, Setting]
    per_rule: dict[str, dict[str, Setting]]

    def setting(self, rule: str, key: str) -> Setting | None:
        """What the profile gives ``rule`` for ``key`` (set-resources over default-resources)."""
        return self.per_rule.get(rule, {}).get(key) or self.defaults.get(key)


def load_profile(path: str | Path) -> Profile:
    """Read a profile folder or file; raises ValueError naming the file when it is no mapping."""
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in PROFILE_NAMES if (path / n).is_file()]
        if not found:
            raise FileNotFoundError(f"{path}: no profile file ({', '.join(PROFILE_NAMES)})")
        path = found[0]
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a profile must be a mapping of options")
    lines = _key_lines(text)
    name = str(path)
    defaults = {k: Setting(v, name, lines.get(("default-resources", k), 0))
                for k, v in _as_mapping(data.get("default-resources")).items()}
    per_rule: dict[str, dict[str, Setting]] = {}
    set_resources = data.get("set-resources") or {}
    if isinstance(set_resources, Mapping):
        for rule, res in set_resources.items():
            per_rule[str(rule)] = {k: Setting(v, name, lines.get(("set-resources", str(rule), k), 0))
                                   for k, v in _as_mapping(res).items()}
    else:  # ["rule:key=value", ...]
        for item in set_resources:
            target, _, value = str(item).partition("=")
            rule, _, key = target.partition(":")
            per_rule.setdefault(rule.strip(), {})[key.strip()] = Setting(value.strip(), name, 0)
    return Profile(name, defaults, per_rule)


def executor(path: str | Path) -> str | None:
    """The ``executor`` a profile folder or file names (None when none, or unreadable)."""
    path = Path(path)
    if path.is_dir():
        found = [path / n for n in PROFILE_NAMES if (path / n).is_file()]
        if not found:
            return None
        path = found[0]
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    value = data.get("executor") if isinstance(data, Mapping) else None
    return str(value) if value else None


def profile_file(argv: Sequence[str] | None = None, cwd: str | Path = ".") -> Path | None:
    """The profile folder Snakemake was started with (``--profile X`` on its command line), resolved
    as Snakemake resolves it: a folder relative to the working directory, else the user's
    ``~/.config/snakemake/X``; None when there is none (the messages then name the key only)."""
    argv = list(sys.argv if argv is None else argv)
    value = None
    for i, arg in enumerate(argv):
        if arg == "--profile" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--profile="):
            value = arg.split("=", 1)[1]
    if not value:
        return None
    for candidate in (Path(cwd) / value, Path(value), Path.home() / ".config" / "snakemake" / value):
        if candidate.is_dir():
            return candidate
    return None


def _same(a: Any, b: Any) -> bool:
    return str(a).strip() == str(b).strip()


def _origin(profile: Profile | None, rule: str, key: str, value: Any) -> str:
    """Where the value a job got was set: the profile line when the profile holds that value."""
    setting = profile.setting(rule, key) if profile else None
    if setting is not None and _same(setting.value, value):
        section = "set-resources: " + rule if rule in profile.per_rule and key in profile.per_rule[rule] \
            else "default-resources"
        return f"{setting.where()} ({section}: {key})"
    return f"{key} (from the command line or another profile: --default-resources/--set-resources)"


def placeholder_errors(jobs: Iterable[tuple[str, Mapping[str, Any]]],
                       profile: Profile | None) -> list[str]:
    """Jobs about to be submitted whose resources still hold a site placeholder, one message per
    resource and value (not per job: a study has hundreds of jobs)."""
    seen: dict[tuple[str, str], list[str]] = {}
    for rule, res in jobs:
        for key, values in PLACEHOLDERS.items():
            value = res.get(key)
            if value is not None and str(value).strip().lower() in values:
                seen.setdefault((key, str(value)), [])
                if rule not in seen[(key, str(value))]:
                    seen[(key, str(value))].append(rule)
    out = []
    for (key, value), rules in seen.items():
        hint = ("your account (`sacctmgr show assoc user=$USER format=account`), or delete the line "
                "to let the SLURM plugin guess it" if key == "slurm_account"
                else "a partition `sinfo -o %P` lists")
        out.append(f"{_origin(profile, rules[0], key, value)}: {value!r} is the shipped placeholder, "
                   f"not a value of your site (jobs of {', '.join(sorted(rules))}); put {hint}")
    return out


def cluster_partitions(timeout: float = 30) -> set[str] | None:
    """The partitions the cluster has (``sinfo``), or None when sinfo is missing or fails."""
    if not shutil.which("sinfo"):
        return None
    try:
        res = subprocess.run(["sinfo", "--noheader", "--format", "%P"], capture_output=True, text=True,
                             timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    return {p.strip().rstrip("*") for p in res.stdout.split() if p.strip()}


def partition_errors(jobs: Iterable[tuple[str, Mapping[str, Any]]], partitions: set[str] | None,
                     profile: Profile | None) -> list[str]:
    """Jobs about to be submitted to a partition the cluster does not have (none when unknown)."""
    if not partitions:
        return []
    bad: dict[str, list[str]] = {}
    for rule, res in jobs:
        value = res.get("slurm_partition")
        if not value:
            continue
        missing = [p for p in str(value).split(",") if p.strip() and p.strip() not in partitions]
        if missing and rule not in bad.setdefault(str(value), []):
            bad[str(value)].append(rule)
    return [f"{_origin(profile, rules[0], 'slurm_partition', value)}: partition {value!r} does not exist "
            f"on this cluster (jobs of {', '.join(sorted(rules))}); `sinfo` lists {', '.join(sorted(partitions))}"
            for value, rules in bad.items()]


def runtime_minutes(value: Any) -> float | None:
    """A runtime resource in minutes: a number (minutes, as Snakemake takes it) or a string with a
    unit (``90m``, ``12h``, ``1d``, ``1d6h``); None when it cannot be read."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(d|h|m|min|s)", text)
    if not parts or "".join(a + b for a, b in parts) != text.replace(" ", ""):
        return None
    scale = {"d": 1440.0, "h": 60.0, "m": 1.0, "min": 1.0, "s": 1 / 60}
    return sum(float(n) * scale[u] for n, u in parts)


def time_limit_errors(jobs: Iterable[tuple[str, str, float, Mapping[str, Any]]],
                      profile: Profile | None, gpu: str) -> list[str]:
    """Jobs whose estimated hours exceed the runtime they get. ``jobs``: (rule, job label, estimated
    hours on the job's GPUs, resources). One message per rule, naming its longest job."""
    worst: dict[str, tuple[float, str, float, Any, int]] = {}
    for rule, label, hours, res in jobs:
        limit = runtime_minutes(res.get("runtime"))
        if limit is None or hours * 60 <= limit:
            continue
        over = worst.get(rule)
        count = (over[4] if over else 0) + 1
        if over is None or hours > over[0]:
            worst[rule] = (hours, label, limit, res.get("runtime"), count)
        else:
            worst[rule] = (*over[:4], count)
    out = []
    for rule, (hours, label, limit, raw, count) in worst.items():
        need = math.ceil(hours * 1.25) * 60
        out.append(
            f"{_origin(profile, rule, 'runtime', raw)}: {count} {rule} job(s) need longer than their "
            f"runtime of {limit / 60:.4g} h: {rule} {label} is estimated at {hours:.1f} h on its GPUs "
            f"({gpu}; cost-plan, workflow/resources/gpu_throughput.yaml); set runtime to at least {need} "
            f"(minutes, the estimate + 25 %) within your partition's MaxTime, or give the rule more GPUs "
            f"(config key gpus.{rule})"
            + (f"; or set prediction_jobs.max_hours below {limit / 60:.4g} (prediction jobs are split to fit it; "
               f"prediction_jobs.gpu: the GPU type they are planned on)" if rule == "predict" else ""))
    return out
