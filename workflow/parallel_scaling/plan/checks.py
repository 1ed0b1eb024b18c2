"""The checks of a schema-valid config that the JSON schema cannot express, run while planning.

Everything that can be known before a job runs: a study that cannot produce its promised outputs
(too few points for the law, no never-trained language), files that are not there, names that
would break paths or shell words, GPU counts and sampling settings that cannot work. Each message
names the key, the value and what is allowed. :mod:`parallel_scaling.plan.check_config` runs them
after the schema; the study's shape they reason about is :mod:`parallel_scaling.plan.study`'s.

Imported while the Snakefile is parsed: light imports only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from parallel_scaling.plan.study import (
    ENGLISH, LLM_BACKENDS, TRAIN_SECTIONS, accelerate_config_path, benchmark_languages, gpus, never_trained, runs,
    test_split_languages, train_processes, trained_languages, translated_languages,
)


def _accelerate_problems(config: dict[str, Any], rule: str) -> list[str]:
    section = TRAIN_SECTIONS[rule]
    s = config[section]
    n_gpu, procs = gpus(config, rule), train_processes(config, rule)
    errors = []
    if procs > 1 and not s.get("accelerate_config"):
        what = f"{n_gpu} GPUs" if n_gpu else f"{procs} CPU processes"
        errors.append(f"{section}.accelerate_config: gpus.{rule} / {section}.cpu_processes ask for {what} per job, "
                      "but without an accelerate config one process runs and the rest sit idle; set "
                      "envs/accelerate/deepspeed_zero3.yaml (GPUs) or envs/accelerate/multi_cpu.yaml (CPU)")
    if s.get("accelerate_config"):
        path = accelerate_config_path(s["accelerate_config"])
        if not path.is_file():
            errors.append(f"{section}.accelerate_config: {s['accelerate_config']} does not exist")
        else:
            acc = yaml.safe_load(path.read_text()) or {}
            on_cpu = bool(acc.get("use_cpu"))
            if n_gpu == 0 and not on_cpu:
                errors.append(f"{section}.accelerate_config: {s['accelerate_config']} runs on GPUs "
                              f"({acc.get('distributed_type')}) but gpus.{rule} is 0; give the job GPUs or use "
                              "envs/accelerate/multi_cpu.yaml")
            if n_gpu > 0 and on_cpu:
                errors.append(f"{section}.accelerate_config: {s['accelerate_config']} runs on CPU (use_cpu: true) "
                              f"but gpus.{rule} asks for {n_gpu} GPU(s); set gpus.{rule}: 0 or a GPU config")
    return errors


def gpu_problems(config: dict[str, Any]) -> list[str]:
    """GPU counts that cannot work: more GPUs than processes, vLLM without GPUs, a GPU count that is
    not the engine's tensor parallelism, an accelerate config for the wrong device."""
    errors: list[str] = []
    for rule in TRAIN_SECTIONS:
        errors += _accelerate_problems(config, rule)
    if config["grpo"].get("use_vllm") and gpus(config, "train_grpo") == 0:
        errors.append("grpo.use_vllm: vLLM rollouts need GPUs but gpus.train_grpo is 0")
    given = config.get("gpus") or {}
    p = config["prediction"]
    if p.get("engine") == "vllm" and given.get("predict") is not None \
            and p.get("vllm_tensor_parallel_size") is not None and given["predict"] != p["vllm_tensor_parallel_size"]:
        errors.append(f"gpus.predict: {given['predict']} GPUs but prediction.vllm_tensor_parallel_size is "
                      f"{p.get('vllm_tensor_parallel_size', 1)}; vLLM uses exactly that many (leave gpus.predict null)")
    t = config["translation"]
    tp = int((t.get("vllm") or {}).get("tensor_parallel_size", 1))
    if t["backend"] == "vllm" and given.get("translate") is not None and given["translate"] != tp:
        errors.append(f"gpus.translate: {given['translate']} GPUs but translation.vllm.tensor_parallel_size is {tp}; "
                      "vLLM uses exactly that many (leave gpus.translate null)")
    if t["backend"] not in LLM_BACKENDS and given.get("translate"):
        errors.append(f"gpus.translate: the {t['backend']!r} backend runs no model; leave gpus.translate null or 0")
    return errors


def sampling_problems(config: dict[str, Any]) -> list[str]:
    """Decoding settings both engines reject (vLLM's SamplingParams checks, which the JSON schema cannot
    say across keys): several samples with greedy decoding."""
    p = config["prediction"]
    if p.get("n", 1) > 1 and p.get("temperature", 0) == 0:
        return [f"prediction.n: {p['n']} samples need prediction.temperature > 0 (greedy decoding gives one "
                "answer; vLLM rejects n > 1 with temperature 0)"]
    return []
#: Names that become folder names, wildcards and words of shell commands: no spaces, no quotes.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: A Hugging Face hub id: ``name`` or ``owner/name``.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")


def law_points(config: dict[str, Any]) -> int:
    """How many multilingual points (k >= 1) each law series has: K when some model trains."""
    trains = any(m.get("train", True) for m in config["models"].values())
    return config["languages"]["K"] if trains else 0


def allowed_k(config: dict[str, Any]) -> int:
    """The largest K that keeps at least two evaluated languages out of every mixture."""
    lang = config["languages"]
    best = 0
    for k in range(len(lang["parallel_order"]) + 1):
        trained = {ENGLISH, *lang["parallel_order"][:k]}
        if len([lg for lg in lang["evaluate"] if lg not in trained]) >= 2:
            best = k
    return best


def check(config: dict[str, Any], template_languages: tuple[str, ...], prompt_missing: Any) -> list[str]:
    """Checks of a schema-valid config that the JSON schema cannot express: everything that can be
    known before a job runs (a study that cannot produce its promised outputs, files that are not
    there, names that would break paths). Each message names the key, the value and what is
    allowed; relative paths are read from the working directory, as the jobs will read them."""
    errors: list[str] = []
    for part in (_check_names, _check_languages, _check_law, _check_source, _check_translation,
                 _check_models, _check_benchmarks, _check_training):
        errors += part(config)
    errors += _check_prompts(config, template_languages, prompt_missing)
    errors += gpu_problems(config)
    errors += sampling_problems(config)
    errors += served_problems(config)
    return errors


def served_problems(config: dict[str, Any]) -> list[str]:
    """A served engine or backend needs its endpoint, and one declared server-side name cannot answer
    for several models (each is asked by its path, the name ``vllm serve PATH`` registers; a job
    whose model the server does not list fails at its start, naming both)."""
    errors: list[str] = []
    p, t = config["prediction"], config["translation"]
    if p.get("engine") == "served":
        served = p.get("served") or {}
        if not served.get("base_url"):
            errors.append("prediction.served.base_url: required when prediction.engine is 'served' "
                          "(e.g. http://HOST:8000/v1; docs/served-models.md)")
        evaluated = sorted({r.model if r.paradigm == "init" else f"{r.model} ({r.paradigm})" for r in runs(config)})
        if served.get("model") and len(evaluated) > 1:
            errors.append(f"prediction.served.model: {served['model']!r} would answer for every model "
                          f"({', '.join(evaluated)}); leave it null, so that each model's path is its served name")
    if t["backend"] == "served" and not (t.get("served") or {}).get("base_url"):
        errors.append("translation.served.base_url: required when translation.backend is 'served'")
    return errors


def _check_names(config: dict[str, Any]) -> list[str]:
    errors = []
    if not _NAME.fullmatch(config["study"]):
        errors.append(f"study: {config['study']!r} names the results folder; allowed: letters, digits, . _ - "
                      "(no spaces)")
    for name in config["models"]:
        if not _NAME.fullmatch(name):
            errors.append(f"models.{name}: the name {name!r} becomes a folder and a shell word; allowed: "
                          "letters, digits, . _ - (no spaces)")
    for name in config["benchmarks"]:
        if not re.fullmatch(r"[A-Za-z0-9_]+", name):
            errors.append(f"benchmarks.{name}: the name {name!r} is not allowed; allowed: letters, digits and _")
    return errors


def _check_languages(config: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    lang = config["languages"]
    order, K = lang["parallel_order"], lang["K"]
    if ENGLISH in order:
        errors.append(f"languages.parallel_order: must not contain English ({ENGLISH!r}): every mixture has it")
    if K > len(order):
        errors.append(f"languages.K: {K} is larger than languages.parallel_order has languages ({len(order)}); "
                      f"allowed: 0..{len(order)}")
    elif len(never_trained(config)) < 2:
        heldout = never_trained(config)
        errors.append(f"languages.K: with K={K} only {heldout or 'no language'} of languages.evaluate stays "
                      f"untrained; at least two must stay out of every mixture (allowed K: 0..{allowed_k(config)}, "
                      "or evaluate more languages)")
    if ENGLISH not in lang["evaluate"]:
        errors.append(f"languages.evaluate: must include English ({ENGLISH!r}), the language every model is "
                      "trained in")
    for code in lang.get("monolingual") or []:
        if code == ENGLISH:
            errors.append(f"languages.monolingual: {ENGLISH!r} would duplicate k0 (English only); list "
                          "non-English languages only")
    return errors


def _check_law(config: dict[str, Any]) -> list[str]:
    """A study that promises a law must have the points to fit it and languages to fit it on."""
    a = config["analysis"]
    if not a.get("law", True):
        return []
    errors = []
    need = 4 if a["offset"] else 3
    points = law_points(config)
    if not any(m.get("train", True) for m in config["models"].values()):
        errors.append("analysis.law: true, but no model trains (every model has train: false), so there is "
                      "no k axis to fit; set analysis.law: false")
    elif points < need:
        errors.append(f"languages.K: {config['languages']['K']} gives {points} multilingual point(s) "
                      f"(k = 1..K) and the law needs at least {need}{' with analysis.offset' if a['offset'] else ''}"
                      f"; allowed: K >= {need}, or analysis.law: false for a study without a law")
    if a["y"] in ("heldout", "unseen", "mti"):
        untrained = set(never_trained(config))
        for name in config["benchmarks"]:
            langs = benchmark_languages(config, name)
            if not untrained & set(langs):
                errors.append(f"benchmarks.{name}.languages: {langs} holds no never-trained language "
                              f"(never trained: {sorted(untrained) or 'none'}), so its law (analysis.y: "
                              f"{a['y']}) cannot be fitted; add one, or set analysis.law: false")
    return errors


def looks_local(path: str) -> bool:
    """A path meant as a local file or directory (not a hub id): absolute, ./ ../ ~, or existing."""
    return path.startswith(("/", "./", "../", "~")) or Path(path).expanduser().exists()


def _missing_file(key: str, path: str) -> str | None:
    """A data file the config names: there, a file, and not an LFS pointer, a compressed or a UTF-16
    file (its first bytes; the rows are checked by the job that reads it: docs/data-checks.md)."""
    from parallel_scaling.dataio.datafile import check_file
    from parallel_scaling.dataio.jsonl import DataError

    p = Path(path).expanduser()
    if not p.exists() and not p.is_symlink():
        return f"{key}: file {path!r} not found (relative paths are read from the working directory {Path.cwd()})"
    try:
        check_file(p)
    except DataError as exc:
        return f"{key}: {exc}"
    return None


def _check_source(config: dict[str, Any]) -> list[str]:
    src = config["source"]
    errors: list[str] = []
    if src["kind"] == "synthetic":
        syn = src["synthetic"]
        if syn["min_number"] > syn["max_number"]:
            errors.append(f"source.synthetic.min_number: {syn['min_number']} is larger than max_number "
                          f"{syn['max_number']}; allowed: min_number <= max_number")
    elif src["kind"] == "file":
        if not src.get("train"):
            errors.append("source.train: required when source.kind is 'file' (a JSONL/Parquet/TSV/CSV path)")
        for split in ("train", "test"):
            if src.get(split):
                errors += [e for e in [_missing_file(f"source.{split}", str(src[split]))] if e]
    elif src["kind"] == "huggingface":
        if not src.get("hf_name"):
            errors.append("source.hf_name: required when source.kind is 'huggingface' (a dataset id or a "
                          "builder such as json)")
        errors += _local_data_files("source.hf_data_files", src.get("hf_data_files"), [None])
    return errors


def _local_data_files(key: str, spec: Any, langs: list[str | None]) -> list[str]:
    """Local files named in a ``data_files`` setting (URLs and glob patterns are left to the job)."""
    paths: list[str] = []
    if isinstance(spec, str):
        paths = [spec]
    elif isinstance(spec, list):
        paths = [str(p) for p in spec]
    elif isinstance(spec, dict):
        for value in spec.values():
            paths += [value] if isinstance(value, str) else [str(p) for p in value or []]
    errors = []
    for path in paths:
        if "://" in path or any(c in path for c in "*?["):
            continue
        for lang in langs:
            concrete = path.replace("{lang}", lang) if lang else path
            error = _missing_file(key, concrete)
            if error:
                errors.append(error)
    return errors


def _check_translation(config: dict[str, Any]) -> list[str]:
    t = config["translation"]
    errors: list[str] = []
    targets = [lg for lg in translated_languages(config) if lg != ENGLISH]
    if config["source"]["kind"] == "synthetic" and test_split_languages(config):
        targets = sorted(set(targets) | set(test_split_languages(config)) - {ENGLISH})
    if t["backend"] == "template":
        if config["source"]["kind"] != "synthetic":
            errors.append("translation.backend: 'template' needs source.kind 'synthetic' (only synthetic rows "
                          "carry a spec to render); use import, transformers or vllm for real sources")
        return errors
    if not targets:
        return errors  # English only: nothing is translated, the backend's settings are not read
    if t["backend"] == "import":
        pattern = (t.get("import") or {}).get("path")
        if not pattern:
            errors.append("translation.import.path: required for backend 'import' (a path with {lang})")
        else:
            for lg in targets:
                errors += [e for e in [_missing_file("translation.import.path", str(pattern).format(lang=lg))] if e]
        return errors
    model = t.get("model") or {}
    served = t.get("served") or {}
    if t["backend"] == "served" and served.get("api") == "chat" and not model.get("path"):
        if not served.get("model"):
            errors.append("translation.served.model: required for backend 'served' without translation.model.path")
    elif not model.get("path"):
        errors.append(f"translation.model.path: required for backend {t['backend']!r} (hub id or local directory)")
    else:
        errors += _model_path_errors("translation.model.path", str(model["path"]))
    if model.get("prompts_file"):
        error = _missing_file("translation.model.prompts_file", str(model["prompts_file"]))
        if error:
            return errors + [error]
    from parallel_scaling.data.translate import TranslationError, load_prompts, prompt_templates

    try:
        prompts = load_prompts(model.get("prompts_file"))
        for lg in targets:
            prompt_templates(prompts, lg)
    except TranslationError as exc:
        errors.append(f"translation.model.prompts_file: {exc}")
    return errors


def _model_path_errors(key: str, path: str) -> list[str]:
    """A local model directory must exist with a config.json; anything else must be a hub id, which
    is checked (cache or download) at the start of the job that loads it."""
    if looks_local(path):
        p = Path(path).expanduser()
        if not p.is_dir():
            return [f"{key}: local directory {path!r} not found (relative paths are read from the working "
                    f"directory {Path.cwd()}); give an existing directory or a hub id (owner/name)"]
        if not (p / "config.json").is_file():
            return [f"{key}: {path!r} has no config.json; give a saved Hugging Face model directory"]
        return []
    if not _HUB_ID.fullmatch(path) or len(path) > 96:
        return [f"{key}: {path!r} is neither an existing local directory nor a hub id; allowed: a directory "
                "(./path, /path) or owner/name of letters, digits, . _ -"]
    return []


def _check_models(config: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    for name, m in config["models"].items():
        key = f"models.{name}"
        if m["source"] == "pretrained":
            if not m.get("path"):
                errors.append(f"{key}.path: required when source is 'pretrained' (hub id or local directory)")
            else:
                errors += _model_path_errors(f"{key}.path", str(m["path"]))
        elif m.get("path"):
            errors.append(f"{key}.path: not used with source 'tiny' (the model is built here); remove it")
        if m.get("trained"):
            errors += _model_path_errors(f"{key}.trained", str(m["trained"]))
    return errors


def _check_prompts(config: dict[str, Any], template_languages: tuple[str, ...], prompt_missing: Any) -> list[str]:
    errors: list[str] = []
    lang = config["languages"]
    needed = set(trained_languages(config)) | set(lang["evaluate"])
    if config["translation"]["backend"] == "template":
        missing = sorted(needed - set(template_languages))
        if missing:
            errors.append(f"languages: no templates for {missing} in the built-in template translator; "
                          f"allowed: {list(template_languages)}")
    for name, m in config["models"].items():
        try:
            miss = prompt_missing(m.get("prompt_set", "plain"), sorted(needed))
        except ValueError as exc:
            errors.append(f"models.{name}.prompt_set: {exc}")
            continue
        if miss:
            errors.append(f"models.{name}.prompt_set: prompt set {m.get('prompt_set')!r} has no template for "
                          f"{miss} and no default (workflow/resources/prompts.yaml)")
    return errors


def _check_benchmarks(config: dict[str, Any]) -> list[str]:
    from parallel_scaling.data import benchmark as benchmarks

    errors: list[str] = []
    evaluated = config["languages"]["evaluate"]
    for name, b in config["benchmarks"].items():
        key = f"benchmarks.{name}"
        extra = [lg for lg in b.get("languages") or [] if lg not in evaluated]
        if extra:
            errors.append(f"{key}.languages: {extra} not in languages.evaluate {evaluated}; a benchmark is "
                          "evaluated in a subset of the study's languages")
        if b.get("kind") == "synthetic":
            if config["source"]["kind"] != "synthetic":
                errors.append(f"{key}.kind: 'synthetic' needs source.kind 'synthetic'")
            unused = [k for k in ("preset", "filter", "difficulty_field", "difficulty_weights") if b.get(k) is not None]
            if unused:
                errors.append(f"{key}.{unused[0]}: not available for kind 'synthetic' (only for file and "
                              "huggingface benchmarks)")
            continue
        if not b.get("kind") and not b.get("preset"):
            errors.append(f"{key}: give kind (synthetic, file, huggingface) or a preset")
            continue
        try:  # an unknown preset, a malformed filter or weights stop the run before any job
            s = benchmarks.resolve(name, b)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        kind = s.get("kind")
        if kind not in ("file", "huggingface"):
            errors.append(f"{key}.kind: the preset gives no kind; allowed: file, huggingface")
            continue
        for field in ("question_field", "answer_field"):
            if not s.get(field):
                errors.append(f"{key}.{field}: required for a {kind} benchmark (the field holding the "
                              f"{field.split('_')[0]})")
        if kind == "file":
            if not s.get("path"):
                errors.append(f"{key}.path: required for kind 'file' (may contain {{lang}})")
                continue
            seen: set[str] = set()
            for lg in benchmark_languages(config, name):
                code = (s.get("lang_codes") or {}).get(lg, lg)
                path = str(s["path"]).format(lang=code)
                if path not in seen:
                    seen.add(path)
                    errors += [e for e in [_missing_file(f"{key}.path", path)] if e]
        else:
            if not s.get("hf_name"):
                errors.append(f"{key}.hf_name: required for kind 'huggingface'")
            langs = [(s.get("lang_codes") or {}).get(lg, lg) for lg in benchmark_languages(config, name)]
            errors += _local_data_files(f"{key}.hf_data_files", s.get("hf_data_files"), langs)
    return errors


def _check_training(config: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    g = config["grpo"]
    if g["per_device_train_batch_size"] % g["num_generations"]:
        errors.append(f"grpo.per_device_train_batch_size: {g['per_device_train_batch_size']} is not a multiple "
                      f"of grpo.num_generations ({g['num_generations']}); allowed: k x {g['num_generations']}")
    return errors
