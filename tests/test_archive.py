"""The ``archive`` command on a small fake run: real files, real provenance records, real crate."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from rocrate.rocrate import ROCrate

from parallel_scaling import archive
from parallel_scaling.archive import PROFILES, build_archive, is_secret_name, verify_archive
from parallel_scaling.provenance import run_with_provenance

HF_SECRET = "hf_" + "ZyXwVuTsRqPoNmLkJiHgFeDcBa98765432"


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _job_generate(argv: list[str]) -> int:
    """Reads a prompt file, writes generations and a checkpoint into --outdir."""
    prompts, outdir = Path(argv[argv.index("--prompts") + 1]), Path(argv[argv.index("--outdir") + 1])
    lines = prompts.read_text().splitlines()
    _write(outdir / "generations.jsonl", "".join(json.dumps({"p": p, "a": p[::-1]}) + "\n" for p in lines))
    _write(outdir / "ckpt" / "model.safetensors", b"\x00weights" * 64)
    _write(outdir / "ckpt" / "optimizer.pt", b"\x01optim" * 64)
    _write(outdir / "ckpt" / "tokenizer.json", '{"vocab": {}}')
    return 0


def _job_score(argv: list[str]) -> int:
    """Reads the generations, writes metrics to --out."""
    gens, out = Path(argv[argv.index("--generations") + 1]), Path(argv[argv.index("--out") + 1])
    n = len(gens.read_text().splitlines())
    _write(out, json.dumps({"n": n, "accuracy": 0.5}))
    return 0


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A finished run in a Snakemake working directory, produced through run_with_provenance."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HF_TOKEN", HF_SECRET)
    _write(work / "workflow" / "Snakefile", 'configfile: "config/config.yaml"\ninclude: "rules/gen.smk"\n')
    _write(work / "workflow" / "rules" / "gen.smk", "rule generate:\n    shell: 'true'\n")
    _write(work / "config" / "config.yaml", "models: [tiny]\nseeds: [1, 2]\n")
    _write(work / "resources" / "prompts.txt", "one\ntwo\nthree\n")
    gen_argv = ["--prompts", "resources/prompts.txt", "--seed", "1", "--hf-token", HF_SECRET,
                "--outdir", "results/gen/tiny"]
    run_with_provenance(Path("logs/generate/tiny.prov.json"), "generate", gen_argv,
                        lambda: _job_generate(gen_argv))
    score_argv = ["--generations", "results/gen/tiny/generations.jsonl", "--out", "results/metrics/tiny.json"]
    run_with_provenance(Path("logs/score/tiny.prov.json"), "score", score_argv, lambda: _job_score(score_argv))
    _write(work / "logs" / "generate" / "tiny.log", "generating 3 prompts\n")
    _write(work / "report.zip", b"PK\x05\x06" + b"\x00" * 18)
    # things that must never be archived
    _write(work / "results" / ".env", f"HF_TOKEN={HF_SECRET}\n")
    _write(work / "results" / "hf_token", HF_SECRET)
    _write(work / "logs" / "credentials.json", '{"user": "x"}')
    _write(work / "logs" / "leaky.log", f"using token {HF_SECRET}\n")
    return work


def _build(work: Path, *extra: str) -> Path:
    out = work / "archive" / "run.tar.gz"
    rc = archive.main(["--results", "results", "--logs", "logs", "--report", "report.zip",
                       "--config", "config/config.yaml", "--workflow-dir", ".", "--out", str(out), *extra])
    assert rc == 0
    return out


def _open_crate(tarball: Path, dest: Path) -> ROCrate:
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return ROCrate(dest)


def _ids(value: object) -> set[str]:
    items = value if isinstance(value, list) else [value]
    return {getattr(i, "id", i) for i in items if i is not None}


def test_archive_is_a_workflow_run_crate(run_dir: Path, tmp_path: Path) -> None:
    tarball = _build(run_dir)
    crate = _open_crate(tarball, tmp_path / "extracted")
    assert (tmp_path / "extracted" / "ro-crate-metadata.json").is_file()

    assert set(PROFILES) <= _ids(crate.root_dataset["conformsTo"])
    workflow = crate.mainEntity
    assert workflow.id == "workflow/Snakefile"
    assert {"ComputationalWorkflow", "HowTo", "File"} <= set(workflow.type)
    assert workflow["programmingLanguage"].id.endswith("#snakemake")
    assert {"#step-generate", "#step-score"} == _ids(workflow["step"])
    assert {"#tool-generate", "#tool-score"} <= _ids(workflow["hasPart"])

    actions = crate.get_by_type("CreateAction")
    runs = [a for a in actions if a["instrument"] is workflow]
    assert len(runs) == 1
    run = runs[0]
    assert run in crate.root_dataset["mentions"]
    assert "config/config.yaml" in _ids(run["object"])
    assert "results/metrics/tiny.json" in _ids(run["result"])
    assert _ids(run["actionStatus"]) == {"http://schema.org/CompletedActionStatus"}

    jobs = {a["instrument"].id: a for a in actions if a is not run}
    assert set(jobs) == {"#tool-generate", "#tool-score"}
    gen, score = jobs["#tool-generate"], jobs["#tool-score"]
    assert gen["startTime"] and gen["endTime"] and score["startTime"] >= gen["startTime"]
    assert "resources/prompts.txt" not in crate  # outside results/logs: an external input
    assert any(o.get("name") == "resources/prompts.txt" and o.get("sha256") for o in gen["object"]
               if not isinstance(o, str))
    assert _ids(gen["result"]) == {"results/gen/tiny/generations.jsonl",
                                   "results/gen/tiny/ckpt/model.safetensors",
                                   "results/gen/tiny/ckpt/tokenizer.json"}
    assert "results/gen/tiny/generations.jsonl" in _ids(score["object"])  # step chaining
    assert _ids(score["result"]) == {"results/metrics/tiny.json"}
    prov = crate.get("logs/generate/tiny.prov.json")
    assert prov is not None and prov["about"] is gen

    controls = crate.get_by_type("ControlAction")
    assert {c["object"].id for c in controls} == {gen.id, score.id}
    organize = crate.get_by_type("OrganizeAction")
    assert len(organize) == 1 and organize[0]["result"] is run
    assert organize[0]["instrument"]["name"] == "Snakemake"
    reqs = {r["name"]: r["softwareVersion"] for r in crate.get("#tool-generate")["softwareRequirements"]}
    assert reqs["python"] and reqs["pandas"]


def test_every_file_checksum_matches_tarball(run_dir: Path) -> None:
    tarball = _build(run_dir)
    with tarfile.open(tarball, "r:gz") as tar:
        names = {m.name for m in tar.getmembers() if m.isfile()}
        meta = json.load(tar.extractfile("ro-crate-metadata.json"))
        files = {e["@id"]: e for e in meta["@graph"] if "File" in e["@type"] and not e["@id"].startswith("#")}
        assert set(files) | {"ro-crate-metadata.json"} == names
        for name, entity in files.items():
            data = tar.extractfile(name).read()
            assert entity["sha256"] == hashlib.sha256(data).hexdigest(), name
            assert entity["contentSize"] == str(len(data))
    expected_results = {p.relative_to(run_dir).as_posix() for p in (run_dir / "results").rglob("*")
                        if p.is_file() and p.name not in {".env", "hf_token", "optimizer.pt"}}
    assert {n for n in names if n.startswith("results/")} == expected_results
    assert verify_archive(tarball) == []


def test_secrets_and_checkpoint_state_left_out(run_dir: Path) -> None:
    tarball = _build(run_dir)
    with tarfile.open(tarball, "r:gz") as tar:
        names = set(tar.getnames())
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert HF_SECRET.encode() not in blob
    for left_out in ("results/.env", "results/hf_token", "logs/credentials.json", "logs/leaky.log",
                     "results/gen/tiny/ckpt/optimizer.pt"):
        assert left_out not in names
    assert "results/gen/tiny/ckpt/tokenizer.json" in names


def test_exclude_options(run_dir: Path) -> None:
    tarball = _build(run_dir, "--no-default-excludes", "--exclude", "**/*.safetensors")
    with tarfile.open(tarball, "r:gz") as tar:
        names = set(tar.getnames())
    assert "results/gen/tiny/ckpt/optimizer.pt" in names
    assert "results/gen/tiny/ckpt/model.safetensors" not in names
    assert verify_archive(tarball) == []


def _rewrite(tarball: Path, out: Path, edit) -> None:
    """Copy an archive member by member through ``edit(name, data)``; None drops the member."""
    with tarfile.open(tarball, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = edit(member.name, src.extractfile(member).read())
            if data is None:
                continue
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


def test_verify_detects_tampering(run_dir: Path, tmp_path: Path) -> None:
    tarball = _build(run_dir)
    tampered = tmp_path / "tampered.tar.gz"

    def tamper(name: str, data: bytes) -> bytes | None:
        if name == "logs/generate/tiny.log":
            return None
        return data.replace(b"0.5", b"0.9") if name == "results/metrics/tiny.json" else data

    _rewrite(tarball, tampered, tamper)
    problems = verify_archive(tampered)
    assert any("results/metrics/tiny.json" in p and "checksum" in p for p in problems)
    assert any("logs/generate/tiny.log" in p and "missing" in p for p in problems)


def test_verify_reports_missing_profile(run_dir: Path, tmp_path: Path) -> None:
    tarball = _build(run_dir)
    edited = tmp_path / "edited.tar.gz"

    def drop_profile(name: str, data: bytes) -> bytes:
        if name != "ro-crate-metadata.json":
            return data
        meta = json.loads(data)
        for entity in meta["@graph"]:
            if entity["@id"] == "./":
                entity["conformsTo"] = [{"@id": "https://w3id.org/ro/wfrun/process/0.5"}]
                del entity["mainEntity"]
        return json.dumps(meta).encode()

    _rewrite(tarball, edited, drop_profile)
    problems = verify_archive(edited)
    assert any("https://w3id.org/ro/wfrun/provenance/0.5" in p for p in problems)
    assert any("mainEntity" in p for p in problems)


def test_refuses_missing_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "Snakefile", "")
    _write(tmp_path / "config.yaml", "a: 1\n")
    rc = archive.main(["--results", str(tmp_path / "nope"), "--config", str(tmp_path / "config.yaml"),
                       "--workflow-dir", str(tmp_path), "--out", str(tmp_path / "a.tar.gz")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nope" in err and "does not exist" in err
    assert not (tmp_path / "a.tar.gz").exists()


def test_refuses_config_with_token(run_dir: Path) -> None:
    _write(run_dir / "config" / "config.yaml", f"hf: {HF_SECRET}\n")
    with pytest.raises(archive.ArchiveError, match="config.yaml"):
        build_archive(Path("results"), Path("config/config.yaml"), Path("out.tar.gz"))


def test_archive_without_logs_still_has_run_action(run_dir: Path, tmp_path: Path) -> None:
    shutil.rmtree(run_dir / "logs")
    out = build_archive(Path("results"), Path("config/config.yaml"), tmp_path / "a.tar.gz")
    assert verify_archive(out) == []
    crate = _open_crate(out, tmp_path / "x")
    assert [a["instrument"].id for a in crate.get_by_type("CreateAction")] == ["workflow/Snakefile"]


def test_secret_names() -> None:
    for name in (".env", ".env.local", "hf_token", "stored_tokens", "credentials", "client_secret.json",
                 "id_rsa", "server.pem", "apiKey.txt"):
        assert is_secret_name(name), name
    for name in ("tokenizer.json", "special_tokens_map.json", "tokenizer_config.json", "metrics.json"):
        assert not is_secret_name(name), name
