"""Derived code dependencies of a command, and the manifests of output directories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from parallel_scaling.jobs import codedeps, integrity
from parallel_scaling.dataio.paths import PACKAGE_DIR as PKG


def copy_package(tmp_path: Path) -> Path:
    dest = tmp_path / "parallel_scaling"
    shutil.copytree(PKG, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_imports_inside_functions_and_relative_imports_count():
    # grpo reaches the rewards (and through them the answers) only through a function-level import
    assert "scoring.answers" in codedeps.direct_imports("evaluate.score")
    assert "train.rewards" in codedeps.command_modules("train-grpo")
    assert "scoring.answers" in codedeps.command_modules("train-grpo")  # rewards -> answers
    assert "scoring.language" in codedeps.command_modules("score")
    assert {"cli", "jobs", "jobs.provenance"} <= set(codedeps.command_modules("source"))
    assert "train.grpo" not in codedeps.command_modules("score")


def test_relative_and_package_imports_resolve(tmp_path):
    pkg = copy_package(tmp_path)
    (pkg / "train" / "extra.py").write_text("from ..dataio import jsonl\nfrom . import rewards\n")
    codedeps.package_modules.cache_clear()
    assert codedeps.direct_imports("train.extra", pkg) == {"dataio", "dataio.jsonl", "train", "train.rewards"}


def test_code_hash_changes_with_exactly_the_modules_a_command_runs(tmp_path):
    pkg = copy_package(tmp_path)
    before = {cmd: codedeps.code_hash(cmd, pkg) for cmd in ("score", "train-grpo", "source", "mixture")}
    answers = pkg / "scoring" / "answers.py"
    answers.write_text(answers.read_text() + "\n# edited\n")
    after = {cmd: codedeps.code_hash(cmd, pkg) for cmd in before}
    assert after["score"] != before["score"] and after["train-grpo"] != before["train-grpo"]
    assert after["source"] == before["source"] and after["mixture"] == before["mixture"]


def test_a_new_file_time_alone_changes_no_hash(tmp_path):
    pkg = copy_package(tmp_path)
    before = codedeps.code_hash("predict", pkg)
    for path in pkg.rglob("*.py"):
        os.utime(path, (1, 1))
    assert codedeps.code_hash("predict", pkg) == before


def test_unknown_command_is_named():
    import pytest

    with pytest.raises(ValueError, match="unknown command 'nope'"):
        codedeps.command_modules("nope")


def make_dir(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "model.safetensors").write_bytes(b"\1" * 64)
    (root / "sub" / "config.json").write_text("{}")
    return root


def test_state_is_stable_while_intact_and_new_when_damaged(tmp_path):
    d = make_dir(tmp_path / "ckpt")
    token, problems = integrity.state(d)  # a directory without a manifest is not trusted
    assert token.startswith("rebuild-") and "manifest.json: missing" in problems[0]
    d.rename(tmp_path / "x")
    assert integrity.state(d) == (integrity.NEW, [])  # nothing at all: never built
    (tmp_path / "x").rename(d)
    integrity.write_manifest(d, "tok-1")
    assert integrity.state(d) == ("tok-1", [])
    assert integrity.check(d) == [] and integrity.verify(d) == []

    weights = d / "model.safetensors"
    weights.write_bytes(b"\2" * 64)  # same size, other bytes, new mtime
    token, problems = integrity.state(d)
    assert token.startswith("rebuild-") and "content differs" in problems[0]
    integrity.write_manifest(d, token)  # what the rerun job does with the token it was given
    assert integrity.state(d) == (token, [])

    weights.unlink()
    assert integrity.state(d)[1] == [f"{weights}: missing"]
    shutil.rmtree(d)
    other, problems = integrity.state(d)
    assert problems == [f"{d}: missing"] and other not in (token, integrity.NEW)


def test_copy_without_times_is_hashed_not_rebuilt(tmp_path):
    d = make_dir(tmp_path / "ckpt")
    integrity.write_manifest(d, "t")
    os.utime(d / "model.safetensors", (5, 5))
    assert integrity.check(d) == []


def test_digest_is_by_content_not_path(tmp_path):
    a = make_dir(tmp_path / "a")
    b = make_dir(tmp_path / "b")
    integrity.write_manifest(a)
    assert integrity.digest(a) == integrity.digest(b)
    (b / "model.safetensors").write_bytes(b"\3" * 64)
    assert integrity.digest(a) != integrity.digest(b)
    assert integrity.digest("org/model").startswith("hub:org/model@")


def test_fingerprint_follows_replaced_files(tmp_path):
    d = make_dir(tmp_path / "m")
    before = integrity.fingerprint(d)
    (d / "model.safetensors").write_bytes(b"\1" * 65)
    assert integrity.fingerprint(d) != before
    assert integrity.fingerprint("org/model") == "name:org/model"


def test_fingerprint_of_a_small_model_ignores_file_times(tmp_path, monkeypatch):
    """A checkout or copy of the shipped tiny model gives its files new times, not new bytes: nothing
    reruns. A large model is fingerprinted by times (no hashing of gigabytes while planning)."""
    d = make_dir(tmp_path / "m")
    before = integrity.fingerprint(d)
    os.utime(d / "model.safetensors", (1, 1))
    assert integrity.fingerprint(d) == before and before.startswith("sha:")
    (d / "model.safetensors").write_bytes(b"\2" * 64)  # same size, other bytes
    assert integrity.fingerprint(d) != before
    monkeypatch.setattr(integrity, "CONTENT_FINGERPRINT_MAX_BYTES", 10)
    large = integrity.fingerprint(d)
    os.utime(d / "model.safetensors", (2, 2))
    assert large.startswith("stat:") and integrity.fingerprint(d) != large


def test_a_pin_stands_for_exactly_the_pinned_code_and_is_recorded(tmp_path, monkeypatch):
    """code-pins.json (pin-code) maps this code's hash to the older one for one command: the
    workflow, the resume key and the provenance record use the older hash, the record says so."""
    from parallel_scaling.jobs import codepins
    from parallel_scaling.jobs.codedeps import actual_code_hash, code_hash
    from parallel_scaling.jobs.provenance import code_record
    from parallel_scaling.train.shared import run_identity

    monkeypatch.chdir(tmp_path)
    actual = actual_code_hash("train-grpo")
    assert code_hash("train-grpo") == actual  # no pins file
    codepins.add({"command": "train-grpo", "pinned": "0ld0ld0ld0ld0ld0", "actual": actual, "reason": "why"})
    codepins.add({"command": "train-grpo", "pinned": "other", "actual": "not-this-code"})
    assert code_hash("train-grpo") == "0ld0ld0ld0ld0ld0"
    assert code_hash("score") == actual_code_hash("score")  # other commands untouched
    assert run_identity("train-grpo", None, [], {}, "plain", 0)["code"] == "0ld0ld0ld0ld0ld0"
    record = code_record("train-grpo")
    assert record["code_hash"] == "0ld0ld0ld0ld0ld0" and record["code_hash_actual"] == actual
    assert record["code_pin"]["reason"] == "why"
    (tmp_path / "code-pins.json").write_text("{broken")
    with pytest.raises(ValueError, match="code-pins.json: not valid JSON"):
        code_hash("train-grpo")
