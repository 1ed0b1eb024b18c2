"""The config is validated before any job runs; each mistake names the key and the allowed values."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from helpers import REPO, load_yaml, snakemake, write_config
from parallel_scaling.plan import check_config as configcheck
from parallel_scaling.plan import study

BASE = load_yaml(REPO / "config.yaml")


def dry_run(tmp_path, config):
    write_config(tmp_path / "bad.yaml", config)
    return snakemake(REPO, "-n", "--configfile", str(tmp_path / "bad.yaml"), "--directory", str(tmp_path),
                     check=False, timeout=120)


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(unknown_key=1), "unknown_key"),
        (lambda c: c["grpo"].update(learning_rate="fast"), "learning_rate"),
        (lambda c: c["languages"]["evaluate"].append("xx"), "no templates for ['xx']"),
        (lambda c: c["languages"].update(K=6), "languages.K"),
    ],
    ids=["unknown-key", "wrong-type", "language-without-templates", "K-too-large"],
)
def test_bad_config_stops_before_any_job(tmp_path, mutate, expected):
    config = copy.deepcopy(BASE)
    mutate(config)
    proc = dry_run(tmp_path, config)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert expected in out
    assert not (tmp_path / "results").exists()


def _checked(config):
    return configcheck.check_config(config)


def _settings_errors(config):
    """Every problem but files that are not there (these tests write no benchmark files; missing
    files have their own cases in test_config_corpus.py)."""
    return [e for e in _checked(config) if "not found (relative paths" not in e]


def test_unseen_languages_must_remain():
    config = copy.deepcopy(BASE)
    config["languages"]["evaluate"] = ["en", "de", "fr", "es", "ru", "zh"]
    errors = _checked(config)
    assert any("at least two must stay out of every mixture" in e for e in errors)
    assert any("allowed K: 0..3" in e for e in errors)


def test_default_config_is_valid_and_shaped_as_documented():
    config = copy.deepcopy(BASE)
    assert _checked(config) == []
    names = [m.name for m in study.mixtures(config)]
    assert names == [f"k{k}" for k in range(config["languages"]["K"] + 1)]
    assert len(study.never_trained(config)) >= 2
    assert config["languages"]["K"] >= 4


def test_schema_fills_every_grpo_default():
    config = copy.deepcopy(BASE)
    config["grpo"] = {}
    assert configcheck.schema_errors(config) == []
    from parallel_scaling.dataio.schema import trainer_keys

    assert set(trainer_keys("grpo")) <= set(config["grpo"])


@pytest.mark.parametrize("path, config_class", [(("grpo",), "GRPOConfig"), (("sft",), "SFTConfig"),
                                                (("$defs", "sft_run"), "SFTConfig")])
def test_every_trainer_setting_of_the_schema_is_a_field_of_trls_config(path, config_class):
    """Trainer settings flow from the schema into TRL's config with no key list kept by hand: every key
    the schema does not mark as the pipeline's own ("x-pipeline") must be a field of TRL's config
    class, so a field TRL renames or drops fails here, not on the cluster."""
    import dataclasses

    import trl

    from parallel_scaling.dataio import schema

    fields = {f.name for f in dataclasses.fields(getattr(trl, config_class))}
    keys = schema.trainer_keys(*path)
    assert keys and set(keys) <= fields, sorted(set(keys) - fields)
    pipeline = [k for k in schema.node(*path).get("properties", {}) if k not in keys]
    assert not set(pipeline) & fields, pipeline  # ours, not TRL's


def test_defaults_live_in_the_schema_only():
    """Modules that run outside Snakemake take their defaults from the schema, not from a copy."""
    from parallel_scaling.dataio import schema
    from parallel_scaling.data import mixture, qc, source, translate

    for module, section in ((qc, "qc"), (source, "source"), (mixture, "mixtures"), (translate, "translation")):
        assert module.DEFAULTS == schema.defaults(section)
    filled = copy.deepcopy(BASE)
    for section in ("qc", "mixtures", "translation"):
        filled.pop(section, None)
    assert configcheck.schema_errors(filled) == []
    for section in ("qc", "mixtures", "translation"):
        assert filled[section] == schema.defaults(section), section


def test_defaults_are_filled_as_snakemake_validate_fills_them():
    """The workflow's own validator fills the same defaults as snakemake.utils.validate did."""
    from snakemake.utils import validate

    ours, theirs = copy.deepcopy(BASE), copy.deepcopy(BASE)
    assert configcheck.schema_errors(ours) == []
    validate(theirs, str(REPO / "workflow/schemas/config.schema.json"))
    assert ours == theirs


def test_multi_gpu_training_launches_one_process_per_gpu_of_the_job(tmp_path):
    """With an accelerate config, the GRPO rule asks for the study's GPUs (gpus.train_grpo) and starts
    `accelerate launch` with one process per GPU of the job; a profile or command line that would put
    another GPU count over the study's is refused."""
    config = copy.deepcopy(BASE)
    config["grpo"]["accelerate_config"] = "envs/accelerate/deepspeed_zero3.yaml"
    config["gpus"] = {"train_grpo": 4}
    write_config(tmp_path / "multi.yaml", config)
    target = "results/tiny/checkpoints/tiny/grpo/k1/s0"
    proc = snakemake(REPO, "-n", "-p", target, "--configfile", str(tmp_path / "multi.yaml"),
                     "--directory", str(tmp_path), timeout=120)
    out = proc.stdout + proc.stderr
    block = out.split("rule train_grpo:", 1)[1]
    assert re.search(r"resources: .*\bgpu=4\b", block.split("\n\n", 1)[0]), block[:2000]
    # the shipped file, found in the repository when the working directory has none
    assert (f"-m accelerate.commands.launch --config_file {REPO}/envs/accelerate/deepspeed_zero3.yaml"
            " --num_processes 4 -m parallel_scaling") in out
    proc = snakemake(REPO, "-n", target, "--set-resources", "train_grpo:gpu=1", "--configfile",
                     str(tmp_path / "multi.yaml"), "--directory", str(tmp_path), timeout=120, check=False)
    assert proc.returncode != 0
    assert "set-resources train_grpo: gpu=1 (profile or command line) would replace the study's 4 " \
           "(config key gpus.train_grpo)" in proc.stdout + proc.stderr


def test_config_overrides_are_typed_inside_lists_and_mappings():
    raw = {"seeds": ["0", "1"], "languages": {"K": "2", "parallel_order": ["no", "de"]},
           "grpo": {"learning_rate": "5e-5", "bf16": "true", "top_k": "-1", "name": "1e-3x"},
           "study": "s1", "analysis": {"offset": "False", "x": "null"}}
    assert study.typed_overrides(raw) == {
        "seeds": [0, 1], "languages": {"K": 2, "parallel_order": ["no", "de"]},
        "grpo": {"learning_rate": 5e-5, "bf16": True, "top_k": -1, "name": "1e-3x"},
        "study": "s1", "analysis": {"offset": False, "x": None}}


def test_list_given_with_config_on_the_command_line_plans_every_seed(tmp_path):
    """`--config 'seeds=[0,1]'` (Snakemake reads list items as strings) validates and plans both seeds."""
    proc = snakemake(REPO, "-n", "--quiet", "rules", "--configfile", str(REPO / "config.yaml"),
                     "--config", "seeds=[0,1]", "languages={K: 1}", "analysis={law: false}", "--directory", str(tmp_path), timeout=120)
    out = proc.stdout + proc.stderr
    jobs = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert jobs["train_grpo"] == 2 * 2  # k0, k1 x seeds 0, 1
    assert jobs["predict"] == 2 * 2 + 1  # + the initial model


def _with_benchmarks(**benchmarks):
    config = copy.deepcopy(BASE)
    config["benchmarks"] = {**config["benchmarks"], **benchmarks}
    return config


def test_benchmark_filter_and_difficulty_keys_validate():
    config = _with_benchmarks(
        mm_cnmo={"preset": "mmath", "path": "/data/mmath/{lang}.json", "filter": {"data_source": "CNMO"}},
        leveled={"kind": "file", "path": "/data/lv_{lang}.json", "format": "json", "question_field": "q",
                 "answer_field": "a", "filter": {"level": [1, 2, 3]}, "difficulty_field": "level",
                 "difficulty_weights": {"1": 1, "2": 2.5, "3": 6}},
        pm={"preset": "polymath"},
    )
    assert _settings_errors(config) == []
    assert study.difficulty_weights(config) == {
        "leveled": {"1": 1.0, "2": 2.5, "3": 6.0},
        "pm": {"low": 1.0, "medium": 2.0, "high": 4.0, "top": 8.0},
    }
    assert config["benchmarks"]["mm_cnmo"]["difficulty_weights"] is None  # schema default: the preset's


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"preset": "mmath", "filter": {"data_source": {"in": "CNMO"}}}, "filter"),
        ({"preset": "mmath", "filter": {"data_source": []}}, "filter"),
        ({"preset": "polymath", "difficulty_weights": {"low": -1}}, "difficulty_weights"),
        ({"preset": "mmath", "format": "yaml"}, "format"),
    ],
)
def test_schema_rejects_malformed_benchmark_keys(spec, expected):
    errors = _checked(_with_benchmarks(bad=spec))
    assert errors and all(e.startswith("benchmarks.bad.") for e in errors)
    assert any(expected in e for e in errors)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"preset": "no_such"}, "benchmarks.bad.preset: unknown preset 'no_such'"),
        ({"preset": "mmath", "difficulty_weights": {"hard": 2}}, "benchmarks.bad.difficulty_weights: needs difficulty_field"),
        ({"kind": "synthetic", "filter": {"template": "add"}}, "benchmarks.bad.filter: not available for kind 'synthetic'"),
    ],
)
def test_benchmark_settings_are_checked_before_any_job(spec, expected):
    assert any(expected in error for error in _checked(_with_benchmarks(bad=spec)))


def test_weighted_benchmark_reaches_the_analysis_command(tmp_path):
    config = _with_benchmarks(pm={"preset": "polymath", "languages": ["en", "zh"]})
    write_config(tmp_path / "pm.yaml", config)
    proc = snakemake(REPO, "-n", "-p", "results/tiny/tables/accuracy.csv", "--configfile", str(tmp_path / "pm.yaml"),
                     "--directory", str(tmp_path), timeout=120)
    out = proc.stdout + proc.stderr
    assert '--difficulty-weights \'{"pm": {"high": 4.0, "low": 1.0, "medium": 2.0, "top": 8.0}}\'' in out
    default = snakemake(REPO, "-n", "-p", "results/tiny/tables/accuracy.csv", "--configfile", str(REPO / "config.yaml"),
                        "--directory", str(tmp_path / "d"), timeout=120)
    assert "--difficulty-weights" not in default.stdout + default.stderr


def test_every_benchmark_snippet_of_the_docs_validates():
    """The benchmark formats of docs/benchmarks.md are configs that validate (and, with the shared data,
    load: the examples name `data/mgsm/...`, a user's copy; the shared copy has the same file names)."""
    import re
    import textwrap

    import yaml

    from parallel_scaling.data import benchmark as benchmarks

    text = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    section = text[text.index("## Benchmarks"):text.index("## Prediction and scoring")]
    snippets = [textwrap.dedent(block) for block in re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)]
    assert len(snippets) >= 6
    found = {}
    for snippet in snippets:
        data = yaml.safe_load(snippet)
        found.update(data.get("benchmarks", data))
    assert {"json", "tsv"} <= {b.get("format") for b in found.values()} and any("filter" in b for b in found.values())
    assert any("difficulty_weights" in b for b in found.values())
    assert _settings_errors(_with_benchmarks(**found)) == []
    mgsm = REPO.parent / "shared" / "data" / "mgsm"
    if mgsm.is_dir():  # the shared-data examples load from the repository root
        for name in ("mgsm", "mgsm_tsv"):
            spec = {**found[name], "path": str(mgsm / Path(found[name]["path"]).name)}
            assert len(benchmarks.load_language(name, benchmarks.resolve(name, spec), "sw")) == 250


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.update(gpus={"train_grpo": 8}),
         "grpo.accelerate_config: gpus.train_grpo / grpo.cpu_processes ask for 8 GPUs per job"),
        (lambda c: (c.update(gpus={"train_sft": 0}), c.setdefault("sft", {}).update(
            accelerate_config="envs/accelerate/deepspeed_zero3.yaml")),
         "sft.accelerate_config: envs/accelerate/deepspeed_zero3.yaml runs on GPUs (DEEPSPEED) but gpus.train_sft is 0"),
        (lambda c: c["grpo"].update(accelerate_config="envs/accelerate/multi_cpu.yaml"),
         "runs on CPU (use_cpu: true) but gpus.train_grpo asks for 1 GPU(s)"),
        (lambda c: c["grpo"].update(accelerate_config="envs/accelerate/nope.yaml"),
         "grpo.accelerate_config: envs/accelerate/nope.yaml does not exist"),
        (lambda c: (c.update(gpus={"train_grpo": 0}), c["grpo"].update(use_vllm=True)),
         "grpo.use_vllm: vLLM rollouts need GPUs but gpus.train_grpo is 0"),
        (lambda c: (c.update(gpus={"predict": 2}), c["prediction"].update(engine="vllm", vllm_tensor_parallel_size=1)),
         "gpus.predict: 2 GPUs but prediction.vllm_tensor_parallel_size is 1"),
        (lambda c: c.update(gpus={"translate": 1}),
         "gpus.translate: the 'template' backend runs no model"),
        (lambda c: c["prediction"].update(n=4, temperature=0.0),
         "prediction.n: 4 samples need prediction.temperature > 0"),
    ],
    ids=["gpus-without-launcher", "deepspeed-without-gpus", "cpu-config-with-gpus", "missing-accelerate-config",
         "vllm-without-gpus", "predict-gpus-not-tp", "gpus-for-template", "greedy-samples"],
)
def test_gpu_and_decoding_settings_that_cannot_work(mutate, expected):
    config = copy.deepcopy(BASE)
    mutate(config)
    errors = _checked(config)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize("key, value", [(("grpo", "vllm_mode"), "server"), (("prediction", "temperature"), 2.5),
                                        (("grpo", "temperature"), 3.0)])
def test_schema_rejects_what_vllm_cannot_do(key, value):
    config = copy.deepcopy(BASE)
    config.setdefault(key[0], {})[key[1]] = value
    errors = _checked(config)
    assert any(".".join(key) in e for e in errors), errors


def test_gpus_per_job_follow_the_engines():
    paper = load_yaml(REPO / "configs/parallel_paper.yaml")
    from snakemake.utils import validate

    validate(paper, str(REPO / "workflow/schemas/config.schema.json"))
    assert [study.gpus(paper, r) for r in study.GPU_RULES] == [4, 1, 8, 1, 1]
    assert study.train_processes(paper, "train_grpo") == 8
    config = copy.deepcopy(BASE)
    validate(config, str(REPO / "workflow/schemas/config.schema.json"))
    assert [study.gpus(config, r) for r in study.GPU_RULES] == [0, 1, 1, 1, 1]
    config["gpus"]["train_grpo"] = 0
    config["grpo"]["cpu_processes"] = 2
    assert study.train_processes(config, "train_grpo") == 2
