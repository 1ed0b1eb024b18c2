"""Reading and checking a study's config before any job runs, with messages a person can act on.

Why not Snakemake's own ``validate``: on a schema error it prints the whole schema and the whole
config (thousands of lines); a YAML syntax error names neither the file nor the line; a duplicated
key is silently the last one. Here every config file is read with its line numbers, the config is
validated against ``workflow/schemas/config.schema.json`` with the schema's defaults filled in (as
``snakemake.utils.validate(set_default=True)`` does), and every problem becomes one line:
``file:line: key.path: value -- what is allowed``. Then come the checks that the schema cannot
express (:func:`parallel_scaling.plan.checks.check`) and, for a run on this machine, the ones that need
its hardware, once the jobs to run are known (:func:`gpu_job_errors`).

Imported while the Snakefile is parsed: standard library, yaml and jsonschema only.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from parallel_scaling.dataio.paths import SCHEMA_FILE

SCHEMA = SCHEMA_FILE
#: shown at most, then "... and N more"
MAX_MESSAGES = 12

#: keys that were removed, with what to do instead (an old config then gets a useful message)
REMOVED: dict[tuple[str, ...], str] = {
    ("languages", "english"): "removed: English is always 'en' (the source language of every study); "
                              "delete this line",
    ("mixtures", "include_english"): "removed: every k-mixture contains English; English-free controls are "
                                     "languages.monolingual; delete this line",
}


#: what a schema pattern means, in words
PATTERNS = {"^[a-z]{2,3}$": "a language code of 2-3 lowercase letters (ISO 639: en, zh, sw)"}


class ConfigError(ValueError):
    """The config cannot be run; the message lists every problem, one line each."""


@dataclass
class Origins:
    """Where each key of the merged config was set: ``(label, line)`` per key path."""

    lines: dict[tuple[str, ...], tuple[str, int | None]] = field(default_factory=dict)

    def where(self, path: Sequence[Any]) -> str:
        """``file:line: `` of the key (or its closest parent that a file set), else ''."""
        path = tuple(str(p) for p in path)
        while path:
            if path in self.lines:
                label, line = self.lines[path]
                return f"{label}:{line}: " if line else f"{label}: "
            path = path[:-1]
        return ""


# --------------------------------------------------------------------------------------------------
# reading YAML with line numbers


def _walk(node: yaml.Node, path: tuple[str, ...], label: str, out: dict, dupes: list[str]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                dupes.append(f"{label}:{line}: {'.'.join((*path, key))}: given twice (first on line "
                             f"{seen[key]}); YAML keeps only the last, so delete one")
            seen[key] = line
            out[(*path, key)] = (label, line)
            _walk(value_node, (*path, key), label, out, dupes)


def load_yaml(path: str | Path, origins: Origins | None = None, label: str | None = None) -> dict[str, Any]:
    """A config file as a mapping; a syntax error, a duplicated key or a file that is not a mapping
    raises :class:`ConfigError` naming the file and line. ``origins`` records each key's line."""
    path = Path(path)
    label = label or display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: config file not found (working directory {Path.cwd()})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: cannot read the config file ({exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}:{mark.line + 1}:{mark.column + 1}" if mark else label
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: YAML syntax error: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: a config file is a mapping of keys (study:, languages:, ...), "
                          f"not a {type(data).__name__}")
    lines: dict[tuple[str, ...], tuple[str, int | None]] = {}
    dupes: list[str] = []
    if node is not None:
        _walk(node, (), label, lines, dupes)
    if dupes:
        raise ConfigError("\n".join(dupes))
    if origins is not None:
        origins.lines.update(lines)
    return data


def display_path(path: str | Path) -> str:
    """A path as a person would type it: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merged key by key (as Snakemake's update_config); other values replaced."""
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = json.loads(json.dumps(value)) if isinstance(value, (dict, list)) else value
    return base


def _record_overrides(overrides: Mapping[str, Any], origins: Origins, path: tuple[str, ...] = ()) -> None:
    for key, value in overrides.items():
        origins.lines[(*path, str(key))] = ("--config", None)
        if isinstance(value, Mapping):
            _record_overrides(value, origins, (*path, str(key)))


def load_study(configfiles: Sequence[str | Path], overrides: Mapping[str, Any] | None = None,
               ) -> tuple[dict[str, Any], Origins]:
    """The study's config: its files merged in order, then the ``--config`` overrides."""
    origins = Origins()
    config: dict[str, Any] = {}
    for f in configfiles:
        merge(config, load_yaml(f, origins))
    if overrides:
        _record_overrides(overrides, origins)
        merge(config, overrides)
    return config, origins


# --------------------------------------------------------------------------------------------------
# the schema, with defaults and one line per error


@lru_cache(maxsize=2)
def load_schema(path: str = str(SCHEMA)) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _validator(schema: dict[str, Any]):
    """A Draft 2020-12 validator that fills each property's default before checking it."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, json.loads(json.dumps(prop["default"])))
        yield from check_properties(validator, properties, instance, subschema)

    cls = validators.extend(Draft202012Validator, {"properties": properties_with_defaults})
    return cls(schema)


def _show(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _all_keys(schema: dict[str, Any], root: dict[str, Any], path: tuple[str, ...] = (),
              depth: int = 0) -> Iterable[tuple[str, ...]]:
    """Every key path of the schema (``*`` for user-named entries), for suggestions."""
    if depth > 6:
        return
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].rsplit("/", 1)[-1]]
    for name, sub in (schema.get("properties") or {}).items():
        yield (*path, name)
        yield from _all_keys(sub, root, (*path, name), depth + 1)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _all_keys(extra, root, (*path, "*"), depth + 1)


def _suggest(word: str, candidates: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)


def _unknown_key_message(error: Any, root: dict[str, Any]) -> list[str]:
    path = tuple(str(p) for p in error.absolute_path)
    allowed = sorted((error.schema.get("properties") or {}))
    out = []
    for key in sorted(set(error.instance) - set(allowed)):
        full = (*path, key)
        if full in REMOVED:
            out.append((full, f"{_key(full)}: {REMOVED[full]}"))
            continue
        hint = ""
        close = _suggest(key, allowed)
        if close:
            hint = f"; did you mean {' or '.join(_key((*path, c)) for c in close)}?"
        elif not path:  # a nested key given at the top level (--config K=2)
            nested = sorted({".".join(p) for p in _all_keys(root, root) if p[-1] == key and len(p) > 1})
            if nested:
                hint = f"; did you mean {' or '.join(nested[:3])}?"
        shown = ", ".join(allowed) if len(allowed) <= 16 else f"{len(allowed)} keys, see {SCHEMA.name}"
        where = f"in {_key(path)}" if path else "at the top level"
        out.append((full, f"{_key(full)}: unknown key{hint} (allowed {where}: {shown})"))
    return out


def _describe_type(types: Any) -> str:
    names = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
             "array": "a list", "object": "a mapping", "null": "null"}
    types = types if isinstance(types, list) else [types]
    return " or ".join(names.get(t, t) for t in types)


def _message(error: Any, root: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """One or more (key path, message) for a jsonschema error."""
    path = tuple(str(p) for p in error.absolute_path)
    key, value, v, want = _key(path), error.instance, error.validator, error.validator_value
    if v == "additionalProperties":
        return _unknown_key_message(error, root)
    if v == "required":
        missing = [r for r in want if not isinstance(value, dict) or r not in value]
        return [((*path, m), f"{_key((*path, m))}: required, missing") for m in missing]
    if v == "type":
        text = f"{key}: {_show(value)} is not allowed; allowed: {_describe_type(want)}"
    elif v == "enum":
        text = f"{key}: {_show(value)} is not allowed; allowed: {', '.join(_show(x) for x in want)}"
    elif v == "const":
        text = f"{key}: {_show(value)} is not allowed; allowed: {_show(want)}"
    elif v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        text = f"{key}: {_show(value)} is out of range; allowed: {sign} {want}"
    elif v == "uniqueItems":
        dupes = sorted({_show(x) for i, x in enumerate(value) if x in value[:i]})
        text = f"{key}: {', '.join(dupes)} given more than once; each value may appear once"
    elif v in ("minItems", "maxItems"):
        text = f"{key}: {_show(value)} has {len(value)} item(s); allowed: {'at least' if v == 'minItems' else 'at most'} {want}"
    elif v in ("minProperties",):
        text = f"{key}: must not be empty"
    elif v in ("minLength",):
        text = f"{key}: must not be empty"
    elif v == "pattern":
        text = f"{key}: {_show(value)} is not allowed; allowed: {PATTERNS.get(want, 'the form ' + want)}"
    elif v in ("anyOf", "oneOf"):
        best = min(error.context, key=lambda e: len(e.absolute_path) * -1, default=None)
        described = error.schema.get("description", "")
        if best is not None and len(best.absolute_path) > len(error.absolute_path):
            return _message(best, root)
        text = f"{key}: {_show(value)} is not allowed" + (f"; {described}" if described else "")
    else:
        text = f"{key}: {error.message}"
    return [(path, text)]


def schema_errors(config: dict[str, Any], schema_path: str | Path = SCHEMA,
                  origins: Origins | None = None) -> list[str]:
    """Validate ``config`` in place, filling the schema's defaults; one message per problem."""
    schema = load_schema(str(schema_path))
    validator = _validator(schema)
    found: list[tuple[tuple[str, ...], str]] = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        found += _message(error, schema)
    origins = origins or Origins()
    seen, out = set(), []
    for path, text in found:
        line = origins.where(path) + text
        if line not in seen:
            seen.add(line)
            out.append(line)
    return out


# --------------------------------------------------------------------------------------------------
# this machine


def has_gpu() -> bool:
    """Whether this machine has an NVIDIA (or ROCm) GPU, without importing torch: the driver's
    /proc entries or ``nvidia-smi -L``; ``CUDA_VISIBLE_DEVICES`` set empty hides them."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return True
    if Path("/dev/kfd").exists():
        return True
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        return any(line.startswith("GPU") for line in out.splitlines())
    return False


def job_gpu_needs(config: dict[str, Any], rule: str, wildcards: Mapping[str, str]) -> list[str]:
    """The settings that make one job (rule and wildcards) need a GPU (vLLM not, with the tests'
    switch ``PARALLEL_SCALING_VLLM_CPU=1``: jobs.preflight.VLLM_CPU_ENV)."""
    from parallel_scaling.jobs.preflight import vllm_cpu_allowed
    from parallel_scaling.plan import study

    vllm_needs_gpu = not vllm_cpu_allowed()

    needs: list[str] = []
    if rule in ("train_grpo", "train_sft"):
        section = "grpo" if rule == "train_grpo" else "sft"
        if config[section].get("device") == "cuda":
            needs.append(f"{section}.device: 'cuda'")
        if section == "grpo" and config["grpo"].get("use_vllm"):
            needs.append("grpo.use_vllm: true")
    elif rule == "predict":
        if config["prediction"]["engine"] == "vllm" and vllm_needs_gpu:
            needs.append("prediction.engine: 'vllm'")
        if config["prediction"].get("device") == "cuda" and config["prediction"]["engine"] != "served":
            needs.append("prediction.device: 'cuda'")
    elif rule == "build_init_model":
        name = wildcards.get("model", "")
        if (config["models"].get(name, {}).get("build") or {}).get("device") == "cuda":
            needs.append(f"models.{name}.build.device: 'cuda'")
    elif rule == "translate" and wildcards.get("lang") != study.ENGLISH:
        t = config["translation"]
        if t["backend"] == "vllm":
            if vllm_needs_gpu:
                needs.append("translation.backend: 'vllm'")
        elif t["backend"] == "transformers" and (t.get("model") or {}).get("device") == "cuda":
            needs.append("translation.model.device: 'cuda'")
    return needs


def gpu_job_errors(config: dict[str, Any], jobs: Iterable[tuple[str, Mapping[str, str]]], gpu: bool) -> list[str]:
    """For jobs about to run on this machine: every setting that needs a GPU it does not have."""
    if gpu:
        return []
    needs: dict[str, list[str]] = {}
    for rule, wildcards in jobs:
        for need in job_gpu_needs(config, rule, wildcards):
            needs.setdefault(need, []).append(rule)
    return [f"{need} needs a GPU ({len(rules)} {rules[0]} job(s) to run) and this machine has none (no NVIDIA "
            "driver found); run the study on GPU nodes (--profile slurm) or change the setting"
            for need, rules in needs.items()]


# --------------------------------------------------------------------------------------------------
# secrets


def secret_errors(config: Mapping[str, Any], origins: Origins | None = None) -> list[str]:
    """One message per config value that is (or holds) a secret, naming its file, line and key but
    never the value: the config is printed in job commands and packed into the archive, so a
    secret must not be in it at all (``parallel_scaling.jobs.redact`` says what one looks like)."""
    from parallel_scaling.jobs.redact import find_secrets

    origins = origins or Origins()
    return [f"{origins.where(key.split('.'))}{key}: holds {what}; remove it from the config (a config is printed "
            "in job commands and archived): give credentials through the environment (HF_TOKEN, ~/.netrc) instead"
            for key, what in find_secrets(dict(config))]


# --------------------------------------------------------------------------------------------------
# everything, in order


def check_config(config: dict[str, Any], origins: Origins | None = None,
                 schema_path: str | Path = SCHEMA, read_data: bool = True) -> list[str]:
    """Schema (defaults filled in place), then the study's own checks. Stops after the schema when
    it fails: the later checks read keys the schema guarantees. Then, when all else holds and
    ``read_data``, whether the data fill the mixtures (parallel_scaling.plan.data_sizes: it reads
    the source and translation files). (The hardware of a local run is checked once the jobs to run
    are known: :func:`gpu_job_errors`.)"""
    from parallel_scaling.plan import real_models

    given = real_models.given_keys(config)  # before the schema fills in its defaults
    errors = secret_errors(config, origins)
    if errors:  # first and alone: a later message could quote the value
        return errors
    errors = schema_errors(config, schema_path, origins)
    if errors:
        return errors
    from parallel_scaling.plan import checks, study
    from parallel_scaling.common.prompts import missing_languages
    from parallel_scaling.data.synth import LANGUAGES

    errors = checks.check(config, LANGUAGES, missing_languages)
    errors += real_models.problems(config, lambda path: tuple(path) in given)
    if not errors:  # per-model settings read each model's size and shape
        from parallel_scaling.plan import model_settings

        errors += model_settings.problems(config)
    if not errors and read_data:
        from parallel_scaling.plan.data_sizes import data_size_errors

        errors = data_size_errors(config)
    origins = origins or Origins()
    # "key.path: ..." -> "file:line: key.path: ..." where a file set that key
    return [origins.where(e.split(":", 1)[0].split(".")) + e if ":" in e else e for e in errors]


def report(errors: Sequence[str], sources: Sequence[str]) -> str:
    """The message of a refused config: where it came from, then at most MAX_MESSAGES lines."""
    shown = list(errors[:MAX_MESSAGES])
    if len(errors) > MAX_MESSAGES:
        shown.append(f"... and {len(errors) - MAX_MESSAGES} more")
    shown_sources = [s if s == "--config" else display_path(s) for s in sources]
    head = f"invalid config ({', '.join(shown_sources)}):" if sources else "invalid config:"
    return head + "\n  " + "\n  ".join(shown)


# --------------------------------------------------------------------------------------------------
# command


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs as ``snakemake --config`` takes them (values read as YAML)."""
    from parallel_scaling.plan.study import typed_overrides

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--config {item!r}: expected key=value")
        try:
            out[key] = yaml.safe_load(value) if value else None
        except yaml.YAMLError:
            out[key] = value
    return typed_overrides(out)


def main(argv: list[str] | None = None) -> int:
    """``check-config``: the planning checks of a study, without Snakemake (YAML errors of any
    config file with their line, which ``snakemake --configfile`` cannot give)."""
    import argparse

    p = argparse.ArgumentParser(prog="check-config", description=main.__doc__)
    p.add_argument("--configfile", nargs="+", action="extend", default=None,
                   help="the study's config files (default: config.yaml)")
    p.add_argument("--config", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="overrides, as snakemake --config takes them")
    a = p.parse_args(argv)
    files = a.configfile or ["config.yaml"]
    overrides = parse_overrides(a.config)
    config, origins = load_study(files, overrides)
    errors = check_config(config, origins)
    if errors:
        raise ConfigError(report(errors, files + (["--config"] if overrides else [])))
    from parallel_scaling.plan import study

    runs = study.runs(config)
    print(f"config OK: study {config['study']!r}, {len(config['models'])} model(s), "
          f"{len(study.mixtures(config))} mixture(s), {len(runs)} evaluated run(s)")
    return 0
