"""The study's shape, derived from the validated config: mixtures, runs, targets, checks.

Imported while the Snakefile is parsed, so it must stay light (standard library and yaml only):
importing torch here would cost more than planning a thousand-job DAG.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from parallel_scaling.dataio.paths import REPO_DIR


#: rules that can run on GPUs, in DAG order; the study's `gpus` section says how many each job gets
GPU_RULES = ("translate", "build_init_model", "train_grpo", "train_sft", "predict")
#: the config section of each training rule
TRAIN_SECTIONS = {"train_grpo": "grpo", "train_sft": "sft"}
LLM_BACKENDS = ("transformers", "vllm", "served")
#: The source language of every study. Not configurable: sources (GSM8K, the synthetic generator),
#: translation prompts, QC and the answer-format warm-up are English-centric, and the paper's
#: question is transfer *from English*; a study that pivots on another language needs other data.
ENGLISH = "en"


@dataclass(frozen=True)
class Mixture:
    """A training mixture: its name in paths, k (None for monolingual), and its languages."""

    name: str
    k: int | None
    langs: tuple[str, ...]


def resolve_model_paths(config: dict[str, Any], basedir: str | Path) -> dict[str, Any]:
    """A model ``path`` relative to the working directory that is not there but is a folder of the
    workflow itself (``models/tiny-qwen2``, the released model the default study names) becomes that
    folder's absolute path, so that ``snakemake --directory elsewhere`` runs the default study too.
    Anything else (a path that exists here, a hub id, an absolute path) is left as given."""
    for model in (config.get("models") or {}).values():
        path = model.get("path") if isinstance(model, dict) else None
        if isinstance(path, str) and path and not Path(path).is_absolute() and not Path(path).exists():
            shipped = Path(basedir) / path
            if shipped.is_dir():
                model["path"] = str(shipped)
    return config


def typed_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """``--config`` values with types inside lists and mappings.

    Snakemake types a top-level ``--config key=value`` (int, float, bool) but reads a list or a
    mapping with YAML's BaseLoader, so ``--config 'seeds=[0,1,2]'`` arrives as ``['0', '1', '2']``
    and would fail validation. Inside a list or mapping, a string that is an integer, a float,
    ``true``/``false`` or ``null`` becomes that value; every other string (``no`` is Norwegian,
    not false) stays as given. Top-level values are left as Snakemake typed them.
    """
    return {k: _typed(v) if isinstance(v, (dict, list)) else v for k, v in overrides.items()}


_LITERALS = {"true": True, "false": False, "null": None, "~": None}
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if not isinstance(value, str):
        return value
    if value.lower() in _LITERALS:
        return _LITERALS[value.lower()]
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    return value


def mixtures(config: dict[str, Any]) -> list[Mixture]:
    """k0..kK (English + the first k parallel languages), then the monolingual controls."""
    lang = config["languages"]
    en, order = ENGLISH, lang["parallel_order"]
    out = [Mixture(f"k{k}", k, (en, *order[:k])) for k in range(lang["K"] + 1)]
    out += [Mixture(f"mono-{m}", None, (m,)) for m in lang.get("monolingual", [])]
    return out


def mixture(config: dict[str, Any], name: str) -> Mixture:
    for m in mixtures(config):
        if m.name == name:
            return m
    raise ValueError(f"unknown mixture {name!r}; this config has {[m.name for m in mixtures(config)]}")


def trained_languages(config: dict[str, Any]) -> list[str]:
    """Languages that appear in at least one mixture (their train split is needed)."""
    seen: list[str] = []
    for m in mixtures(config):
        seen += [lg for lg in m.langs if lg not in seen]
    return seen


def translated_languages(config: dict[str, Any]) -> list[str]:
    """Languages whose train split is translated and QC'd: the trained ones, plus every evaluated
    language when a tiny model is built here (it is pretrained on all of them)."""
    langs = trained_languages(config)
    if any(m["source"] == "tiny" for m in config["models"].values()):
        langs += [lg for lg in config["languages"]["evaluate"] if lg not in langs]
    return sorted(langs)


def never_trained(config: dict[str, Any]) -> list[str]:
    """Evaluated languages outside every parallel mixture: where transfer is measured at every k."""
    lang = config["languages"]
    trained = {ENGLISH, *lang["parallel_order"][: lang["K"]]}
    return [lg for lg in lang["evaluate"] if lg not in trained]


def benchmark_languages(config: dict[str, Any], name: str) -> list[str]:
    return list(config["benchmarks"][name].get("languages") or config["languages"]["evaluate"])


def bench_lang_pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    return [(b, lg) for b in config["benchmarks"] for lg in benchmark_languages(config, b)]


def difficulty_weights(config: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Weight per difficulty level of each benchmark that defines weights (presets resolved):
    what the tables need for the difficulty-weighted accuracy."""
    from parallel_scaling.data import benchmark as benchmarks

    out: dict[str, dict[str, float]] = {}
    for name, spec in config["benchmarks"].items():
        if spec.get("kind") == "synthetic":
            continue
        weights = benchmarks.difficulty_weights(name, benchmarks.resolve(name, spec))
        if weights:
            out[name] = weights
    return out


@dataclass(frozen=True)
class Run:
    """One evaluated model: an initial model (paradigm init), a public RL checkpoint (public),
    or a checkpoint trained here (grpo/sft) on a mixture with a seed."""

    model: str
    paradigm: str
    mixture: str
    seed: int

    @property
    def path(self) -> str:
        return f"{self.model}/{self.paradigm}/{self.mixture}/s{self.seed}"


def runs(config: dict[str, Any]) -> list[Run]:
    out: list[Run] = []
    for name, m in config["models"].items():
        out.append(Run(name, "init", "init", 0))
        if m.get("trained"):
            out.append(Run(name, "public", "public", 0))
        if not m.get("train", True):
            continue
        for paradigm in config["paradigms"]:
            for mix in mixtures(config):
                for seed in config["seeds"]:
                    out.append(Run(name, paradigm, mix.name, seed))
    return out


def run_meta(config: dict[str, Any], run: Run) -> dict[str, Any]:
    """What every prediction row of a run carries (and so every table)."""
    m = config["models"][run.model]
    meta: dict[str, Any] = {"model": run.model, "model_kind": m.get("kind", "base"), "family": m.get("family", ""),
                            "paradigm": run.paradigm, "mixture": run.mixture, "k": None,
                            "seed": None, "train_langs": []}
    if run.paradigm in ("grpo", "sft"):
        mix = mixture(config, run.mixture)
        meta.update(k=mix.k, seed=run.seed, train_langs=list(mix.langs))
    elif run.paradigm == "public":
        meta.update(train_langs=[ENGLISH])
    return meta


def synthetic_benchmarks(config: Mapping[str, Any]) -> list[str]:
    return [b for b, spec in config["benchmarks"].items() if spec.get("kind") == "synthetic"]


def test_split_languages(config: Mapping[str, Any]) -> list[str]:
    """Languages of the test split translated for synthetic benchmarks."""
    langs: list[str] = []
    for b in synthetic_benchmarks(config):
        langs += [lg for lg in benchmark_languages(config, b) if lg not in langs]
    return langs



# --------------------------------------------------------------------------------------------
# GPUs and processes per job: one function for the rules, the launcher and the cost plan


def gpus(config: dict[str, Any], rule: str) -> int:
    """GPUs per job of ``rule`` (``gpus`` section; null entries derived from the engine's tensor
    parallelism): the rule's ``gpu`` resource, the launcher's process count, the cost plan's figure."""
    if rule not in GPU_RULES:
        return 0
    given = (config.get("gpus") or {}).get(rule)
    if rule == "translate":
        backend = config["translation"]["backend"]
        if given is not None:
            return int(given)
        if backend == "vllm":
            return int((config["translation"].get("vllm") or {}).get("tensor_parallel_size", 1))
        return 1 if backend == "transformers" else 0  # served: the server has the GPUs, the job none
    if rule == "predict" and given is None:
        if config["prediction"].get("engine") == "served":
            return 0  # the server has the GPUs, the job none
        # per model (parallel_scaling.plan.model_settings): the most any model's jobs get
        from parallel_scaling.plan.model_settings import job_gpus

        return max((job_gpus(config, name) for name in config["models"]), default=1)
    return 1 if given is None else int(given)


def train_processes(config: dict[str, Any], rule: str) -> int:
    """Processes of a training job: one per GPU, or ``cpu_processes`` when the job has no GPU."""
    n = gpus(config, rule)
    return n if n >= 1 else int(config[TRAIN_SECTIONS[rule]].get("cpu_processes", 1))


def accelerate_config_path(path: str | None, workdir: str | Path = ".") -> Path | None:
    """An accelerate config file named in the config: relative to the working directory, else to the
    repository (where envs/accelerate/ lives). None when not set; the path as given when not found."""
    if not path:
        return None
    p = Path(path)
    if p.is_absolute() or (Path(workdir) / p).is_file():
        return p if p.is_absolute() else Path(workdir) / p
    return REPO_DIR / p if (REPO_DIR / p).is_file() else p


# --------------------------------------------------------------------------------------------
# what each job reads besides the outputs of other jobs: local files (declared as inputs) and the
# resolved entries of resource files (passed as params, so that editing one entry reruns its users)


def source_files(config: dict[str, Any], split: str) -> list[str]:
    """Local files the ``source`` job of ``split`` reads (none for synthetic or hub sources)."""
    src = config["source"]
    if src["kind"] != "file":
        return []
    own = src.get(split)
    if own:
        return [str(own)]
    return [str(src["train"])] if src.get("train") else []


def translation_files(config: dict[str, Any], lang: str) -> list[str]:
    """Local files a ``translate`` job reads: the imported translations, a user prompt file
    (none for English, which is copied from the source)."""
    t = config["translation"]
    files: list[str] = []
    if lang == ENGLISH:
        return files
    if t["backend"] == "import" and (t.get("import") or {}).get("path"):
        files.append(str(t["import"]["path"]).format(lang=lang))
    if t["backend"] in LLM_BACKENDS and (t.get("model") or {}).get("prompts_file"):
        files.append(str(t["model"]["prompts_file"]))
    return files


def translation_prompts(config: dict[str, Any], lang: str) -> dict[str, str] | None:
    """The LLM translation prompt of ``lang`` as shipped (None for template/import backends)."""
    t = config["translation"]
    if t["backend"] not in LLM_BACKENDS or (t.get("model") or {}).get("prompts_file"):
        return None
    if lang == ENGLISH:
        return None
    from parallel_scaling.data.translate import load_prompts, prompt_templates

    return prompt_templates(load_prompts(None), lang)


def benchmark_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A benchmark's config entry with its preset resolved (what its jobs compute from)."""
    from parallel_scaling.data.benchmark import resolve

    return resolve(name, config["benchmarks"][name])


def benchmark_files(config: dict[str, Any], name: str, lang: str) -> list[str]:
    """The local file one benchmark language is read from (none for synthetic or hub benchmarks)."""
    s = benchmark_settings(config, name)
    if s.get("kind") != "file":
        return []
    code = (s.get("lang_codes") or {}).get(lang, lang)
    return [str(s["path"]).format(lang=code)]
