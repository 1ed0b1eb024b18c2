"""Rebuilds tell the truth: after a change, exactly the stale outputs are recomputed, and what is
recomputed really comes from the new inputs (weights and predictions are compared, not only the
list of scheduled jobs). One small study is run once; the scenarios then change it one after the
other, each checked against the state the previous one left."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import copy_workflow, offline_env, planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

LANGS = ["en", "de", "fr", "zh", "sw"]
CONFIG = {
    "study": "rebuild",
    "seeds": [0],
    "paradigms": ["grpo"],
    "languages": {"parallel_order": ["de", "fr"], "K": 2, "evaluate": LANGS},
    "source": {"kind": "synthetic", "synthetic": {"n_train": 48, "n_test": 4, "seed": 0}},
    "translation": {"backend": "template"},
    "mixtures": {"budget": "additive", "items": 6, "seed": 0},
    "models": {"tiny": {"source": "tiny", "prompt_set": "plain", "build": {
        "seed": 0, "vocab_size": 300, "warmup_items": 48,
        "arch": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1,
                 "intermediate_size": 64, "max_position": 96},
        "pretrain": {"max_steps": 20, "per_device_train_batch_size": 16, "save_steps": 100, "logging_steps": 5},
        "warmup": {"max_steps": 30, "learning_rate": 0.003, "per_device_train_batch_size": 16, "save_steps": 100,
                   "logging_steps": 5}}}},
    # the format reward varies between completions of this barely trained model, so every GRPO
    # step has a gradient and the weights really depend on the mixture and settings
    "grpo": {"num_generations": 4, "per_device_train_batch_size": 8, "max_completion_length": 8,
             "learning_rate": 0.001, "temperature": 1.0, "save_steps": 100, "logging_steps": 1,
             "reward_weights": {"correctness": 1.0, "format": 1.0, "language": 0.0}},
    "benchmarks": {"synth": {"kind": "synthetic"},
                   "local": {"kind": "file", "path": "bench/{lang}.jsonl", "id_field": "id",
                             "question_field": "question", "answer_field": "answer"}},
    "prediction": {"max_new_tokens": 8},
    "analysis": {"n_boot": 10, "law": False},  # K = 2: too few points for a law
}
R = "results/rebuild"
TRAINED = [f"tiny/grpo/k{k}/s0" for k in range(3)]
RUNS = ["tiny/init/init/s0", *TRAINED]


def write_bench(wd: Path, lang: str, offset: int = 0) -> None:
    rows = [{"id": f"b{i}", "question": f"{i + offset} + {i} = ? ({lang})", "answer": 2 * i + offset}
            for i in range(3)]
    path = wd / "bench" / f"{lang}.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Study:
    def __init__(self, wd: Path) -> None:
        self.wd = wd
        self.config = copy.deepcopy(CONFIG)

    def write(self) -> None:
        write_config(self.wd / "study.yaml", self.config)

    def run(self) -> None:
        self.write()
        snakemake(self.wd, "--configfile", "study.yaml", timeout=1200)

    def dry(self) -> dict[str, int]:
        self.write()
        return planned_jobs(snakemake(self.wd, "-n", "--configfile", "study.yaml"))

    def weights(self) -> dict[str, str]:
        out = {"init": sha(self.wd / R / "models/tiny/init/model.safetensors")}
        for run in TRAINED:
            out[run] = sha(self.wd / R / "checkpoints" / run / "model.safetensors")
        return out

    def predictions(self, run: str, bench: str = "synth", lang: str = "en") -> list[dict]:
        path = self.wd / R / "predictions" / run / bench / f"{lang}.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines()]

    def prediction_hashes(self) -> dict[str, str]:
        return {str(p.relative_to(self.wd / R / "predictions")): sha(p)
                for p in sorted((self.wd / R / "predictions").rglob("*.jsonl"))}

    def record(self, rule: str, name: str) -> dict:
        return json.loads((self.wd / "logs/rebuild" / rule / f"{name}.prov.json").read_text())

    def log(self, rule: str, name: str) -> str:
        return (self.wd / "logs/rebuild" / rule / f"{name}.log").read_text()


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    wd = copy_workflow(tmp_path_factory.mktemp("rebuild"))
    for lang in LANGS:
        write_bench(wd, lang)
    s = Study(wd)
    s.run()
    return s


# ---------------------------------------------------------------------------------------------
# which rules each package module and resource entry reaches (dry runs on the finished study)


def rule_graph(wd: Path) -> dict[str, set[str]]:
    """rule -> rules that consume its outputs, from `snakemake --rulegraph`."""
    dot = snakemake(wd, "--rulegraph", "--configfile", "study.yaml").stdout
    names = dict(re.findall(r'^\s*(\d+)\[label = "([a-z_]+)"', dot, re.M))
    edges: dict[str, set[str]] = {n: set() for n in names.values()}
    for a, b in re.findall(r"^\s*(\d+) -> (\d+)", dot, re.M):
        edges[names[a]].add(names[b])
    return edges


def downstream(rules: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen, todo = set(rules), list(rules)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def job_records(wd: Path) -> list[tuple[str, dict]]:
    """(rule, provenance record) of every job of the finished study."""
    logs = wd / "logs/rebuild"
    return [(p.relative_to(logs).parts[0].removesuffix(".prov.json"), json.loads(p.read_text()))
            for p in sorted(logs.rglob("*.prov.json"))]


def plans(study: Study, edits: list[dict | None]) -> list[dict[str, int]]:
    """The dry run of the study after each edit (tests/dry_runs.py: one process for all)."""
    study.write()
    edits_file = study.wd / "edits.json"
    edits_file.write_text(json.dumps(edits))
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("dry_runs.py")), str(study.wd),
                           "study.yaml", str(edits_file)], capture_output=True, text=True, timeout=900,
                          env=offline_env())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_module_and_resource_entry_reruns_exactly_its_users(study):
    from parallel_scaling.jobs.codedeps import command_modules, package_modules

    wd = study.wd
    edges = rule_graph(wd)
    records = job_records(wd)
    command_of = {rule: rec["command"] for rule, rec in records}
    # the derived module lists cover every module a job really loaded (the runtime oracle)
    for rule, rec in records:
        loaded = set(rec["code"]["modules"])
        assert loaded <= set(command_modules(rec["command"])), (rule, loaded - set(command_modules(rec["command"])))

    pkg = wd / "workflow/parallel_scaling"
    edits: list[dict | None] = [None]
    expected: list[set[str]] = [set()]
    labels = ["unchanged"]
    for module, path in package_modules(pkg).items():
        users = {rule for rule, cmd in command_of.items() if module in command_modules(cmd, pkg)}
        edits.append({"path": str(path), "text": path.read_text() + "\n# an edit\n"})
        expected.append(downstream(users, edges) if users else set())
        labels.append(module)

    # resource files: an entry's users are the jobs that opened its file and name the entry;
    # each used entry is edited alone, the unused entries of a file all at once
    for path in sorted((wd / "workflow/resources").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        unused = copy.deepcopy(data)
        for entry in data:
            users = {rule for rule, rec in records
                     if path.name in rec["code"]["resources"] and entry in json.dumps(rec["argv"])}
            if not users:
                _edit_first_string(unused[entry])
                continue
            edited = copy.deepcopy(data)
            assert _edit_first_string(edited[entry])
            edits.append({"path": str(path), "text": yaml.safe_dump(edited, allow_unicode=True)})
            expected.append(downstream(users, edges))
            labels.append(f"{path.name}:{entry}")
        edits.append({"path": str(path), "text": yaml.safe_dump(unused, allow_unicode=True)})
        expected.append(set())
        labels.append(f"{path.name}: unused entries")
    for path in sorted(p for p in (wd / "workflow/resources").rglob("*") if p.is_file() and p.suffix != ".yaml"):
        users = {rule for rule, rec in records if path.name in rec["code"]["resources"]}
        edits.append({"path": str(path), "text": path.read_text() + "\n"})
        expected.append(downstream(users, edges) if users else set())
        labels.append(path.name)
    assert any(label.startswith("prompts.yaml:plain") for label in labels)

    for label, want, got in zip(labels, expected, plans(study, edits)):
        assert set(got) == want, (label, sorted(got), sorted(want))


def _edit_first_string(node) -> bool:
    """Change the first string leaf of a YAML entry (in place)."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, str):
            node[key] = value + " (edited)"
            return True
        if _edit_first_string(value):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# real reruns


def test_prompt_template_edit_rebuilds_from_the_new_text(study):
    before_w, before_p = study.weights(), study.prediction_hashes()
    prompts = study.wd / "workflow/resources/prompts.yaml"
    data = yaml.safe_load(prompts.read_text())
    data["plain"]["user"]["default"] = "Q: {question}\n"
    prompts.write_text(yaml.safe_dump(data, allow_unicode=True))
    jobs = study.dry()
    assert jobs["build_init_model"] == 1 and jobs["train_grpo"] == 3 and jobs["predict"] == 4
    study.run()
    after_w = study.weights()
    assert all(after_w[k] != before_w[k] for k in before_w)
    for run in TRAINED:
        assert "resuming" not in study.log("train_grpo", run.replace("tiny/grpo/", "tiny/"))
    assert all(r["prompt"].startswith("Q: ") for r in study.predictions("tiny/grpo/k1/s0"))
    assert study.prediction_hashes() != before_p


def test_initial_model_rebuilt_retrains_from_it(study):
    before = study.weights()
    study.config["models"]["tiny"]["build"]["warmup"]["max_steps"] = 31
    jobs = study.dry()
    assert jobs["build_init_model"] == 1 and jobs["train_grpo"] == 3
    assert {"mixture", "translate", "source"}.isdisjoint(jobs)
    study.run()
    after = study.weights()
    assert all(after[k] != before[k] for k in before), "every checkpoint must be retrained"
    from parallel_scaling.jobs.integrity import digest

    init = digest(study.wd / R / "models/tiny/init")
    for run in TRAINED:
        name = run.replace("tiny/grpo/", "tiny/")
        settings = json.loads((study.wd / R / "checkpoints" / run / "training_settings.json").read_text())
        assert settings["identity"]["initial_model"] == init
        assert settings["resumed_from"] is None
        inputs = {Path(e["path"]).name: e["sha256"] for e in study.record("train_grpo", name)["inputs"]}
        assert inputs["model.safetensors"] == after["init"]
    assert not any((study.wd / "work/rebuild").rglob("checkpoint-*")), "a finished run leaves nothing to resume"


def test_mixture_change_retrains_only_what_reads_it(study):
    before_w, before_p = study.weights(), study.prediction_hashes()
    study.config["mixtures"]["items"] = 7
    jobs = study.dry()
    assert jobs == {"mixture": 3, "train_grpo": 3, "predict": 3, "score": 3, "analyze": 1, "plot_training": 1,
                    "all": 1}
    study.run()
    after_w, after_p = study.weights(), study.prediction_hashes()
    assert after_w["init"] == before_w["init"]
    assert all(after_w[r] != before_w[r] for r in TRAINED)
    init_files = {k: v for k, v in before_p.items() if k.startswith("tiny/init/")}
    assert all(after_p[k] == v for k, v in init_files.items())


def test_one_grpo_setting_retrains_grpo_only(study):
    before = study.weights()
    mixtures = sha(study.wd / R / "data/mixtures/k1.jsonl")
    study.config["grpo"]["learning_rate"] = 0.002
    jobs = study.dry()
    assert jobs == {"train_grpo": 3, "predict": 3, "score": 3, "analyze": 1, "plot_training": 1, "all": 1}
    study.run()
    after = study.weights()
    assert all(after[r] != before[r] for r in TRAINED) and after["init"] == before["init"]
    assert sha(study.wd / R / "data/mixtures/k1.jsonl") == mixtures


def test_scoring_code_edit_rescores_without_generating(study):
    before = study.prediction_hashes()
    scored = sha(study.wd / R / "scored/tiny/init/init/s0/scored.jsonl")
    scoring = study.wd / "workflow/parallel_scaling/evaluate/score.py"
    original = scoring.read_text()
    assert "scored.append({**row, **result})" in original
    scoring.write_text(original.replace("scored.append({**row, **result})",
                                        'scored.append({**row, **result, "scorer": "edited"})'))
    try:
        assert study.dry() == {"score": 4, "analyze": 1, "all": 1}
        study.run()
        assert study.prediction_hashes() == before
        path = study.wd / R / "scored/tiny/init/init/s0/scored.jsonl"
        assert sha(path) != scored
        assert all(json.loads(line)["scorer"] == "edited" for line in path.read_text().splitlines())
    finally:
        scoring.write_text(original)
    assert study.dry() == {"score": 4, "analyze": 1, "all": 1}
    study.run()


def test_replaced_benchmark_file_is_read_again(study):
    before = study.prediction_hashes()
    write_bench(study.wd, "zh", offset=50)
    jobs = study.dry()
    assert jobs == {"benchmark": 1, "benchmark_manifest": 1, "predict": 4, "score": 4, "analyze": 1, "all": 1}
    study.run()
    after = study.prediction_hashes()
    for run in RUNS:
        questions = [r["question"] for r in study.predictions(run, "local", "zh")]
        assert questions[0].startswith("50 + 0")
        assert after[f"{run}/local/zh.jsonl"] != before[f"{run}/local/zh.jsonl"]
        assert after[f"{run}/synth/en.jsonl"] == before[f"{run}/synth/en.jsonl"]


def test_damaged_or_missing_checkpoint_is_rebuilt(study):
    from parallel_scaling.jobs.integrity import verify

    ckpt = study.wd / R / "checkpoints/tiny/grpo/k1/s0"
    weights = ckpt / "model.safetensors"
    good = sha(weights)
    data = bytearray(weights.read_bytes())
    data[-8:] = b"\0" * 8  # same size, other bytes
    weights.write_bytes(bytes(data))
    jobs = study.dry()
    assert jobs.get("train_grpo") == 1 and jobs.get("predict") == 1
    study.run()
    assert verify(ckpt) == []
    assert sha(weights) == good, "the same inputs give the same weights again"
    assert study.dry() == {}

    weights.unlink()
    assert study.dry().get("train_grpo") == 1
    shutil.rmtree(ckpt)
    assert study.dry().get("train_grpo") == 1
    study.run()
    assert sha(weights) == good and study.dry() == {}


def test_two_studies_in_one_checkout_live_apart(study):
    other = copy.deepcopy(study.config)
    other["study"] = "other"
    write_config(study.wd / "other.yaml", other)
    jobs = planned_jobs(snakemake(study.wd, "-n", "--configfile", "other.yaml"))
    assert jobs["source"] == 2 and jobs["train_grpo"] == 3  # a study of its own, from scratch
    source = study.wd / R / "data/source/train.jsonl"
    stamp = source.stat().st_mtime_ns
    snakemake(study.wd, "results/other/data/source/train.jsonl", "--configfile", "other.yaml")
    assert (study.wd / "results/other/data/source/train.jsonl").read_text() == source.read_text()
    assert source.stat().st_mtime_ns == stamp
    assert study.dry() == {}


def test_checkpoints_record_the_content_they_were_trained_from(study):
    """The provenance chain: each checkpoint names its initial model and data by content."""
    from parallel_scaling.jobs.integrity import digest

    init = digest(study.wd / R / "models/tiny/init")
    for run in TRAINED:
        settings = json.loads((study.wd / R / "checkpoints" / run / "training_settings.json").read_text())
        assert settings["identity"]["initial_model"] == init
        data = settings["identity"]["data"]
        (path, recorded), = data.items()
        assert recorded == sha(study.wd / path)


def test_pinned_code_change_retrains_nothing_and_is_recorded(study):
    """A `git pull` that edits a training module would retrain every GRPO run; `pin-code`, after
    the user judged the change harmless, keeps them (and their resume keys), records who, when,
    why and which modules changed, and covers exactly that code: a further edit reruns again."""
    grpo = study.wd / "workflow/parallel_scaling/train/grpo.py"
    original = grpo.read_text()
    pins = study.wd / "code-pins.json"
    env = dict(offline_env(), PYTHONPATH=str(study.wd / "workflow"))

    def pin(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "parallel_scaling", "pin-code", "train-grpo", "--configfile",
                               "study.yaml", "--reason", "a comment only", *extra], cwd=study.wd, env=env,
                              capture_output=True, text=True, timeout=300)

    try:
        grpo.write_text(original + "\n# a comment pulled mid-campaign\n")
        assert study.dry().get("train_grpo") == 3
        shown = pin("--dry-run")
        assert shown.returncode == 0, shown.stderr
        assert "modules changed since: train.grpo" in shown.stdout and not pins.exists()
        done = pin()
        assert done.returncode == 0, done.stderr
        assert study.dry() == {}  # nothing to rerun
        (record,) = json.loads(pins.read_text())["pins"]
        assert record["command"] == "train-grpo" and record["modules_changed"] == ["train.grpo"]
        assert record["jobs_kept"] == 3 and record["reason"] == "a comment only" and record["by"]
        assert record["pinned"] == study.record("train_grpo", "tiny/k0/s0")["code"]["code_hash"]
        assert pin().stdout.startswith("pin-code: train-grpo is already pinned")
        # the pin holds for that code only
        grpo.write_text(original + "\n# a second edit, not looked at\n")
        assert study.dry().get("train_grpo") == 3
    finally:
        grpo.write_text(original)
        pins.unlink(missing_ok=True)
    assert study.dry() == {}
