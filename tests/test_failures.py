"""The end-of-run list of failed jobs (issue #27, point 5): each failed job with its log and the
log's last lines, printed at the end of the run and kept in logs/<study>/failed.txt."""

from __future__ import annotations

import copy
import json

from helpers import REPO, copy_workflow, load_yaml, snakemake, write_config
from parallel_scaling.jobs import failures


def test_report_names_each_job_its_log_and_why(tmp_path):
    log = tmp_path / "predict.log"
    log.write_text("loading\n\nTraceback ...\nValueError: row 7 has no answer\n")
    report = failures.report([failures.FailedJob("predict", {"model": "q", "seed": "0"},
                                                 (str(log), str(tmp_path / "x.prov.json"))),
                              failures.FailedJob("translate", {"lang": "de"}, (str(tmp_path / "none.log"),))],
                             slurm_logdir="logs/slurm")
    lines = report.splitlines()
    assert lines[0] == "2 job(s) failed in this run (after their retries):"
    assert lines[1] == f"  predict (model=q, seed=0): log {log}"
    assert lines[2:5] == ["      | loading", "      | Traceback ...", "      | ValueError: row 7 has no answer"]
    assert "translate (lang=de)" in report and "(its log is empty or missing)" in report
    assert "logs/slurm/" in report and "run the same command again" in report
    assert failures.report([]) == ""


def test_a_run_lists_its_failed_job_at_the_end_and_keeps_the_list(tmp_path):
    """Two benchmark jobs of a study, one reading a malformed file: with keep-going (the SLURM
    profile's setting) the other finishes, and the run ends with the failed job, its log and the
    error, also written to logs/<study>/failed.txt."""
    config = copy.deepcopy(load_yaml(REPO / "tests/configs/smoke.yaml"))
    config["benchmarks"] = {"mine": {"kind": "file", "path": "data/{lang}.jsonl", "question_field": "question",
                                     "answer_field": "answer", "answer_type": "number", "languages": ["en", "de"]}}
    wd = copy_workflow(tmp_path / "wf")
    (wd / "data").mkdir()
    (wd / "data/en.jsonl").write_text(json.dumps({"id": "1", "question": "1 + 1?", "answer": "2"}) + "\n")
    (wd / "data/de.jsonl").write_text(json.dumps({"id": "1", "question": "1 + 1?"}) + "\n")  # no answer
    write_config(wd / "f.yaml", config)
    proc = snakemake(wd, "results/smoke/benchmarks/mine/en.jsonl", "results/smoke/benchmarks/mine/de.jsonl",
                     "--keep-going", "--configfile", "f.yaml", check=False)
    assert proc.returncode != 0
    assert (wd / "results/smoke/benchmarks/mine/en.jsonl").is_file()  # the independent job finished
    kept = (wd / "logs/smoke/failed.txt").read_text()
    assert kept.startswith("1 job(s) failed in this run")
    assert "  benchmark (benchmark=mine, lang=de): log logs/smoke/benchmark/mine/de.log" in kept
    assert "answer" in kept.split("log logs/smoke/benchmark/mine/de.log", 1)[1]  # the error itself
    assert kept.strip() in proc.stderr and "(kept in logs/smoke/failed.txt)" in proc.stderr
