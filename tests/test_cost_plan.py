"""The cost plan (python -m parallel_scaling cost-plan): job counts, positive GPU-hours, monotone in the
GRPO group size, clear errors, and the measured-seconds comparison. Pure Python, about 2 s."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))

from parallel_scaling import cli  # noqa: E402
from parallel_scaling.plan import cost_plan, memory, study  # noqa: E402


@pytest.fixture(scope="module")
def throughput():
    return cost_plan.load_throughput()


@pytest.fixture(scope="module")
def default_config():
    return cost_plan.load_config([ROOT / "config.yaml"])


@pytest.fixture(scope="module")
def paper_config():
    return cost_plan.load_config([ROOT / "configs/parallel_paper.yaml"])


def test_default_study_plan(default_config, throughput):
    result = cost_plan.plan(default_config, throughput, "cpu")
    n_mix = default_config["languages"]["K"] + 1
    n_train = n_mix * len(default_config["seeds"]) * len(default_config["models"])
    assert result["rules"]["train_grpo"]["jobs"] == n_train
    assert result["rules"]["build_init_model"]["jobs"] == 0  # the released tiny model: nothing to build
    assert result["rules"]["predict"]["jobs"] == n_train + 1
    assert result["rules"]["translate"]["gpu_seconds"] == 0  # template backend: no model runs
    assert result["rules"]["train_grpo"]["gpu_hours"] > 0 and result["total"]["gpu_hours"] > 0


def test_paper_plan(paper_config, throughput):
    result = cost_plan.plan(paper_config, throughput, "h100")
    cfg = paper_config
    n_mix = cfg["languages"]["K"] + 1
    assert result["rules"]["train_grpo"]["jobs"] == len(cfg["models"]) * n_mix * len(cfg["seeds"])
    assert result["rules"]["train_sft"]["jobs"] == 0
    assert result["rules"]["predict"]["jobs"] == len(study.runs(cfg))
    # translate: the languages trained on but English (copied by copy_english, a local rule); a
    # pretrained model needs no others
    assert result["rules"]["translate"]["jobs"] == len(study.translated_languages(cfg)) - 1
    assert result["job_counts"]["copy_english"] == 1
    assert len(study.translated_languages(cfg)) == cfg["languages"]["K"] + 1
    for rule in ("translate", "train_grpo", "predict"):
        assert result["rules"][rule]["gpu_hours"] > 0, rule
        assert result["rules"][rule]["tokens"] > 0, rule
    total = sum(r["gpu_hours"] for r in result["rules"].values())
    assert result["total"]["gpu_hours"] == pytest.approx(total)
    # 7B-class models at paper scale: hundreds to thousands of H100-hours, not seconds or years
    assert 50 < result["total"]["gpu_hours"] < 50_000


def test_larger_group_costs_more(paper_config, throughput):
    base = cost_plan.plan(paper_config, throughput, "h100")["rules"]["train_grpo"]["gpu_hours"]
    bigger = copy.deepcopy(paper_config)
    bigger["grpo"]["num_generations"] *= 2
    bigger["grpo"]["per_device_train_batch_size"] *= 2
    assert cost_plan.plan(bigger, throughput, "h100")["rules"]["train_grpo"]["gpu_hours"] > base * 1.5


def test_bigger_model_and_slower_gpu_cost_more(paper_config, throughput):
    h100 = cost_plan.plan(paper_config, throughput, "h100")["total"]["gpu_hours"]
    assert cost_plan.plan(paper_config, throughput, "a100")["total"]["gpu_hours"] > h100
    big = copy.deepcopy(paper_config)
    for m in big["models"].values():
        m["size_b"] *= 4
    assert cost_plan.plan(big, throughput, "h100")["total"]["gpu_hours"] > h100


def test_unknown_gpu_is_a_clear_error(paper_config, throughput, capsys):
    with pytest.raises(ValueError, match=r"unknown GPU type 'tpu9'.*h100"):
        cost_plan.plan(paper_config, throughput, "tpu9")
    rc = cli.main(["cost-plan", "--configfile", str(ROOT / "configs/parallel_paper.yaml"), "--gpu", "tpu9"])
    assert rc == 2
    assert "unknown GPU type 'tpu9'" in capsys.readouterr().err


def test_cli_table_and_json(capsys):
    cfg = str(ROOT / "configs/parallel_paper.yaml")
    assert cost_plan.main(["--configfile", cfg, "--gpu", "h100"]) == 0
    table = capsys.readouterr().out
    assert "train_grpo" in table and "predict" in table and "\ntotal" in table and "GPU-hours" in table
    assert cost_plan.main(["--configfile", cfg, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["gpu"] == "h100" and data["total"]["gpu_hours"] > 0
    assert set(data["rules"]) == {"translate", "train_grpo", "train_sft", "predict", "build_init_model"}


def test_compare_measured(tmp_path, capsys):
    (tmp_path / "train_grpo/tiny/k0").mkdir(parents=True)
    (tmp_path / "predict/tiny/init/init").mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "train_grpo/tiny/k0/s0.tsv").write_text(header + "12.5\t0:00:12\t1\t1\t1\t1\t0\t0\t0\t10\n")
    (tmp_path / "train_grpo/tiny/k0/s1.tsv").write_text(header + "7.5\t0:00:07\t1\t1\t1\t1\t0\t0\t0\t5\n")
    (tmp_path / "predict/tiny/init/init/s0.tsv").write_text(header + "3.0\t0:00:03\t1\t1\t1\t1\t0\t0\t0\t2\n")
    measured = cost_plan.compare_measured(tmp_path)
    assert measured == {"train_grpo": {"jobs": 2, "s": 20.0}, "predict": {"jobs": 1, "s": 3.0}}
    assert cost_plan.compare_measured(tmp_path / "missing") == {}
    assert cost_plan.main(["--configfile", str(ROOT / "config.yaml"), "--gpu", "cpu", "--measured", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "measured s" in out and "20.0" in out


def _misfits(result):
    return [(c["rule"], c["model"], c["what"]) for c in result["preflight"]["checks"] if not c["fits"]]


def test_preflight_paper_study_fits_an_h100(paper_config, throughput):
    result = cost_plan.plan(paper_config, throughput, "h100")
    checks = result["preflight"]["checks"]
    assert {(c["rule"], c["what"]) for c in checks} == {("predict", "vLLM"), ("translate", "vLLM"),
                                                         ("train_grpo", "training"), ("train_grpo", "colocated vLLM")}
    assert not _misfits(result)
    # the GPUs per job that the rules request are the ones planned with
    assert {r: result["rules"][r]["gpus_per_job"] for r in ("translate", "train_grpo", "predict")} == \
        {r: study.gpus(paper_config, r) for r in ("translate", "train_grpo", "predict")} == \
        {"translate": 4, "train_grpo": 8, "predict": 1}


def test_preflight_flags_configs_that_cannot_fit(paper_config, throughput, capsys):
    # Llama-3.1-8B's colocated vLLM with the model's own context: 16 GB weights + 17 GB KV cache > 0.3 x 80 GB
    cfg = copy.deepcopy(paper_config)
    cfg["grpo"]["vllm_max_model_length"] = 131072
    assert ("train_grpo", "llama31_8b_instruct", "colocated vLLM") in _misfits(cost_plan.plan(cfg, throughput, "h100"))
    cfg["grpo"]["vllm_max_model_length"] = 4096
    assert not _misfits(cost_plan.plan(cfg, throughput, "h100"))
    # a 7B model trained on one GPU: 16 bytes per parameter do not fit 80 GB
    cfg = copy.deepcopy(paper_config)
    cfg["gpus"]["train_grpo"] = 1
    assert ("train_grpo", "qwen25_7b_instruct", "training") in _misfits(cost_plan.plan(cfg, throughput, "h100"))
    # the 72B translator without tensor parallelism
    cfg = copy.deepcopy(paper_config)
    cfg["translation"]["vllm"]["tensor_parallel_size"] = 1
    cfg["gpus"]["translate"] = None
    assert ("translate", "Qwen/Qwen2.5-72B-Instruct", "vLLM") in _misfits(cost_plan.plan(cfg, throughput, "h100"))
    # prediction of Llama-3.1-8B without a context cap on a 48 GB GPU at 0.5: KV for 131072 tokens
    cfg = copy.deepcopy(paper_config)
    cfg["prediction"].update(vllm_max_model_len=None, vllm_gpu_memory_utilization=0.5)
    assert ("predict", "llama31_8b_instruct", "vLLM") in _misfits(cost_plan.plan(cfg, throughput, "l40s"))
    # vLLM in float32 (prediction.vllm_dtype) holds twice the bytes of bf16: weights and KV cache
    cfg = copy.deepcopy(paper_config)
    bf16 = {c["model"]: c for c in cost_plan.plan(cfg, throughput, "h100")["preflight"]["checks"]
            if c["rule"] == "predict"}
    cfg["prediction"]["vllm_dtype"] = "float32"
    fp32 = {c["model"]: c for c in cost_plan.plan(cfg, throughput, "h100")["preflight"]["checks"]
            if c["rule"] == "predict"}
    assert fp32 and set(fp32) == set(bf16)
    for model, check in fp32.items():
        (w32, kv32, over32), (w16, kv16, over16) = check["parts"].items(), bf16[model]["parts"].items()
        assert w32[0].startswith("weights (fp32") and w16[0].startswith("weights (bf16")
        assert (w32[1], kv32[1], over32[1]) == pytest.approx((2 * w16[1], 2 * kv16[1], over16[1]))
    # the command line says so and exits 1
    rc = cost_plan.main(["--configfile", str(ROOT / "configs/parallel_paper.yaml"), "--gpu", "l40s"])
    out = capsys.readouterr()
    assert rc == 1 and "DOES NOT FIT train_grpo" in out.out and "grpo.vllm_gpu_memory_utilization" in out.out
    assert "do not fit on l40s" in out.err
    assert cost_plan.main(["--configfile", str(ROOT / "configs/parallel_paper.yaml"), "--gpu", "h100"]) == 0


def test_preflight_reads_a_local_models_shape(tmp_path, throughput):
    (tmp_path / "config.json").write_text(json.dumps({
        "num_hidden_layers": 40, "num_attention_heads": 40, "num_key_value_heads": 8, "hidden_size": 5120,
        "max_position_embeddings": 40960}))
    arch = memory.model_architecture(str(tmp_path), 14.0, throughput)
    assert (arch["layers"], arch["kv_heads"], arch["head_dim"], arch["context"]) == (40, 8, 128, 40960)
    assert memory.kv_bytes_per_token(arch) == 2 * 40 * 8 * 128 * 2
    unknown = memory.model_architecture("org/unknown-7b", 7.0, throughput)
    assert unknown["source"].startswith("assumed")
    assert memory.preflight({}, throughput, "cpu")["checks"] == []


# ---- time limits: each job's estimated hours against the SLURM profile's runtime (issue #27) ------


def test_shipped_profile_and_paper_study_agree(capsys):
    """Every paper-scale job's estimate on an H100 fits the runtime slurm/config.yaml gives its rule;
    the table shows each GPU rule's longest job and its runtime."""
    assert cost_plan.main(["--configfile", str(ROOT / "configs/parallel_paper.yaml"),
                           "--profile", str(ROOT / "slurm")]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.split("time limits:", 1)[1].splitlines()[1:] if line.strip()}
    assert set(rows) == {"translate", "train_grpo", "predict"}
    assert all(line.rstrip().endswith("ok") for line in rows.values()), rows
    assert "on 8 GPU(s)" in rows["train_grpo"] and "runtime 24 h" in rows["predict"]


def test_job_over_its_runtime_named_with_the_line_to_edit(tmp_path, paper_config, throughput, capsys):
    """A profile giving predict 240 minutes (the value shipped before): every paper prediction
    (about 14 h on an H100) is named, with the profile line to edit and a runtime that fits."""
    text = (ROOT / "slurm/config.yaml").read_text().replace("runtime: 1440            # EDIT for your site: minutes\n"
                                                             "  translate:", "runtime: 240\n  translate:")
    assert "runtime: 240\n" in text
    (tmp_path / "config.yaml").write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t.strip() == "runtime: 240")
    rc = cost_plan.main(["--configfile", str(ROOT / "configs/parallel_paper.yaml"), "--profile", str(tmp_path)])
    out = capsys.readouterr()
    assert rc == 1
    assert f"OVER (26 job(s); edit {tmp_path / 'config.yaml'}:{line})" in out.out
    err = out.err
    assert f"{tmp_path / 'config.yaml'}:{line} (set-resources: predict: runtime)" in err
    assert "26 predict job(s)" in err and "runtime of 4 h" in err and "set runtime to at least" in err
    need = int(err.split("set runtime to at least ", 1)[1].split()[0])
    longest = cost_plan.plan(paper_config, throughput, "h100")["rules"]["predict"]["longest_job_hours"]
    assert longest * 60 < need <= longest * 60 * 1.25 + 60
    # the GRPO runs (about 1 h on 8 GPUs) fit their 24 h
    assert "train_grpo" not in err
    # --profile none: no comparison, the plan alone
    assert cost_plan.main(["--configfile", str(ROOT / "configs/parallel_paper.yaml"), "--profile", "none"]) == 0
    assert "time limits" not in capsys.readouterr().out


def test_workflow_check_uses_the_jobs_own_runtime_and_gpu(paper_config):
    """What the workflow checks before submitting (parallel_scaling.plan.submission): the runtime and
    gpu_model each job really got, whatever set them; an unknown GPU model is estimated as an H100."""
    from parallel_scaling.plan import submission

    wc = {"model": "qwen25_7b_instruct", "paradigm": "init", "mixture": "init", "seed": "0"}
    ok = [("predict", wc, {"runtime": 1440, "slurm_partition": "gpu"})]
    assert submission.submission_errors(paper_config, ok, ROOT / "slurm", None) == []
    short = [("predict", wc, {"runtime": 240})]
    (err,) = submission.submission_errors(paper_config, short, ROOT / "slurm", None)
    assert "predict qwen25_7b_instruct/init/init/s0 is estimated at" in err and "(h100;" in err
    assert "from the command line or another profile" in err  # 240 is not the profile's value
    # slower GPUs: the A100 estimate (about 28 h) exceeds 24 h
    slow = [("predict", wc, {"runtime": 1440, "gpu_model": "a100"})]
    (err,) = submission.submission_errors(paper_config, slow, ROOT / "slurm", None)
    assert "(a100;" in err and f"{ROOT / 'slurm' / 'config.yaml'}:" in err
    # rules without an estimate (local, CPU) are not checked
    assert submission.submission_errors(paper_config, [("score", wc, {"runtime": 1})], None, None) == []


def test_cost_plan_work_grows_linearly_with_the_study(paper_config, throughput, monkeypatch):
    """The study's runs are listed a fixed number of times whatever its size (the memory pre-flight
    listed them once per run: 4 s of CPU at 2,400 runs, quadratic), and every run is planned."""
    calls = []
    real = study.runs
    monkeypatch.setattr(study, "runs", lambda config: calls.append(1) or real(config))
    counts = []
    for seeds in (2, 40):
        cfg = copy.deepcopy(paper_config)
        cfg["seeds"] = list(range(seeds))
        calls.clear()
        result = cost_plan.plan(cfg, throughput, "h100")
        counts.append(len(calls))
        assert len(result["rules"]["predict"]["job_hours"]) == len(real(cfg))
    assert counts[0] == counts[1] <= 8, counts
