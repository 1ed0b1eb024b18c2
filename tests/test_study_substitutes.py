"""Every shipped study runs end to end, on CPU, through real Snakemake: its DAG shape kept, its
models, data and sizes swapped for tiny local ones (tests/study_substitutes.py), then its archive
passes the reviewer's check. A study that cannot finish (no law points, no training curves to
plot, a trainer option that fails) is caught here, before anyone launches it on a cluster."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from helpers import assert_archive_job_checked, copy_workflow, planned_jobs, snakemake, write_config
from study_substitutes import SHIPPED, build_tiny_hf_model, load_shipped, substitute
from test_study_configs import expected_jobs

pytestmark = pytest.mark.slow

#: every shipped study: config.yaml and configs/*.yaml; under pytest-xdist each study is a work unit
#: of its own (its module-scoped run is shared by its tests only), so two workers run two studies
#: controls: a shipped study that is another shipped study with only its training budget changed (the
#: fixed-step control of the parallel study): the same DAG, rules and roles, so the study it controls
#: runs end to end for both (a substitute caps the steps anyway); checked by
#: test_a_control_is_its_study_with_another_training_budget, planned and priced in test_study_configs
CONTROLS = {"parallel_paper_fixed_steps": "parallel_paper"}
#: the budget keys a control may change
BUDGET_KEYS = {"num_train_epochs", "max_steps"}
STUDIES = [pytest.param(name, id=name, marks=pytest.mark.xdist_group(f"study-{name}"))
           for name in SHIPPED if name not in CONTROLS]


@pytest.fixture(scope="session")
def tiny_hf_model(tmp_path_factory):
    return build_tiny_hf_model(tmp_path_factory.mktemp("tiny-hf-model") / "model")




@pytest.fixture(scope="module", params=STUDIES)
def finished(request, tmp_path_factory, tiny_hf_model):
    """The substitute of one shipped study, run to its final targets (and its archive)."""
    name = request.param
    wd = copy_workflow(tmp_path_factory.mktemp(f"study-{name}"))
    config = substitute(load_shipped(name), wd / "data", tiny_hf_model)
    write_config(wd / "study.yaml", config)
    # to its archive (`snakemake archive`, whose job checks what it wrote with roc-validator and fails
    # on a problem), checked again below as a reviewer would from the tarball alone; an archive
    # costs 20-40 s on 2 cores (report, DAG summary, crate, validator)
    proc = snakemake(wd, "archive", "--configfile", "study.yaml", timeout=1500)
    plan = planned_jobs(proc)  # the run's own job table, as a dry run prints it
    return name, wd, config, plan


def test_the_substitute_runs_every_rule_of_the_study(finished):
    name, _, _, plan = finished
    shipped = {rule for rule, n in expected_jobs(load_shipped(name)).items() if n} - {"all"}
    ran = set(plan) - {"all", "archive"}  # the target rules: `all`, or `archive` (which asks for the same)
    assert ran == shipped, f"{name}: the substitute ran {sorted(ran)}, the study plans {sorted(shipped)}"


def test_the_study_reaches_its_final_targets(finished):
    name, wd, config, _ = finished
    results = wd / "results" / config["study"]
    acc = pd.read_csv(results / "tables/accuracy.csv")
    assert set(acc["lang"]) == set(config["languages"]["evaluate"])
    paradigms = {"init"} | ({"public"} if any(m.get("trained") for m in config["models"].values()) else set())
    trains = any(m.get("train", True) for m in config["models"].values())
    if trains:
        paradigms |= set(config["paradigms"])
    assert set(acc["paradigm"]) == paradigms
    benchmarks = set(config["benchmarks"])
    assert set(acc["benchmark"]) == benchmarks
    law = (results / "tables/law.md").read_text()
    if config["analysis"].get("law", True):
        fit = json.loads((results / "law/fit.json").read_text())
        assert len(fit["series"]) == len(config["paradigms"]) * len(benchmarks) * sum(
            m.get("train", True) for m in config["models"].values())
        assert all(len([p for p in s["points"] if p["k"] >= 1]) >= 3 for s in fit["series"])
    else:
        assert "No law was fitted" in law
    assert (results / "plots/scaling.png").stat().st_size > 1000
    assert (results / "plots/training.png").exists() == trains
    assert (results / "tables/qc.csv").exists()


def test_the_archive_passes_the_reviewers_check(finished):
    """The archive job's own check is the reviewer's (`verify-archive`: roc-validator on the
    inherited profiles, sha256 of every file, the provenance chain, run on the tarball it wrote): it
    passed with every profile checked and no RECOMMENDED issue the README does not explain. Files and
    chain are checked again here from the tarball alone; the validator is not run a second time on
    the same bytes (test_archive.py runs it from the tests, each profile alone)."""
    name, wd, config, _ = finished
    result = assert_archive_job_checked(wd, config["study"], wd / "archive" / f"{config['study']}.tar.gz")
    assert result.records > 10, name


def test_every_shipped_study_has_a_substitute():
    """config.yaml and every configs/*.yaml (a new one is picked up: SHIPPED globs the folder)."""
    from helpers import REPO

    shipped = {"config.yaml", *(f"configs/{p.name}" for p in (REPO / "configs").glob("*.yaml"))}
    assert set(SHIPPED.values()) == shipped


@pytest.mark.parametrize("control,study", sorted(CONTROLS.items()))
def test_a_control_is_its_study_with_another_training_budget(control, study, tmp_path):
    """A control differs from the study it controls in its name and its GRPO/SFT step budget only, so
    it plans the same jobs; the study's end-to-end run above stands for both."""
    ours, theirs = load_shipped(control), load_shipped(study)
    assert ours.pop("study") != theirs.pop("study")
    for section in ("grpo", "sft"):
        a, b = ours.get(section) or {}, theirs.get(section) or {}
        assert {k for k in set(a) | set(b) if a.get(k) != b.get(k)} <= BUDGET_KEYS, section
        for key in BUDGET_KEYS:
            a.pop(key, None)
            b.pop(key, None)
    assert ours == theirs
    assert expected_jobs(load_shipped(control)) == expected_jobs(load_shipped(study))

