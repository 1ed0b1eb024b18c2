"""The ``archive`` and ``verify-archive`` commands on a small fake run: real files, real provenance
records, a real crate, checked by the real roc-validator (offline, with the shipped contexts)."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import re
import shlex
from pathlib import Path

import pytest
import yaml
from rocrate.rocrate import ROCrate

from helpers import assert_archive_valid
from parallel_scaling.archive import ArchiveError
from parallel_scaling.archive import pack as archive
from parallel_scaling.archive import verify as archive_verify
from parallel_scaling.archive.crate import Attribution
from parallel_scaling.archive.records import iso_ms
from parallel_scaling.archive.dag import DagJob, parse_summary
from parallel_scaling.archive.members import (
    DEFAULT_EXCLUDES,
    Member,
    collect_members,
    config_members,
    record_rule,
)
from parallel_scaling.archive.pack import build_archive
from parallel_scaling.archive.profiles import PROFILES
from parallel_scaling.archive.verify import verify_archive
from parallel_scaling.jobs.provenance import run_with_provenance
from parallel_scaling.jobs.redact import is_secret_name

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


def _build(work: Path, *extra: str, profiles: bool = False) -> Path:
    """archive.main on the fake run; its self-check skips the validator unless ``profiles``."""
    out = work / "archive" / "run.tar.gz"
    rc = archive.main(["--results", "results", "--logs", "logs", "--report", "report.zip",
                       "--config", "config/config.yaml", "--workflow-dir", ".", "--out", str(out), *extra,
                       *([] if profiles else ["--no-profile-check"])])
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
                                   "#results/gen/tiny/ckpt/model.safetensors",  # weights: by reference
                                   "results/gen/tiny/ckpt/tokenizer.json"}
    assert "results/gen/tiny/generations.jsonl" in _ids(score["object"])  # step chaining
    assert _ids(score["result"]) == {"results/metrics/tiny.json"}
    prov = crate.get("logs/generate/tiny.prov.json")
    assert prov is not None and prov["about"] is gen

    controls = crate.get_by_type("ControlAction")
    assert {c["object"].id for c in controls} == {gen.id, score.id}
    organize = crate.get_by_type("OrganizeAction")
    assert len(organize) == 1 and organize[0]["result"] is run
    assert organize[0]["instrument"]["name"] == "snakemake"
    assert organize[0]["instrument"].id.startswith("https://pypi.org/project/snakemake/")
    reqs = {r["name"]: r for r in crate.get("#tool-generate")["softwareRequirements"]}
    assert reqs["Python"]["softwareVersion"] and reqs["pandas"]["softwareVersion"]
    assert reqs["pandas"].id.startswith("https://pypi.org/project/pandas/") and reqs["pandas"]["url"]

    # every action: an agent (the login name recorded with the job), ISO 8601 times the Process Run
    # Crate checks read (milliseconds, +HH:MM), a plain status, and a mention from the root
    pattern = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")
    user = json.loads((run_dir / "logs/generate/tiny.prov.json").read_text())["user"]
    for action in (run, gen, score):
        assert action["agent"].type == "Person" and action["agent"]["name"] == user
        assert pattern.match(action["startTime"]) and pattern.match(action["endTime"])
        assert action["actionStatus"] == "http://schema.org/CompletedActionStatus"
        assert action in crate.root_dataset["mentions"]
    assert crate.root_dataset["author"]["name"] == user
    assert crate.root_dataset["license"].id == "https://spdx.org/licenses/CC-BY-4.0"
    assert {"#step-generate", "#step-score"} == {s.id for s in workflow["step"]}
    assert workflow["conformsTo"].id.startswith("https://bioschemas.org/profiles/ComputationalWorkflow/1.0")
    readme = crate.get("README.md")
    assert readme["encodingFormat"] == "text/markdown" and readme["about"] is crate.root_dataset
    assert "verify-archive" in (tmp_path / "extracted" / "README.md").read_text()
    assert crate.get("results/")["hasPart"]
    assert all(f.get("encodingFormat") for f in crate.get_by_type("File"))


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
                        if p.is_file() and p.name not in {".env", "hf_token", "optimizer.pt", "model.safetensors"}}
    assert {n for n in names if n.startswith("results/")} == expected_results
    assert verify_archive(tarball, profiles=None) == []


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
    assert verify_archive(tarball, profiles=None) == []


def _rewrite(tarball: Path, out: Path, edit) -> None:
    """Copy an archive member by member through ``edit(name, data)``; None drops the member."""
    with tarfile.open(tarball, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            data = edit(member.name, src.extractfile(member).read())
            if data is None:
                continue
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


def _edit_entity(tarball: Path, out: Path, entity_id: str, edit) -> None:
    """Copy an archive with ``edit(entity)`` applied to one entity of its RO-Crate metadata."""

    def rewrite(name: str, data: bytes) -> bytes:
        if name != "ro-crate-metadata.json":
            return data
        meta = json.loads(data)
        for entity in meta["@graph"]:
            if entity["@id"] == entity_id:
                edit(entity)
        return json.dumps(meta).encode()

    _rewrite(tarball, out, rewrite)


def test_verify_detects_tampering(run_dir: Path, tmp_path: Path) -> None:
    tarball = _build(run_dir)
    tampered = tmp_path / "tampered.tar.gz"

    def tamper(name: str, data: bytes) -> bytes | None:
        if name == "logs/generate/tiny.log":
            return None
        return data.replace(b"0.5", b"0.9") if name == "results/metrics/tiny.json" else data

    _rewrite(tarball, tampered, tamper)
    problems = verify_archive(tampered, profiles=None)
    assert any("results/metrics/tiny.json" in p and "checksum" in p for p in problems)
    assert any("logs/generate/tiny.log" in p and "missing" in p for p in problems)


def test_verify_reports_missing_profile(run_dir: Path, tmp_path: Path) -> None:
    tarball = _build(run_dir)
    edited = tmp_path / "edited.tar.gz"

    def drop_profile(entity: dict) -> None:
        entity["conformsTo"] = [{"@id": "https://w3id.org/ro/wfrun/process/0.5"}]
        del entity["mainEntity"]

    _edit_entity(tarball, edited, "./", drop_profile)
    problems = verify_archive(edited, profiles=None)
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
    with pytest.raises(ArchiveError, match="config.yaml"):
        build_archive(Path("results"), Path("config/config.yaml"), Path("out.tar.gz"))


def test_archive_without_logs_still_has_run_action(run_dir: Path, tmp_path: Path) -> None:
    shutil.rmtree(run_dir / "logs")
    out = build_archive(Path("results"), Path("config/config.yaml"), tmp_path / "a.tar.gz", license_id="MIT")
    assert verify_archive(out, profiles="inherited") == []  # the validator too (no Provenance profile here)
    crate = _open_crate(out, tmp_path / "x")
    assert [a["instrument"].id for a in crate.get_by_type("CreateAction")] == ["workflow/Snakefile"]
    # no tool runs: no Provenance Run Crate claim (its profile requires tools in the workflow's hasPart)
    assert _ids(crate.root_dataset["conformsTo"]) == set(PROFILES) - {"https://w3id.org/ro/wfrun/provenance/0.5"}


def test_secret_names() -> None:
    for name in (".env", ".env.local", "hf_token", "stored_tokens", "credentials", "client_secret.json",
                 "id_rsa", "server.pem", "apiKey.txt"):
        assert is_secret_name(name), name
    for name in ("tokenizer.json", "special_tokens_map.json", "tokenizer_config.json", "metrics.json"):
        assert not is_secret_name(name), name


# --------------------------------------------------------------------------------------------
# the independent validator, the provenance chain, and what a run's archive holds


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _replace(tarball: Path, out: Path, name: str, edit) -> tuple[bytes, bytes]:
    """Rewrite one member through ``edit(bytes)`` and update its sha256/contentSize in the crate,
    so that the file checks pass and only the provenance chain can notice. Returns (old, new)."""
    with tarfile.open(tarball, "r:gz") as tar:
        old = tar.extractfile(name).read()
    new = edit(old)
    assert new != old

    def rewrite(member: str, data: bytes) -> bytes:
        if member == name:
            return new
        if member == "ro-crate-metadata.json":
            meta = json.loads(data)
            for entity in meta["@graph"]:
                if entity["@id"] == name:
                    entity["sha256"], entity["contentSize"] = _sha(new), str(len(new))
            return json.dumps(meta).encode()
        return data

    _rewrite(tarball, out, rewrite)
    return old, new


def test_validator_passes_each_profile_with_the_named_agent(run_dir: Path, tmp_path: Path) -> None:
    orcid, ror = "https://orcid.org/0000-0002-1825-0097", "https://ror.org/05dxps055"
    tarball = _build(run_dir, "--agent", "Ada Lovelace", "--agent-id", orcid, "--organization",
                     "Analytical Engines", "--organization-id", ror, "--license", "MIT", profiles=True)
    result = assert_archive_valid(tarball)
    assert set(result.profiles) == {"process-run-crate-0.5", "workflow-run-crate-0.5",
                                    "provenance-run-crate-0.5", "workflow-ro-crate-1.0"}
    # naming the organization clears the issues about publisher and affiliation
    assert not {i.check for i in result.recommended()} & {"ro-crate-1.1_22.3", "ro-crate-1.1_30.2",
                                                          "ro-crate-1.1_30.3"}
    crate = _open_crate(tarball, tmp_path / "x")
    agent = crate.get(orcid)
    assert agent["name"] == "Ada Lovelace" and agent["affiliation"].id == ror
    assert crate.root_dataset["publisher"].id == ror and crate.root_dataset["author"] is agent
    assert all(a["agent"] is agent for a in crate.get_by_type("CreateAction"))
    assert crate.root_dataset["license"].id == "https://spdx.org/licenses/MIT"


def test_chain_fails_when_an_input_is_not_the_archived_file(run_dir: Path, tmp_path: Path) -> None:
    """score read generations.jsonl; swap the archived copy (crate updated to match)."""
    tarball = _build(run_dir)
    assert archive_verify.verify(tarball, profiles=None).problems == []
    swapped = tmp_path / "swapped.tar.gz"
    old, new = _replace(tarball, swapped, "results/gen/tiny/generations.jsonl",
                        lambda b: b.replace(b'"one"', b'"uno"'))
    result = archive_verify.verify(swapped, profiles=None)
    assert result.file_problems == 0  # every file matches the (edited) crate
    assert len(result.problems) == 1, result.problems
    assert all(s in result.problems[0] for s in ("score", "logs/score/tiny.prov.json",
                                                  "results/gen/tiny/generations.jsonl", _sha(old), _sha(new)))


def test_chain_fails_when_a_record_is_edited(run_dir: Path, tmp_path: Path) -> None:
    tarball = _build(run_dir)
    edited = tmp_path / "edited.tar.gz"
    forged = "f" * 64

    def forge(data: bytes) -> bytes:
        rec = json.loads(data)
        for entry in rec["inputs"]:
            if entry["path"].endswith("generations.jsonl"):
                entry["sha256"] = forged
        return json.dumps(rec).encode()

    _replace(tarball, edited, "logs/score/tiny.prov.json", forge)
    problems = verify_archive(edited, profiles=None)
    assert len(problems) == 1 and forged in problems[0] and "generations.jsonl" in problems[0]


def test_chain_fails_when_an_input_is_missing(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Leaving out a file a job read breaks the chain: the archive command says so (exit 1)."""
    out = run_dir / "archive" / "run.tar.gz"
    rc = archive.main(["--results", "results", "--logs", "logs", "--config", "config/config.yaml",
                       "--exclude", "gen/tiny/generations.jsonl", "--no-profile-check", "--out", str(out)])
    assert rc == 1 and "generations.jsonl" in capsys.readouterr().err
    problems = verify_archive(out, profiles=None)
    assert len(problems) == 1 and "generations.jsonl" in problems[0] and "not in the archive" in problems[0]


def test_verify_reports_a_context_that_is_not_shipped(run_dir: Path, tmp_path: Path) -> None:
    """No network: a context the validator would have to fetch is named, not silently skipped."""
    tarball = _build(run_dir)
    edited = tmp_path / "edited.tar.gz"

    def add_context(name: str, data: bytes) -> bytes:
        if name != "ro-crate-metadata.json":
            return data
        meta = json.loads(data)
        meta["@context"].append("https://example.org/unknown/context")
        return json.dumps(meta).encode()

    _rewrite(tarball, edited, add_context)
    result = archive_verify.verify(edited, profiles="inherited")
    assert result.missing_contexts == ["https://example.org/unknown/context"]
    assert any("https://example.org/unknown/context" in p for p in result.problems)


def test_verify_without_the_validator_says_so(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = _build(run_dir)
    monkeypatch.setattr(archive_verify, "validator_version", lambda: None)
    result = archive_verify.verify(tarball)
    assert result.profiles is None and result.problems == []
    assert "not installed" in result.validator and "pip install roc-validator==0.13.0" in result.validator
    assert "not installed" in archive_verify.render(result)


def test_verify_archive_command(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tarball = _build(run_dir)
    capsys.readouterr()
    assert archive_verify.main([str(tarball), "--inherited"]) == 0
    out = capsys.readouterr().out
    assert "each described in the crate and matching its sha256" in out
    assert "provenance-run-crate-0.5: 0 REQUIRED" in out and "checked within provenance-run-crate-0.5" in out
    assert out.rstrip().endswith("OK")
    tampered = tmp_path / "t.tar.gz"
    _rewrite(tarball, tampered, lambda n, d: d + b"x" if n == "results/metrics/tiny.json" else d)
    assert archive_verify.main([str(tampered), "--no-profiles"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM: results/metrics/tiny.json does not match its sha256" in out and "FAILED" in out


def test_config_files_overrides_and_merged_config_are_archived(run_dir: Path, tmp_path: Path) -> None:
    _write(run_dir / "config" / "more.yaml", "seeds: [3]\n")
    merged = {"models": ["tiny"], "seeds": [4], "archive": {"license": "CC0-1.0"}}
    out = build_archive(Path("results"), [Path("config/config.yaml"), Path("config/more.yaml")],
                        tmp_path / "a.tar.gz", logs=Path("logs"), run_config=merged, overrides={"seeds": [4]},
                        attribution=Attribution(license_id="CC0-1.0"))
    crate = _open_crate(out, tmp_path / "x")
    run = next(a for a in crate.get_by_type("CreateAction") if a["instrument"] is crate.mainEntity)
    assert {"config/config.yaml", "config/more.yaml", "config/overrides.yaml",
            "config/run-config.yaml"} <= _ids(run["object"])
    assert "1 of 2" in crate.get("config/config.yaml")["description"]
    assert yaml.safe_load((tmp_path / "x/config/run-config.yaml").read_text()) == merged
    assert yaml.safe_load((tmp_path / "x/config/overrides.yaml").read_text()) == {"seeds": [4]}
    assert verify_archive(out, profiles=None) == []


def test_dag_selection_keeps_what_the_jobs_wrote_or_read(run_dir: Path, tmp_path: Path) -> None:
    """With the run's DAG, results are its outputs plus what its records list; an earlier
    configuration's leftovers stay out."""
    _write(run_dir / "results" / "gen" / "old" / "generations.jsonl", "from an earlier config\n")
    dag = [DagJob("generate", ("results/gen/tiny/generations.jsonl",),
                  ("logs/generate/tiny.log", "logs/generate/tiny.prov.json")),
           DagJob("score", ("results/metrics/tiny.json",), ("logs/score/tiny.prov.json",))]
    configs = config_members([Path("config/config.yaml")], run_dir, {"models": ["tiny"]}, None, tmp_path)
    selection = collect_members(Path("results"), Path("logs"), configs, run_dir,
                                run_dir / "workflow" / "Snakefile", None, DEFAULT_EXCLUDES, dag=dag)
    names = {m.name for m in selection.members}
    assert {"results/gen/tiny/ckpt/model.safetensors",  # recorded by generate, not declared
            "results/gen/tiny/generations.jsonl", "results/metrics/tiny.json",
            "logs/generate/tiny.log", "logs/generate/tiny.prov.json", "logs/score/tiny.prov.json",
            "config/config.yaml", "config/run-config.yaml", "workflow/rules/gen.smk"} <= names
    assert "results/gen/old/generations.jsonl" not in names
    assert selection.stale == ["gen/old/generations.jsonl"]
    assert "results/gen/tiny/ckpt/optimizer.pt" not in names and "logs/leaky.log" not in names


def test_parse_summary() -> None:
    text = ("output_file\tdate\trule\tlog-file(s)\tstatus\tplan\n"
            "results/a.csv\tMon\tanalyze\tlogs/analyze.log,logs/analyze.prov.json\tok\tno update\n"
            "results/a.md\tMon\tanalyze\tlogs/analyze.log,logs/analyze.prov.json\tok\tno update\n"
            "results/pred/x\tMon\tpredict\tlogs/predict/x.log,logs/predict/x.prov.json\tok\tno update\n"
            "results/m.json\tMon\tmanifest\t-\tok\tno update\n")
    assert parse_summary(text) == [
        DagJob("analyze", ("results/a.csv", "results/a.md"), ("logs/analyze.log", "logs/analyze.prov.json")),
        DagJob("predict", ("results/pred/x",), ("logs/predict/x.log", "logs/predict/x.prov.json")),
        DagJob("manifest", ("results/m.json",), ())]
    with pytest.raises(ArchiveError, match="summary"):
        parse_summary("Building DAG of jobs...\n")


def test_times_are_iso_8601_in_utc_with_milliseconds() -> None:
    assert iso_ms("2026-01-02T03:04:05.123456+00:00") == "2026-01-02T03:04:05.123+00:00"
    assert iso_ms("2026-01-02T03:04:05") == "2026-01-02T03:04:05.000+00:00"
    assert iso_ms("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05.000+00:00"
    assert iso_ms("2026-01-02T03:04:05-05:00") == "2026-01-02T08:04:05.000+00:00"
    assert iso_ms(None) is None


def test_archive_rule_passes_the_runs_config_files_and_overrides(tmp_path: Path) -> None:
    """What `snakemake archive` hands the command (a dry run prints it): the study's config file
    alone (config.yaml only when no study is given), the typed --config overrides, and the merged
    config with them applied."""
    from helpers import REPO, copy_workflow, snakemake

    wd = copy_workflow(tmp_path / "wf")
    shutil.copy(REPO / "tests" / "configs" / "smoke.yaml", wd / "smoke.yaml")

    def archive_command(*args: str) -> list[str]:
        out = snakemake(wd, "-n", "-p", "archive", *args).stdout
        line = next(x for x in out.splitlines() if "parallel_scaling archive" in x)
        return shlex.split(line.split("python -m parallel_scaling archive", 1)[1].split(">")[0])

    def option(argv: list[str], name: str) -> list[str]:
        return [argv[i + 1] for i, a in enumerate(argv) if a == name]

    study = archive_command("--configfile", "smoke.yaml", "--config", "seeds=[0,1]",
                            "archive={agent: Ada, weights: copy}")
    assert [Path(c).name for c in option(study, "--config")] == ["smoke.yaml"]
    assert json.loads(option(study, "--overrides")[0]) == {"seeds": [0, 1], "archive": {"agent": "Ada",
                                                                                       "weights": "copy"}}
    assert option(study, "--weights") == ["copy"]
    merged = json.loads(option(study, "--run-config")[0])
    assert merged["study"] == "smoke" and merged["seeds"] == [0, 1]
    assert option(study, "--agent") == ["Ada"] and option(study, "--license") == ["CC-BY-4.0"]
    assert option(study, "--out") == ["archive/smoke.tar.gz"] and "--snakemake-dag" in study

    default = archive_command()
    assert [Path(c).name for c in option(default, "--config")] == ["config.yaml"]
    assert json.loads(option(default, "--overrides")[0]) == {}
    assert json.loads(option(default, "--run-config")[0])["study"] == "tiny"
    assert option(default, "--weights") == ["reference"]  # the schema's default


def test_rule_of_a_record_without_the_dag() -> None:
    member = lambda name: Member(Path(name), name, "provenance")  # noqa: E731
    assert record_rule(member("logs/train_grpo/tiny/k1/s0.prov.json")) == "train_grpo"
    assert record_rule(member("logs/analyze.prov.json")) == "analyze"
    assert record_rule(member("logs/smoke/score/tiny/s0.prov.json"), "logs/smoke") == "score"


def test_verify_opens_no_network_connection(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The profile checks run offline: the contexts come from workflow/resources/jsonld."""
    import socket

    tarball = _build(run_dir)
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError(f"network disabled in this test (connect to {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    result = archive_verify.verify(tarball, profiles="inherited")
    assert attempts == [] and result.problems == [] and result.profiles


def test_expected_size_is_printed_before_writing(run_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Before the tarball is written the archive says how much it will pack and how much of that
    is model weights; a destination without room for it is refused before anything is written."""
    from parallel_scaling.archive.members import Member
    from parallel_scaling.archive.pack import size_estimate

    _write(run_dir / "results" / "gen" / "tiny" / "model.safetensors", b"\0" * 3000)
    _build(run_dir)
    err = capsys.readouterr().err
    assert re.search(r"archive: about to pack \d+ files, [\d.]+ MB before compression, of which 0.00 MB model "
                     r"weights in 0 files; 2 files of model weights \(0.00 MB\) referenced by path, size and "
                     r"sha256, not packed \(archive.weights: copy packs them\)", err), err
    _build(run_dir, "--weights", "copy")
    err = capsys.readouterr().err
    assert re.search(r"of which 0.00 MB model weights in 2 files; no model weights referenced", err), err
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\0" * 20_000_000)
    copied = Member(weights, "results/m/model.safetensors", "result")
    line, problem = size_estimate([copied], 10_000_000)
    assert line == ("about to pack 1 files, 0.02 GB before compression, of which 0.02 GB model weights in 1 files; "
                    "no model weights referenced")
    assert problem == ("the archive needs up to 0.02 GB but its destination has 0.01 GB free; free space or "
                       "archive elsewhere")
    assert size_estimate([Member(weights, "x.txt", "result")], None)[1] is None
    # referenced weights take no room in the archive
    line, problem = size_estimate([Member(weights, copied.name, "result", referenced=True)], 10_000_000)
    assert line == ("about to pack 0 files, 0.00 MB before compression, of which 0.00 MB model weights in 0 files; "
                    "1 files of model weights (0.02 GB) referenced by path, size and sha256, not packed "
                    "(archive.weights: copy packs them)")
    assert problem is None


# --------------------------------------------------------------------------------------------
# model weights by reference (archive.weights)

WEIGHTS = "results/gen/tiny/ckpt/model.safetensors"


def _metadata(tarball: Path) -> dict[str, dict]:
    with tarfile.open(tarball, "r:gz") as tar:
        return {e["@id"]: e for e in json.load(tar.extractfile("ro-crate-metadata.json"))["@graph"]}


def test_weight_file_names() -> None:
    from parallel_scaling.archive.members import is_weights

    for name in ("model.safetensors", "ckpt/model-00001-of-00004.safetensors", "pytorch_model.bin",
                 "pytorch_model-00002-of-00002.bin", "adapter_model.bin", "consolidated.00.pth", "m.gguf"):
        assert is_weights(name), name
    for name in ("training_args.bin", "model.safetensors.index.json", "tokenizer.json", "optimizer.pt",
                 "rng_state.pth", "config.json", "curves.csv"):
        assert not is_weights(name), name


def test_weights_are_listed_by_reference_not_packed(run_dir: Path, tmp_path: Path) -> None:
    """By default the tarball holds no weight bytes; the crate lists the weights with their path,
    size and sha256 as RO-Crate 1.2 describes a file deliberately not in the payload, and the
    checkpoint's small files are packed."""
    tarball = _build(run_dir)
    data = (run_dir / WEIGHTS).read_bytes()
    with tarfile.open(tarball, "r:gz") as tar:
        names = set(tar.getnames())
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
        readme = tar.extractfile("README.md").read().decode()
    assert WEIGHTS not in names and data not in blob
    assert {"results/gen/tiny/ckpt/tokenizer.json", "results/gen/tiny/generations.jsonl"} <= names
    graph = _metadata(tarball)
    ref = graph["#" + WEIGHTS]
    assert ref["@type"] == "File" and ref["localPath"] == WEIGHTS and ref["name"] == WEIGHTS
    assert ref["sha256"] == _sha(data) and ref["contentSize"] == str(len(data))
    assert "not included" in ref["description"]
    group = graph["#model-weights"]
    assert {"@id": "#model-weights"} in graph["./"]["hasPart"] and group["hasPart"] == {"@id": "#" + WEIGHTS}
    with tarfile.open(tarball, "r:gz") as tar:
        context = json.load(tar.extractfile("ro-crate-metadata.json"))["@context"]
    assert {"localPath": "https://w3id.org/ro/terms#localPath"}.items() <= context[-1].items()  # RO-Crate 1.2's term
    assert "not included" in readme and "--run-dir" in readme
    result = archive_verify.verify(tarball, profiles=None, run_dir=run_dir)
    assert result.problems == [] and result.weights_checked == 1 and result.weights_absent == []
    assert [r.name for r in result.referenced] == [WEIGHTS]
    assert f"model weights: 1 files (0.00 MB) referenced by path, size and sha256, not in the archive: 1 compared " \
           f"with the files under {run_dir.resolve()}" in archive_verify.render(result)


def test_verify_checks_referenced_weights_where_they_lie(run_dir: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """verify-archive --run-dir: one flipped byte of a checkpoint's weights fails naming the file;
    without the run's files the weights are reported as not checked, a failure only when required."""
    tarball = _build(run_dir)
    capsys.readouterr()
    assert archive_verify.main([str(tarball), "--no-profiles", "--run-dir", str(run_dir)]) == 0
    assert "1 compared with the files under" in capsys.readouterr().out
    assert archive_verify.main([str(tarball), "--no-profiles", "--json"]) == 0  # default: the current directory
    weights = json.loads(capsys.readouterr().out)["weights"]
    assert weights["run_dir"] == str(run_dir.resolve()) and weights["checked"] == 1 and weights["not_checked"] == []
    assert weights["referenced"] == [{"name": WEIGHTS, "size": len((run_dir / WEIGHTS).read_bytes()),
                                      "sha256": _sha((run_dir / WEIGHTS).read_bytes())}]

    absent = tmp_path / "elsewhere"
    result = archive_verify.verify(tarball, profiles=None, run_dir=absent)
    assert result.problems == [] and result.weights_checked == 0 and result.weights_absent == [WEIGHTS]
    assert f"0 compared with the files under {absent}; 1 not there, NOT CHECKED ({WEIGHTS};" in \
        archive_verify.render(result)
    assert archive_verify.main([str(tarball), "--no-profiles", "--run-dir", str(absent), "--require-weights"]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM: 1 referenced model weight files are not under {absent} (--require-weights): {WEIGHTS}" in out

    weights = run_dir / WEIGHTS
    data = weights.read_bytes()
    weights.write_bytes(data[:10] + bytes([data[10] ^ 1]) + data[11:])  # one byte flipped, same size
    assert archive_verify.main([str(tarball), "--no-profiles", "--run-dir", str(run_dir)]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM: {WEIGHTS} under {run_dir.resolve()} does not match its sha256 in the crate" in out
    assert out.rstrip().endswith("FAILED: 1 problem(s)")
    weights.write_bytes(data[:-1])  # truncated: found by its size, without reading it
    problems = verify_archive(tarball, profiles=None, run_dir=run_dir)
    assert len(problems) == 1 and WEIGHTS in problems[0] and f"is {len(data) - 1} bytes, the crate says " \
        f"{len(data)}" in problems[0]


def test_weights_copy_packs_them(run_dir: Path, tmp_path: Path) -> None:
    """archive.weights: copy (--weights copy) packs the weights as every other file, as before."""
    tarball = _build(run_dir, "--weights", "copy")
    with tarfile.open(tarball, "r:gz") as tar:
        assert tar.extractfile(WEIGHTS).read() == (run_dir / WEIGHTS).read_bytes()
    graph = _metadata(tarball)
    assert graph[WEIGHTS]["@type"] == "File" and "#model-weights" not in graph and "#" + WEIGHTS not in graph
    result = archive_verify.verify(tarball, profiles=None, run_dir=run_dir)
    assert result.problems == [] and result.referenced == []
    assert "model weights:" not in archive_verify.render(result)
    with pytest.raises(ArchiveError, match="archive.weights"):
        build_archive(Path("results"), Path("config/config.yaml"), tmp_path / "a.tar.gz", weights="link")


def test_chain_checks_an_input_archived_by_reference(run_dir: Path, tmp_path: Path) -> None:
    """A job that read referenced weights: its action links the reference, and the chain compares
    the hash it read with the crate's; a crate whose reference was changed fails naming both."""
    eval_argv = ["--model", WEIGHTS, "--out", "results/metrics/eval.json"]

    def evaluate() -> int:
        _write(Path("results/metrics/eval.json"), json.dumps({"bytes": len(Path(WEIGHTS).read_bytes())}))
        return 0

    run_with_provenance(Path("logs/evaluate/tiny.prov.json"), "evaluate", eval_argv, evaluate)
    tarball = _build(run_dir)
    result = archive_verify.verify(tarball, profiles=None)
    assert result.problems == [] and result.chain_inputs == 2  # generations.jsonl, and the weights
    graph = _metadata(tarball)
    job = next(e for e in graph.values() if e.get("@type") == "CreateAction" and "evaluate" in e.get("name", ""))
    assert {"@id": "#" + WEIGHTS} in (job["object"] if isinstance(job["object"], list) else [job["object"]])

    forged = "e" * 64
    edited = tmp_path / "edited.tar.gz"

    _edit_entity(tarball, edited, "#" + WEIGHTS, lambda entity: entity.update(sha256=forged))
    problems = archive_verify.verify(edited, profiles=None).problems  # no run directory: the chain alone
    real = _sha((run_dir / WEIGHTS).read_bytes())
    assert len(problems) == 1, problems
    assert all(s in problems[0] for s in ("logs/evaluate/tiny.prov.json", WEIGHTS, real, forged, "referenced"))
    with_files = archive_verify.verify(edited, profiles=None, run_dir=run_dir).problems
    assert len(with_files) == 2 and any("does not match its sha256 in the crate" in p for p in with_files)


def test_member_selection_is_linear_in_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing what to pack compares paths a bounded number of times per file (a set of what is
    already packed), not once per file already chosen: a study of 10,000 jobs packs some 200,000
    files, which the scan per file made hours of CPU (bench/large_steps.py). Twice the files, twice
    the comparisons (the scan made it four times)."""
    import pathlib

    equal = pathlib.PurePath.__eq__

    def comparisons(n: int) -> int:
        root = tmp_path / str(n)
        outs = []
        for i in range(n):
            _write(root / "results" / "pred" / f"r{i}" / "en.jsonl", "")
            outs.append(f"results/pred/r{i}")
        _write(root / "logs" / "predict.log", "")
        _write(root / "config.yaml", "study: x\n")
        _write(root / "Snakefile", "")
        # every prediction folder listed by two jobs: each file is reached twice, packed once
        dag = [DagJob("predict", tuple(outs), ("logs/predict.log",)), DagJob("score", tuple(outs), ())]
        configs = [Member((root / "config.yaml").resolve(), "config.yaml", "config")]
        count = 0

        def counting(self: pathlib.PurePath, other: object) -> bool:
            nonlocal count
            count += 1
            return equal(self, other)

        monkeypatch.setattr(pathlib.PurePath, "__eq__", counting)
        try:
            selection = collect_members(root / "results", root / "logs", configs, root, root / "Snakefile",
                                        None, (), dag=dag)
        finally:
            monkeypatch.undo()
        names = [m.name for m in selection.members]
        assert len(names) == len(set(names)) == n + 3  # the files, the log, the config, the Snakefile
        return count

    small, large = comparisons(600), comparisons(1200)
    assert large < 2.5 * small, f"{small} path comparisons for 600 files, {large} for 1,200"
