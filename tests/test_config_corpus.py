"""A corpus of malformed configs, each refused while planning with a short message naming the key.

Each case mutates a shipped study (the default tiny study, the paper-scale parallel study or the
observational one), runs the workflow's own config check in-process (what common.smk runs before
any job: parallel_scaling.plan.check_config.check_config) and asserts that the config is refused, that
the key is named, and that the message is a few short lines. A handful of real ``snakemake`` runs
below prove the command-line path: the same message, no traceback, no schema dump, no job run.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from helpers import REPO, SNAKEMAKE, offline_env, write_config
from parallel_scaling.plan import check_config as configcheck
from parallel_scaling.plan import study

BASES = {
    "tiny": configcheck.load_yaml(REPO / "config.yaml"),
    # the released tiny model's recipe: the default study with the model built here (source: tiny)
    "build": configcheck.load_yaml(REPO / "models/tiny-qwen2/recipe.yaml"),
    "paper": configcheck.load_yaml(REPO / "configs/parallel_paper.yaml"),
    "obs": configcheck.load_yaml(REPO / "configs/observational.yaml"),
}


@dataclass(frozen=True)
class Case:
    name: str
    base: str
    mutate: Callable[[dict[str, Any]], Any]
    key: str  # must appear in the message


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets ``a.b.c`` (creating mappings on the way)."""

    def fn(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = config
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value

    return fn


def _do(*fns: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
    def fn(config: dict[str, Any]) -> None:
        for f in fns:
            f(config)

    return fn


def _bench(spec: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["benchmarks"].update(bad=spec)


def _rename_model(new: str) -> Callable[[dict[str, Any]], None]:
    return lambda c: c["models"].update({new: c["models"].pop("tiny")})


FILE_SOURCE = {"kind": "file", "train": "data/missing_train.jsonl", "question_field": "q", "answer_field": "a"}
GOOD_FILE_BENCH = {"kind": "file", "path": "bench_{lang}.jsonl", "question_field": "q", "answer_field": "a"}

CASES = [
    # --- faults that used to plan without complaint ---
    Case("duplicate-seeds", "tiny", _set("seeds", [0, 0]), "seeds"),
    Case("K-0-no-law-points", "tiny", _set("languages.K", 0), "languages.K"),
    Case("K-2-too-few-law-points", "tiny", _set("languages.K", 2), "languages.K"),
    Case("K-3-with-offset", "tiny", _do(_set("languages.K", 3), _set("analysis.offset", True)), "languages.K"),
    Case("unknown-preset", "tiny", _bench({"preset": "no_such_benchmark"}), "benchmarks.bad.preset"),
    Case("missing-benchmark-file", "tiny", _bench(GOOD_FILE_BENCH), "benchmarks.bad.path"),
    Case("missing-source-file", "tiny", _do(_set("source", FILE_SOURCE), _set("translation", {"backend": "import"}),
                                             _set("benchmarks", {"b": GOOD_FILE_BENCH})), "source.train"),
    Case("missing-source-test-file", "tiny", _do(_set("source", {**FILE_SOURCE, "test": "nope/test.jsonl"})),
         "source.test"),
    Case("missing-local-model", "paper", _set("models.qwen25_7b_instruct.path", "./models/qwen-7b"),
         "models.qwen25_7b_instruct.path"),
    Case("model-dir-without-config-json", "paper", _set("models.qwen25_7b_instruct.path", "."),
         "models.qwen25_7b_instruct.path"),
    Case("model-name-with-space", "tiny", _rename_model("my tiny"), "models.my tiny"),
    Case("model-name-with-quote", "tiny", _rename_model("it's"), "models.it's"),
    Case("grpo-max-steps-negative", "tiny", _set("grpo.max_steps", -7), "grpo.max_steps"),
    Case("sft-max-steps-negative", "tiny", _set("sft.max_steps", -3), "sft.max_steps"),
    Case("tiny-build-max-steps-negative", "build", _set("models.tiny.build.pretrain.max_steps", -2),
         "models.tiny.build.pretrain.max_steps"),
    Case("min-number-above-max", "tiny", _set("source.synthetic.min_number", 12), "source.synthetic.min_number"),
    Case("benchmark-without-never-trained-language", "tiny", _set("benchmarks.synth.languages", ["en", "de", "fr"]),
         "benchmarks.synth.languages"),
    Case("english-not-configurable", "tiny", _set("languages.english", "de"), "languages.english"),
    Case("english-en-removed", "tiny", _set("languages.english", "en"), "languages.english"),
    Case("monolingual-english", "tiny", _set("languages.monolingual", ["en"]), "languages.monolingual"),
    Case("include-english-removed", "tiny", _set("mixtures.include_english", False), "mixtures.include_english"),
    Case("observational-asks-for-a-law", "obs", _set("analysis.law", True), "analysis.law"),
    Case("paper-law-without-heldout-benchmark", "paper",
         _set("benchmarks.math500_x", {"preset": "math500_x", "languages": ["en", "zh", "es"]}),
         "benchmarks.math500_x.languages"),
    # --- messages that used to be unreadable ---
    Case("unknown-top-level-key", "tiny", _set("unknown_key", 1), "unknown_key"),
    Case("misspelled-nested-key", "tiny", _set("grpo.learnig_rate", 1e-5), "grpo.learnig_rate"),
    Case("nested-key-at-top-level", "tiny", _set("K", 2), "languages.K"),
    Case("unknown-prompt-set", "tiny", _set("models.tiny.prompt_set", "no_such_set"), "models.tiny.prompt_set"),
    Case("K-hint-with-few-languages", "tiny", _set("languages.evaluate", ["en", "de", "fr", "es", "zh"]),
         "allowed K: 0..2"),
    # --- types, enums, ranges ---
    Case("learning-rate-not-a-number", "tiny", _set("grpo.learning_rate", "fast"), "grpo.learning_rate"),
    Case("learning-rate-zero", "tiny", _set("grpo.learning_rate", 0), "grpo.learning_rate"),
    Case("temperature-zero", "tiny", _set("grpo.temperature", 0), "grpo.temperature"),
    Case("top-p-above-one", "tiny", _set("grpo.top_p", 1.5), "grpo.top_p"),
    Case("num-generations-one", "tiny", _set("grpo.num_generations", 1), "grpo.num_generations"),
    Case("loss-type-unknown", "tiny", _set("grpo.loss_type", "ppo"), "grpo.loss_type"),
    Case("unknown-reward", "tiny", _set("grpo.reward_weights.fluency", 1.0), "grpo.reward_weights.fluency"),
    Case("batch-not-multiple-of-group", "tiny", _set("grpo.per_device_train_batch_size", 61),  # prime: no group size divides it
         "grpo.per_device_train_batch_size"),
    Case("use-vllm-not-bool", "tiny", _set("grpo.use_vllm", "yes"), "grpo.use_vllm"),
    Case("missing-accelerate-config", "tiny", _set("grpo.accelerate_config", "envs/accelerate/nope.yaml"),
         "grpo.accelerate_config"),
    Case("prediction-n-zero", "tiny", _set("prediction.n", 0), "prediction.n"),
    Case("prediction-engine-unknown", "tiny", _set("prediction.engine", "hf"), "prediction.engine"),
    Case("prediction-device-unknown", "tiny", _set("prediction.device", "gpu"), "prediction.device"),
    Case("analysis-y-unknown", "tiny", _set("analysis.y", "best"), "analysis.y"),
    Case("analysis-level-above-one", "tiny", _set("analysis.level", 1.5), "analysis.level"),
    Case("analysis-law-not-bool", "tiny", _set("analysis.law", "no"), "analysis.law"),
    Case("paradigm-unknown", "tiny", _set("paradigms", ["grpo", "ppo"]), "paradigms"),
    Case("paradigm-duplicate", "tiny", _set("paradigms", ["grpo", "grpo"]), "paradigms"),
    Case("seeds-empty", "tiny", _set("seeds", []), "seeds"),
    Case("seed-not-integer", "tiny", _set("seeds", ["a"]), "seeds.0"),
    Case("study-name-with-space", "tiny", _set("study", "my study"), "study"),
    Case("mixture-budget-unknown", "tiny", _set("mixtures.budget", "double"), "mixtures.budget"),
    Case("mixture-items-zero", "tiny", _set("mixtures.items", 0), "mixtures.items"),
    Case("qc-length-ratio-one-bound", "tiny", _set("qc.length_ratio.default", [0.5]), "qc.length_ratio.default"),
    Case("synthetic-template-unknown", "tiny", _set("source.synthetic.templates", ["add", "div"]),
         "source.synthetic.templates.1"),
    Case("archive-licence-misspelled", "tiny", _set("archive.licence", "MIT"), "archive.licence"),
    Case("archive-weights-unknown", "tiny", _set("archive.weights", "link"), "archive.weights"),
    # --- languages ---
    Case("language-without-templates", "tiny", lambda c: c["languages"]["evaluate"].append("xx"), "languages"),
    Case("language-code-uppercase", "tiny", lambda c: c["languages"]["evaluate"].append("EN"), "languages.evaluate"),
    Case("K-above-order", "tiny", _set("languages.K", 6), "languages.K"),
    Case("english-in-parallel-order", "tiny", _set("languages.parallel_order", ["en", "de", "fr", "es"]),
         "languages.parallel_order"),
    Case("evaluate-without-english", "tiny", _set("languages.evaluate", ["de", "fr", "es", "ru", "zh", "ja", "th", "sw"]),
         "languages.evaluate"),
    Case("evaluate-duplicate", "tiny", lambda c: c["languages"]["evaluate"].append("de"), "languages.evaluate"),
    Case("monolingual-duplicate", "tiny", _set("languages.monolingual", ["de", "de"]), "languages.monolingual"),
    Case("languages-missing-K", "tiny", lambda c: c["languages"].pop("K"), "languages.K"),
    # --- models ---
    Case("model-source-unknown", "tiny", _set("models.tiny.source", "hub"), "models.tiny.source"),
    Case("pretrained-without-path", "paper", lambda c: c["models"]["qwen25_7b_instruct"].pop("path"),
         "models.qwen25_7b_instruct.path"),
    Case("tiny-with-path", "build", _set("models.tiny.path", "Qwen/Qwen2.5-7B"), "models.tiny.path"),
    Case("hub-id-with-space", "paper", _set("models.qwen25_7b_instruct.path", "Qwen/Qwen 2.5-7B"),
         "models.qwen25_7b_instruct.path"),
    Case("public-id-with-three-parts", "obs", _set("models.qwen25_7b.trained", "a b/c"), "models.qwen25_7b.trained"),
    Case("model-key-misspelled", "tiny", _set("models.tiny.prompt_sett", "plain"), "models.tiny.prompt_sett"),
    Case("models-empty", "tiny", _set("models", {}), "models"),
    # --- benchmarks ---
    Case("benchmark-name-with-dash", "tiny", lambda c: c["benchmarks"].update({"my-bench": {"kind": "synthetic"}}),
         "benchmarks.my-bench"),
    Case("benchmark-without-kind-or-preset", "tiny", _bench({"question_field": "q"}), "benchmarks.bad"),
    Case("synthetic-benchmark-with-filter", "tiny", _bench({"kind": "synthetic", "filter": {"t": "add"}}),
         "benchmarks.bad.filter"),
    Case("synthetic-benchmark-with-preset", "tiny", _bench({"kind": "synthetic", "preset": "mgsm"}),
         "benchmarks.bad.preset"),
    Case("benchmark-language-not-evaluated", "tiny", _set("benchmarks.synth.languages", ["en", "zh", "ko"]),
         "benchmarks.synth.languages"),
    Case("benchmark-answer-type-unknown", "tiny", _bench({**GOOD_FILE_BENCH, "answer_type": "text"}),
         "benchmarks.bad.answer_type"),
    Case("benchmark-format-unknown", "tiny", _bench({**GOOD_FILE_BENCH, "format": "yaml"}), "benchmarks.bad.format"),
    Case("file-benchmark-without-path", "tiny", _bench({"kind": "file", "question_field": "q", "answer_field": "a"}),
         "benchmarks.bad.path"),
    Case("file-benchmark-without-question-field", "tiny", _bench({"kind": "file", "path": "x_{lang}.jsonl",
                                                                   "answer_field": "a"}),
         "benchmarks.bad.question_field"),
    Case("hub-benchmark-without-name", "tiny", _bench({"kind": "huggingface", "question_field": "q",
                                                       "answer_field": "a"}), "benchmarks.bad.hf_name"),
    Case("difficulty-weight-negative", "tiny", _bench({"preset": "polymath", "difficulty_weights": {"low": -1}}),
         "benchmarks.bad.difficulty_weights"),
    Case("weights-without-difficulty-field", "tiny", _bench({"preset": "mmath", "path": "m_{lang}.json",
                                                             "difficulty_weights": {"hard": 2}}),
         "benchmarks.bad.difficulty_weights"),
    Case("hub-benchmark-local-data-files-missing", "tiny",
         _bench({"kind": "huggingface", "hf_name": "json", "hf_data_files": {"test": "data/{lang}.jsonl"},
                 "hf_split": "test", "question_field": "q", "answer_field": "a"}), "benchmarks.bad.hf_data_files"),
    # --- source and translation ---
    Case("source-kind-unknown", "tiny", _set("source.kind", "web"), "source.kind"),
    Case("file-source-without-train", "tiny", _do(_set("source", {"kind": "file"}), _set("translation.backend", "import"),
                                                   _set("benchmarks", {"b": GOOD_FILE_BENCH})), "source.train"),
    Case("hub-source-without-name", "paper", lambda c: c["source"].pop("hf_name"), "source.hf_name"),
    Case("template-backend-with-real-source", "paper", _set("translation", {"backend": "template"}),
         "translation.backend"),
    Case("translation-backend-unknown", "tiny", _set("translation.backend", "google"), "translation.backend"),
    Case("import-without-path", "paper", _set("translation", {"backend": "import"}), "translation.import.path"),
    Case("import-file-missing", "paper", _set("translation", {"backend": "import", "import": {"path": "tr/{lang}.jsonl"}}),
         "translation.import.path"),
    Case("llm-translation-without-model", "paper", _set("translation", {"backend": "transformers"}),
         "translation.model.path"),
    Case("translation-prompts-file-missing", "paper", _set("translation.model.prompts_file", "my_prompts.yaml"),
         "translation.model.prompts_file"),
    Case("translation-model-local-missing", "paper", _set("translation.model.path", "/nonexistent/translator"),
         "translation.model.path"),
]


def _check(case: Case) -> list[str]:
    config = copy.deepcopy(BASES[case.base])
    case.mutate(config)
    return configcheck.check_config(config)


def test_the_corpus_is_large():
    assert len(CASES) >= 60
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_config_is_refused_naming_the_key(case, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths are read from the working directory, as by the jobs
    errors = _check(case)
    assert errors, f"{case.name}: planned without complaint"
    message = configcheck.report(errors, ["study.yaml"])
    assert case.key in message, message
    lines = message.splitlines()
    assert len(lines) <= configcheck.MAX_MESSAGES + 2, message
    assert all(len(line) <= 400 for line in lines), message
    assert "Traceback" not in message and "OrderedDict" not in message


def test_every_shipped_study_passes_the_same_checks(monkeypatch):
    """The corpus's bases are valid as shipped (run from the repository root, where their
    relative paths point)."""
    monkeypatch.chdir(REPO)
    for name, base in BASES.items():
        assert configcheck.check_config(copy.deepcopy(base)) == [], name


def test_the_K_hint_names_a_K_that_plans(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(BASES["tiny"])
    config["languages"]["evaluate"] = ["en", "de", "fr", "es", "ru", "zh"]
    config["languages"]["K"] = 4
    (line,) = [e for e in configcheck.check_config(config) if "allowed K" in e]
    assert "allowed K: 0..3" in line
    config["languages"]["K"] = 3
    assert configcheck.check_config(config) == []


@pytest.mark.parametrize("setting, jobs, named", [
    (("prediction", "engine", "vllm"), [("predict", {"model": "tiny"})], "prediction.engine"),
    (("grpo", "use_vllm", True), [("train_grpo", {"model": "tiny"})], "grpo.use_vllm"),
    (("grpo", "device", "cuda"), [("train_grpo", {"model": "tiny"})], "grpo.device"),
    (("prediction", "device", "cuda"), [("predict", {"model": "tiny"})], "prediction.device"),
    (("translation", "backend", "vllm"), [("translate", {"lang": "de", "split": "train"})], "translation.backend"),
])
def test_gpu_settings_are_refused_for_a_local_run_without_gpu(setting, jobs, named):
    """Before the first job of a run on this machine (common.smk's onstart), with the jobs about to
    run: settings that need a GPU, when there is none. Jobs that do not use the setting pass."""
    config = copy.deepcopy(BASES["tiny"])
    section, key, value = setting
    config[section][key] = value
    assert configcheck.schema_errors(config) == []
    errors = configcheck.gpu_job_errors(config, jobs, gpu=False)
    assert len(errors) == 1 and errors[0].startswith(named) and "needs a GPU" in errors[0]
    assert configcheck.gpu_job_errors(config, jobs, gpu=True) == []
    assert configcheck.gpu_job_errors(config, [("score", {}), ("translate", {"lang": "en"})], gpu=False) == []


# --------------------------------------------------------------------------------------------------
# YAML files


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\nlanguages:\n  K: 2\n   evaluate: [en\n")
    with pytest.raises(configcheck.ConfigError, match=r"bad\.yaml:4:\d+: YAML syntax error"):
        configcheck.load_yaml(bad)


def test_duplicate_key_names_both_lines(tmp_path):
    bad = tmp_path / "dup.yaml"
    bad.write_text("study: x\ngrpo:\n  learning_rate: 1.0e-5\n  beta: 0.0\n  learning_rate: 2.0e-5\n")
    with pytest.raises(configcheck.ConfigError, match=r"dup\.yaml:5: grpo\.learning_rate: given twice \(first on line 3\)"):
        configcheck.load_yaml(bad)


def test_a_list_is_not_a_config(tmp_path):
    bad = tmp_path / "list.yaml"
    bad.write_text("- study: x\n")
    with pytest.raises(configcheck.ConfigError, match=r"list\.yaml: a config file is a mapping"):
        configcheck.load_yaml(bad)


def test_messages_name_the_file_and_line_of_the_key(tmp_path):
    config = copy.deepcopy(BASES["tiny"])
    config["grpo"]["learnig_rate"] = 1e-5
    path = write_config(tmp_path / "study.yaml", config)
    merged, origins = configcheck.load_study([path], {"seeds": [3, 3]})
    errors = configcheck.check_config(merged, origins)
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "learnig_rate" in text)
    assert any(e.startswith(f"{path}:{line}: grpo.learnig_rate: unknown key; did you mean grpo.learning_rate?")
               for e in errors), errors
    assert any(e.startswith("--config: seeds: 3 given more than once") for e in errors)


# --------------------------------------------------------------------------------------------------
# the command line: snakemake itself, and check-config


def _package_env():
    return {**offline_env(), "PYTHONPATH": str(REPO / "workflow")}


def _snakemake(workdir, *args, timeout=120):
    cmd = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--cores", "1",
           "--directory", str(workdir), *args]
    return subprocess.run(cmd, cwd=workdir, env=offline_env(), capture_output=True, text=True, timeout=timeout)


def _assert_short_refusal(proc, *named, max_lines=8):
    """Everything Snakemake printed (its log goes to stdout and stderr) is a few lines."""
    err = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in err and "OrderedDict" not in err and "Failed validating" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Using workflow specific profile")]
    assert len(lines) <= max_lines, err
    for text in named:
        assert text in err, err


def _study(tmp_path, mutate=None, name="study.yaml"):
    config = copy.deepcopy(BASES["tiny"])
    if mutate:
        mutate(config)
    return write_config(tmp_path / name, config)


def test_cli_unknown_key_in_a_study_file(tmp_path):
    path = _study(tmp_path, _set("grpo.learnig_rate", 1e-5))
    proc = _snakemake(tmp_path, "-n", "--configfile", str(path))
    # the file as given, relative to the working directory, and the key's line
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "learnig_rate" in text)
    _assert_short_refusal(proc, "ConfigError", f"{path.name}:{line}: grpo.learnig_rate: unknown key; "
                          "did you mean grpo.learning_rate?")
    assert not (tmp_path / "results").exists()


def test_cli_unknown_top_level_key_on_the_command_line(tmp_path):
    proc = _snakemake(tmp_path, "-n", "--configfile", str(REPO / "config.yaml"), "--config", "KK=2")
    _assert_short_refusal(proc, "--config: KK: unknown key")


def test_cli_yaml_syntax_error_in_config_yaml(tmp_path):
    """config.yaml (the study when no --configfile is given) is read by the workflow: file and line."""
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text().replace("K: 4", "K: [4"))
    proc = _snakemake(tmp_path, "-n")
    _assert_short_refusal(proc, "config.yaml:", "YAML syntax error")


def test_cli_yaml_syntax_error_in_a_configfile_and_check_config(tmp_path):
    """A --configfile is read by Snakemake before the workflow: its message is short but cannot name
    the file (a Snakemake limitation); check-config names file and line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config.yaml").read_text().replace("K: 4", "K: [4"))
    proc = _snakemake(tmp_path, "-n", "--configfile", str(bad))
    _assert_short_refusal(proc, "not valid JSON or YAML", max_lines=4)
    check = subprocess.run([sys.executable, "-m", "parallel_scaling", "check-config", "--configfile", str(bad)],
                           cwd=tmp_path, env=_package_env(), capture_output=True, text=True, timeout=60)
    assert check.returncode == 2
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "K: [4" in text)
    assert f"{bad.name}:{line + 1}:" in check.stderr or f"{bad.name}:{line}:" in check.stderr, check.stderr
    assert len(check.stderr.strip().splitlines()) == 1


def test_cli_study_without_law_points(tmp_path):
    path = _study(tmp_path, _set("languages.K", 0))
    proc = _snakemake(tmp_path, "-n", "--configfile", str(path))
    _assert_short_refusal(proc, "languages.K: 0 gives 0 multilingual point(s)", "analysis.law: false")


def test_cli_local_run_needing_a_gpu_stops_before_the_first_job(tmp_path):
    if configcheck.has_gpu():
        pytest.skip("this machine has a GPU")
    path = _study(tmp_path, _set("prediction.engine", "vllm"))
    proc = _snakemake(tmp_path, "--configfile", str(path), timeout=180)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "prediction.engine: 'vllm' needs a GPU" in out, out[-3000:]
    assert "Traceback" not in out
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()
    # planning it (-n) is fine: the study may be meant for a cluster; so is --touch (nothing runs:
    # bench/replan.sh marks a GPU study's placeholder outputs up to date with it)
    assert _snakemake(tmp_path, "-n", "--configfile", str(path)).returncode == 0
    proc = _snakemake(tmp_path, "--touch", "--configfile", str(path))
    assert proc.returncode == 0 and "needs a GPU" not in proc.stdout + proc.stderr, proc.stderr[-3000:]


def test_check_config_accepts_a_shipped_study():
    proc = subprocess.run([sys.executable, "-m", "parallel_scaling", "check-config", "--configfile",
                           "configs/observational.yaml"], cwd=REPO, env=_package_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "config OK: study 'observational', 6 model(s)" in proc.stdout
    assert json.dumps(study.ENGLISH) == '"en"'


@pytest.mark.parametrize("content, says", [
    ("<!DOCTYPE html>\n<html><body>Not Found</body></html>\n", "train.jsonl:1: invalid JSON"),
    ('{"question": "Tom has 2 apples. How many?", "answer": "#### 2"}\n', "mixtures.items: mixture k0 (en) asks for"),
], ids=["html-page-as-source", "source-of-one-row"])
def test_cli_data_error_while_the_config_is_read_is_the_last_thing_on_screen(tmp_path, content, says):
    """A data file that planning refuses (plan/data_sizes.py reads the source): the real snakemake
    ends with the message naming the file as its last lines, and no code location after it."""
    (tmp_path / "train.jsonl").write_text(content, encoding="utf-8")
    row = {"id": "item-train-0", "question": "Tom hat 2 Äpfel. Wie viele?", "answer": 2}
    for lg in ("en", "de", "fr", "es"):
        (tmp_path / f"b_{lg}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    (tmp_path / "tr_de.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    path = _study(tmp_path, _do(
        _set("languages", {"parallel_order": ["de"], "K": 1, "evaluate": ["en", "de", "fr", "es"]}),
        _set("analysis.law", False),
        _set("source", {"kind": "file", "train": "train.jsonl", "test": "b_en.jsonl"}),
        _set("translation", {"backend": "import", "import": {"path": "tr_{lang}.jsonl"}}),
        _set("benchmarks", {"b": {"kind": "file", "path": "b_{lang}.jsonl", "question_field": "question",
                                  "answer_field": "answer"}})))
    proc = _snakemake(tmp_path, "-n", "--configfile", str(path))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert says in "\n".join(lines[-2:]) and "train.jsonl" in lines[-1], proc.stderr[-2000:]
    assert 'File "' not in proc.stdout + proc.stderr and "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
