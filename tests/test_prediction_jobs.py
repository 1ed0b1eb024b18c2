"""Prediction jobs shaped to their time limit (issue #37; parallel_scaling.plan.prediction_jobs): the
split is deterministic and named by content, the cost plan and the submission check see the same
jobs, and a split checkpoint's one scored file is row for row the unsplit one (the tiny study, run
here on CPU, about a minute)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from helpers import copy_workflow, load_yaml, planned_jobs, snakemake, write_config  # noqa: E402
from parallel_scaling.evaluate.predict import shard_rows  # noqa: E402
from parallel_scaling.plan import answer_lengths, cost_plan, memory, prediction_jobs, study, submission  # noqa: E402
from parallel_scaling.plan.prediction_jobs import FileCost, Part  # noqa: E402


def costs(seconds: dict[tuple[str, str], float]) -> list[FileCost]:
    return [FileCost(b, lg, 10, 100.0, "test", 0.0, 0.0, s) for (b, lg), s in seconds.items()]


def test_split_packs_benchmarks_then_languages_then_shards():
    files = {("a", "en"): 1, ("a", "de"): 1, ("b", "en"): 1, ("b", "de"): 1,
             ("c", "en"): 3, ("c", "de"): 3, ("c", "fr"): 9}
    assert prediction_jobs.split(costs(files), None) == [Part("", tuple(files))]
    assert prediction_jobs.split(costs(files), 100) == [Part("", tuple(files))]  # fits: one job, no part
    parts = prediction_jobs.split(costs(files), 4)
    assert [p.label for p in parts] == ["a+b", "c.en", "c.de", "c.fr.1of3", "c.fr.2of3", "c.fr.3of3"]
    assert parts[0].files == (("a", "en"), ("a", "de"), ("b", "en"), ("b", "de"))
    assert parts[3].shard == (1, 3) and parts[3].files == (("c", "fr"),)
    # every file is answered once (its shards together), and a part's wildcard names its folder
    held = [(f, p.share()) for p in parts for f in p.files]
    assert {f: sum(s for g, s in held if g == f) for f, _ in held} == {f: 1.0 for f in files}
    assert parts[1].wildcard == ".parts/c.en"
    # a longer limit: a part holding the same files keeps its name (and so its finished predictions)
    again = prediction_jobs.split(costs(files), 6)
    assert [p.label for p in again] == ["a+b", "c.en+de", "c.fr.1of2", "c.fr.2of2"]


def test_part_files_in_the_order_of_one_unsplit_job():
    files = {("a", "en"): 1, ("a", "de"): 5, ("b", "en"): 1}
    parts = prediction_jobs.split(costs(files), 2)
    order = [(p.label, b, lg) for p, b, lg in prediction_jobs.part_files(parts, list(files))]
    assert order == [("a.en", "a", "en"), ("a.de.1of3", "a", "de"), ("a.de.2of3", "a", "de"),
                     ("a.de.3of3", "a", "de"), ("b", "b", "en")]


def test_shards_concatenate_to_the_file():
    rows = [{"id": i} for i in range(10)]
    assert sum((shard_rows(rows, i, 3) for i in (1, 2, 3)), []) == rows
    assert shard_rows(rows, 2, 3) == rows[3:6]
    with pytest.raises(ValueError, match="between 1 and 3"):
        shard_rows(rows, 4, 3)


def test_default_study_is_not_split():
    config = cost_plan.load_config([ROOT / "config.yaml"])
    parts = prediction_jobs.study_parts(config)
    assert all(p == [Part("", tuple(study.bench_lang_pairs(config)))] for p in parts.values())


def test_observational_study_fits_the_shipped_profile(capsys):
    """The shipped observational study (7-8B models, 16k-token answers): its longest checkpoints are
    split into parts that each fit the shipped 24 h, and cost-plan passes."""
    assert cost_plan.main(["--configfile", str(ROOT / "configs/observational.yaml"),
                           "--profile", str(ROOT / "slurm")]) == 0
    out = capsys.readouterr().out
    assert "split into" in out and "assumed: 0.5 x the longest answer, 16384 tokens" in out
    config = cost_plan.load_config([ROOT / "configs/observational.yaml"])
    result = cost_plan.plan(config, cost_plan.load_throughput(), "h100")
    hours = result["rules"]["predict"]["job_hours"]
    assert max(hours.values()) <= config["prediction_jobs"]["max_hours"]
    split = [j for j in hours if ".parts/" in j]
    assert split and len(hours) == cost_plan.job_counts(config)["predict"]
    # the submission check finds the same job under the same name
    run, part = split[0].split(".parts/")
    model, paradigm, mixture, seed = run.split("/")
    wc = {"model": model, "paradigm": paradigm, "mixture": mixture, "seed": seed[1:], "part": ".parts/" + part}
    assert submission.submission_errors(config, [("predict", wc, {"runtime": 1440})], ROOT / "slurm", None) == []
    (err,) = submission.submission_errors(config, [("predict", wc, {"runtime": 60})], ROOT / "slurm", None)
    assert f"predict {split[0]} is estimated at" in err and "prediction_jobs.max_hours below 1" in err


def test_no_split_when_max_hours_is_null():
    config = cost_plan.load_config([ROOT / "configs/observational.yaml"])
    config = copy.deepcopy(config)
    config["prediction_jobs"]["max_hours"] = None
    assert all(len(p) == 1 for p in prediction_jobs.study_parts(config).values())


# ---- answer lengths --------------------------------------------------------------------------------


def test_measured_lengths_most_specific_row_wins(tmp_path):
    table = tmp_path / "lengths.csv"
    table.write_text("model,paradigm,benchmark,lang,mean\n,,,,500\nr1,public,,,3000\nr1,public,math500_x,,2000\n"
                     "r1,public,math500_x,sw,9000\n")
    rows = answer_lengths.load_table(table)
    pick = lambda **k: answer_lengths.answer_length(rows, 8192, 0.5, **k)  # noqa: E731
    assert pick(model="r1", paradigm="public", benchmark="math500_x", lang="sw").mean == 8192  # capped
    assert pick(model="r1", paradigm="public", benchmark="math500_x", lang="en").mean == 2000
    assert pick(model="r1", paradigm="public", benchmark="aime2024_x", lang="en").mean == 3000
    assert pick(model="r1", paradigm="init", benchmark="aime2024_x", lang="en").mean == 500
    assert "lengths.csv:3" in pick(model="r1", paradigm="public", benchmark="aime2024_x", lang="en").source
    assumed = answer_lengths.answer_length(None, 8192, 0.5, model="r1")
    assert assumed.mean == 4096 and assumed.source.startswith("assumed")
    bad = tmp_path / "bad.csv"
    bad.write_text("model,tokens\nx,1\n")
    with pytest.raises(ValueError, match="needs a 'mean' column"):
        answer_lengths.load_table(bad)


def test_answer_lengths_command_reads_prediction_rows(tmp_path, capsys):
    import json

    rows = [{"model": "m", "paradigm": "public", "benchmark": "b", "lang": "en", "completion_tokens": t,
             "finish_reason": "length" if t == 400 else "eos"} for t in (100, 200, 300, 400)]
    rows.append({"model": "m", "paradigm": "public", "benchmark": "b", "lang": "en", "response": "old row"})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "en.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "lengths.csv"
    assert answer_lengths.main([str(tmp_path), "--out", str(out)]) == 0
    assert "1 row(s) without completion_tokens skipped" in capsys.readouterr().err
    (row,) = answer_lengths.load_table(out)
    assert row["mean"] == 250 and row["model"] == "m" and row["lang"] == "en"
    assert "p90" in out.read_text().splitlines()[0] and ",0.25" in out.read_text()  # cut share


def test_a_measured_table_changes_the_estimate_and_the_split(tmp_path):
    config = copy.deepcopy(cost_plan.load_config([ROOT / "configs/observational.yaml"]))
    throughput = cost_plan.load_throughput()
    before = cost_plan.plan(config, throughput)["rules"]["predict"]
    table = tmp_path / "lengths.csv"
    table.write_text("model,paradigm,benchmark,lang,mean\n,,,,1000\n")
    config["prediction_jobs"]["answer_lengths"] = str(table)
    after = cost_plan.plan(config, throughput)["rules"]["predict"]
    items = sum(cost_plan.benchmark_size(config, throughput, b)[0] for b, _ in study.bench_lang_pairs(config))
    assert after["gen_tokens"] == pytest.approx(len(study.runs(config)) * items * config["prediction"]["n"] * 1000)
    assert after["gen_tokens"] < before["gen_tokens"] / 3
    assert after["jobs"] == len(study.runs(config))  # short answers: one job per checkpoint
    assert list(after["answer_lengths"]) == ["measured (lengths.csv:2)"]


# ---- the workflow: a split checkpoint scores as the unsplit one --------------------------------------


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    wd = copy_workflow(tmp_path_factory.mktemp("split") / "wf")
    config = load_yaml(wd / "config.yaml")
    config["benchmarks"]["synth"]["languages"] = ["en", "de", "zh"]
    config["prediction"]["limit"] = 12
    write_config(wd / "whole.yaml", config)
    loaded = cost_plan.load_config([wd / "whole.yaml"])
    run = study.Run("tiny", "init", "init", 0)
    throughput = cost_plan.load_throughput()
    (first, *_rest) = prediction_jobs.file_costs(loaded, throughput, cost_plan.gpu_figures(throughput, "cpu"), run, None)
    start = prediction_jobs.startup_seconds(throughput, loaded["models"]["tiny"]["size_b"])
    # a limit at 3/4 of one language's estimate: every language in two shards
    config["prediction_jobs"] = {"gpu": "cpu", "max_hours": (start + 0.75 * first.seconds) / 3600}
    write_config(wd / "split.yaml", config)
    return wd


def test_split_checkpoint_scores_row_for_row_as_one_job(tiny_split):
    wd = tiny_split
    scored = "results/tiny/scored/tiny/init/init/s0/scored.jsonl"
    snakemake(wd, scored, "--configfile", "whole.yaml")
    whole = (wd / scored).read_text()
    assert whole.count("\n") == 3 * 12
    dry = planned_jobs(snakemake(wd, "-n", scored, "--configfile", "split.yaml"))
    assert dry.get("predict") == 6 and dry.get("score") == 1, dry
    snakemake(wd, scored, "--configfile", "split.yaml")
    assert (wd / scored).read_text() == whole
    parts = sorted(p.name for p in (wd / "results/tiny/predictions/tiny/init/init/s0.parts").iterdir()
                   if p.is_dir())
    assert parts == ["synth.de.1of2", "synth.de.2of2", "synth.en.1of2", "synth.en.2of2", "synth.zh.1of2",
                     "synth.zh.2of2"]
    assert all((wd / f"results/tiny/predictions/tiny/init/init/s0.parts/{p}.manifest.json").is_file() for p in parts)
    # planned again: nothing to do; a deleted part file is rebuilt (its job only), then rescored
    assert planned_jobs(snakemake(wd, "-n", scored, "--configfile", "split.yaml")) == {}
    (wd / "results/tiny/predictions/tiny/init/init/s0.parts/synth.zh.2of2/synth/zh.jsonl").unlink()
    assert planned_jobs(snakemake(wd, "-n", scored, "--configfile", "split.yaml")) == {"predict": 1, "score": 1}


# ---- settings per model ------------------------------------------------------------------------------


def _reasoning_study() -> dict:
    config = copy.deepcopy(cost_plan.load_config([ROOT / "configs/observational.yaml"]))
    config["prediction"]["vllm_tensor_parallel_size"] = None  # the planner picks per model
    config["models"]["r1_32b"] = {**config["models"]["r1_distill_qwen_7b"], "path": "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
                                  "trained": "Qwen/QwQ-32B", "size_b": 32.8}
    return config


def test_tensor_parallelism_picked_per_model_fits_and_divides_heads():
    from parallel_scaling.plan import model_settings

    config = _reasoning_study()
    settings = model_settings.study_settings(config)
    # 7B and 1.5B on one H100; the 32B model's weights and 128k-token KV cache need 2 (40 heads divide)
    assert settings["r1_distill_qwen_7b"]["vllm_tensor_parallel_size"] == 1
    assert settings["qwen25_math_1p5b"]["vllm_tensor_parallel_size"] == 1
    assert settings["r1_32b"]["vllm_tensor_parallel_size"] == 2
    assert model_settings.problems(config) == []
    pre = memory.preflight(config, cost_plan.load_throughput(), "h100")
    assert all(c["fits"] for c in pre["checks"] if c["rule"] == "predict"), pre["checks"]
    # the cost plan counts the 32B model's jobs on 2 GPUs
    result = cost_plan.plan(config, cost_plan.load_throughput(), "h100")
    gpus = result["rules"]["predict"]["job_gpus"]
    assert {g for j, g in gpus.items() if j.startswith("r1_32b/")} == {2}


def test_settings_a_model_cannot_run_are_refused():
    from parallel_scaling.plan import model_settings

    config = _reasoning_study()
    config["models"]["r1_distill_qwen_7b"]["prediction"] = {"vllm_tensor_parallel_size": 8}
    config["models"]["qwen25_math_7b"]["prediction"] = {"vllm_max_model_len": 32768}
    errors = model_settings.problems(config)
    assert any(e.startswith("models.r1_distill_qwen_7b.prediction.vllm_tensor_parallel_size: 8 does not divide "
                            "the 28 attention heads") and "[1, 2, 4]" in e for e in errors), errors
    assert any(e.startswith("models.qwen25_math_7b.prediction.vllm_max_model_len: 32768 exceeds the context")
               and "4096" in e for e in errors), errors


def test_a_models_own_settings_reach_its_jobs_and_the_estimate(tmp_path):
    from parallel_scaling.plan import model_settings

    config = _reasoning_study()
    config["models"]["r1_32b"]["prediction"] = {"max_new_tokens": 32768, "n": 8}
    s = model_settings.model_settings(config, "r1_32b")
    assert s["max_new_tokens"] == 32768 and s["n"] == 8 and s["temperature"] == config["prediction"]["temperature"]
    assert model_settings.model_settings(config, "r1_distill_qwen_7b")["max_new_tokens"] == 16384
    throughput = cost_plan.load_throughput()
    fig = cost_plan.gpu_figures(throughput, "h100")
    long = prediction_jobs.file_costs(config, throughput, fig, study.Run("r1_32b", "public", "public", 0), None)
    short = prediction_jobs.file_costs(config, throughput, fig, study.Run("r1_distill_qwen_7b", "public", "public", 0), None)
    assert long[0].gen_tokens == short[0].gen_tokens * 4  # twice the tokens, twice the samples


# ---- each distinct checkpoint evaluated once ------------------------------------------------------------


def test_a_checkpoint_named_by_two_runs_is_predicted_once(tmp_path_factory):
    """Three runs evaluate one checkpoint (a public model that is also another pair's starting model):
    one predict job; the others' predictions are its rows relabelled, and each run is scored."""
    import json

    wd = copy_workflow(tmp_path_factory.mktemp("reuse") / "wf")
    config = load_yaml(wd / "config.yaml")
    config["benchmarks"]["synth"]["languages"] = ["en", "zh"]
    config["prediction"]["limit"] = 6
    tiny = config["models"]["tiny"]
    config["models"] = {"a": {**tiny, "trained": "models/tiny-qwen2", "train": False},
                        "b": {**tiny, "train": False}}
    config["analysis"] = {**config.get("analysis", {}), "law": False}
    write_config(wd / "reuse.yaml", config)
    loaded = cost_plan.load_config([wd / "reuse.yaml"])
    assert {k: v.path for k, v in prediction_jobs.duplicates(loaded).items()} == {
        "a/public/public/s0": "a/init/init/s0", "b/init/init/s0": "a/init/init/s0"}
    assert cost_plan.plan(loaded, cost_plan.load_throughput(), "cpu")["rules"]["predict"]["jobs"] == 1
    targets = [f"results/tiny/scored/{r}/scored.jsonl" for r in ("a/init/init/s0", "a/public/public/s0", "b/init/init/s0")]
    dry = planned_jobs(snakemake(wd, "-n", *targets, "--configfile", "reuse.yaml"))
    assert dry.get("predict") == 1 and dry.get("reuse_predictions") == 2 and dry.get("score") == 3, dry
    snakemake(wd, *targets, "--configfile", "reuse.yaml")
    rows = [[json.loads(line) for line in (wd / t).read_text().splitlines()] for t in targets]
    assert len(rows[0]) == len(rows[1]) == len(rows[2]) == 12
    for own, (model, paradigm) in zip(rows[1:], [("a", "public"), ("b", "init")]):
        assert {(r["model"], r["paradigm"], r["reused_from"]) for r in own} == {(model, paradigm, "a/init/init/s0")}
        assert [r["response"] for r in own] == [r["response"] for r in rows[0]]
        assert [r["correct"] for r in own] == [r["correct"] for r in rows[0]]


# ---- a dry run through the profile says what the submission would refuse ---------------------------


def test_dry_run_through_the_profile_reports_what_submission_would_refuse(tmp_path):
    import shutil
    import subprocess

    from helpers import offline_env

    assert submission.dry_run_requested(["-n"]) and submission.dry_run_requested(["-np", "--profile", "x"])
    assert submission.dry_run_requested(["--dry-run"]) and not submission.dry_run_requested(["--notemp", "-p"])
    shutil.copytree(ROOT / "slurm", tmp_path / "slurm")
    profile = tmp_path / "slurm" / "config.yaml"
    text = profile.read_text().replace("runtime: 1440            # EDIT for your site: minutes\n  translate:",
                                       "runtime: 600\n  translate:")
    profile.write_text(text)
    cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--profile", "slurm", "--snakefile",
           str(ROOT / "Snakefile"), "--configfile", str(ROOT / "configs/observational.yaml")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=offline_env(warm=False), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = proc.stderr.split("would be refused:", 1)[1]
    assert "'myaccount' is the shipped placeholder" in report
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == "runtime: 600")
    assert f"slurm/config.yaml:{line} (set-resources: predict: runtime)" in report
    assert "prediction_jobs.max_hours below 10" in report
    # without the profile (a plain dry run), nothing is said
    proc = subprocess.run(cmd[:6] + cmd[8:], cwd=tmp_path, env=offline_env(warm=False), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "would be refused" not in proc.stderr


SHIPPED = ["config.yaml", *sorted(f"configs/{p.name}" for p in (ROOT / "configs").glob("*.yaml")),
           *sorted(f"configs/examples/{p.name}" for p in (ROOT / "configs/examples").glob("*.yaml"))]


@pytest.mark.parametrize("configfile", SHIPPED)
def test_shipped_studies_fit_the_shipped_profile(configfile, capsys):
    """cost-plan passes for every shipped study against slurm/config.yaml: every job fits its GPU's
    memory and its rule's runtime (the reasoning example: 12 pairs, 32k-token answers, 4 samples)."""
    assert cost_plan.main(["--configfile", str(ROOT / configfile), "--profile", str(ROOT / "slurm")]) == 0, \
        capsys.readouterr().err


def test_reasoning_example_is_split_shared_and_parallel():
    config = cost_plan.load_config([ROOT / "configs/examples/reasoning_pairs.yaml"])
    result = cost_plan.plan(config, cost_plan.load_throughput(), "h100")
    predict = result["rules"]["predict"]
    assert len(config["models"]) == 12 and config["prediction"]["max_new_tokens"] == 32768
    assert result["job_counts"]["reuse_predictions"] == 7  # distilled checkpoints named twice
    assert {g for j, g in predict["job_gpus"].items() if "32b" in j} == {2}
    assert {g for j, g in predict["job_gpus"].items() if "32b" not in j} == {1}
    assert max(predict["job_hours"].values()) <= 20


def test_cost_plan_takes_config_overrides_merged_as_snakemake_merges_them(capsys):
    import json

    args = ["--configfile", str(ROOT / "configs/observational.yaml"), "--profile", "none", "--json"]
    assert cost_plan.main(args) == 0
    before = json.loads(capsys.readouterr().out)["rules"]["predict"]
    assert cost_plan.main([*args, "--config", "prediction={n: 8}"]) == 0
    after = json.loads(capsys.readouterr().out)["rules"]["predict"]
    assert after["gen_tokens"] == pytest.approx(2 * before["gen_tokens"])
    merged = cost_plan.load_config([ROOT / "configs/observational.yaml"],
                                   overrides=cost_plan.parse_overrides(["prediction={n: 8}"]))
    assert merged["prediction"]["n"] == 8 and merged["prediction"]["temperature"] == 0.6  # the rest kept


def test_a_models_settings_are_checked_by_cost_plan_and_the_workflow(tmp_path, capsys):
    import subprocess

    from helpers import offline_env

    bad = "models={qwen25_7b: {prediction: {vllm_tensor_parallel_size: 8}}}"
    from parallel_scaling.plan.check_config import ConfigError

    with pytest.raises(ConfigError, match="models.qwen25_7b.prediction.vllm_tensor_parallel_size: 8 does not "
                                          "divide the 28 attention heads"):
        cost_plan.main(["--configfile", str(ROOT / "configs/observational.yaml"), "--config", bad])
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
                           "--configfile", str(ROOT / "configs/observational.yaml"), "--config", bad],
                          cwd=tmp_path, env=offline_env(warm=False), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "--config: models.qwen25_7b.prediction.vllm_tensor_parallel_size: 8 does not divide" in proc.stdout + proc.stderr
