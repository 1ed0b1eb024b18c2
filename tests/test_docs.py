"""The documentation cannot go stale: the configuration reference is the schema's, every command shown
is run or checked, and the version a record names is the one of the changelog.

* ``docs/configuration.md`` must equal what ``python -m parallel_scaling config-docs`` prints from
  ``workflow/schemas/config.schema.json`` (regenerate it after a schema change).
* Every ```` ```bash ```` block of README.md and docs/*.md, and every inline ``python -m parallel_scaling``
  or ``snakemake`` command, is checked: a package command must exist and its ``--help`` must list each
  option shown; a ``snakemake`` line may use only Snakemake's options and, for the study it names, is
  dry-run; a ``make`` target, a script run with ``bash`` or ``python`` and a repository path named by
  an external tool must exist; any other program fails the test until it is added here. A block
  preceded by ``<!-- docs-check: skip -->`` is not checked; a block of output preceded by
  ``<!-- docs-check: output of the command above -->`` is compared with the real output of the
  command in the block before it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

from helpers import REPO

sys.path.insert(0, str(REPO / "workflow"))

from parallel_scaling.plan import config_docs  # noqa: E402

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SKIP = "<!-- docs-check: skip -->"
OUTPUT = "<!-- docs-check: output of the command above -->"
#: programs that are not ours: only the repository paths they are given must exist
EXTERNAL = {"git", "hf", "huggingface-cli", "squeue", "sacct", "sinfo", "scancel", "tmux", "screen", "conda",
            "mamba", "rocrate-validator", "du", "tail", "ls", "cat", "apt-get", "pip", "time", "export"}
#: top-level folders of the repository: a token starting with one is a repository path
REPO_DIRS = tuple(p.name + "/" for p in REPO.iterdir() if p.is_dir() and not p.name.startswith("."))
#: paths a command in the docs writes or reads only after a run (not shipped)
RUN_DIRS = ("results/", "logs/", "benchmarks/", "work/", "archive/")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{REPO / 'workflow'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


# ------------------------------------------------------------------------------------------
# the configuration reference


def test_configuration_page_is_the_schemas() -> None:
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert page == config_docs.render(), (
        "docs/configuration.md differs from the schema: run "
        "`python -m parallel_scaling config-docs > docs/configuration.md`")


def test_every_schema_key_is_documented_with_its_default() -> None:
    schema = json.loads(config_docs.SCHEMA_FILE.read_text(encoding="utf-8"))
    page = config_docs.render(schema)
    keys = {k.path: k for k in config_docs.walk(schema)}
    # a few keys of each kind: top level, nested, under a name the user chooses, through a $ref
    assert {"study", "grpo.learning_rate", "models.<name>.build.arch.hidden_size",
            "models.<name>.build.pretrain.learning_rate", "benchmarks.<name>.preset",
            "cpu_kernels.mkl_cbwr"} <= set(keys)
    for path in keys:
        assert f"| `{path}` |" in page
    assert keys["grpo.learning_rate"].default == "`5e-05`"
    assert keys["languages"].default == "required"
    # x-tiny marks a key and everything inside it; other keys are not marked
    assert keys["grpo.max_completion_length"].tiny and keys["prediction.max_new_tokens"].tiny
    assert keys["models.<name>.build.warmup.max_steps"].tiny
    assert not keys["grpo.beta"].tiny and not keys["analysis.n_boot"].tiny
    assert keys["grpo.device"].pipeline and not keys["grpo.beta"].pipeline


def test_a_new_schema_key_changes_the_page() -> None:
    schema = json.loads(config_docs.SCHEMA_FILE.read_text(encoding="utf-8"))
    schema["properties"]["analysis"]["properties"]["new_key"] = {
        "type": "integer", "default": 3, "x-tiny": True, "description": "A key added later."}
    page = config_docs.render(schema)
    assert "| `analysis.new_key` | integer | `3` | A key added later. **tiny** |" in page
    assert page != config_docs.render()


def test_x_annotations_do_not_change_validation() -> None:
    """The schema's ``x-`` annotations are ignored by JSON-schema validation: the default study validates,
    and a wrong value of an annotated key is still refused."""
    import jsonschema
    import yaml

    schema = json.loads(config_docs.SCHEMA_FILE.read_text(encoding="utf-8"))
    assert '"x-tiny": true' in config_docs.SCHEMA_FILE.read_text(encoding="utf-8")
    validator = jsonschema.Draft202012Validator(schema)
    config = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    assert not list(validator.iter_errors(config))
    config.setdefault("grpo", {})["max_completion_length"] = 0  # x-tiny key, minimum 1
    assert list(validator.iter_errors(config))


def test_config_docs_command_prints_the_page(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "parallel_scaling", "config-docs"], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out == (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# commands shown in the documentation


@dataclass
class Block:
    page: Path
    line: int
    text: str
    lang: str
    marker: str | None

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a page (indented fences in lists included), with the marker line before each."""
    out: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```"):
            lang = stripped[3:].strip()
            start, body = i, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i].strip())
                i += 1
            before = lines[start - 1].strip() if start else ""
            out.append(Block(page, start + 1, "\n".join(body), lang, before if before.startswith("<!--") else None))
        i += 1
    return out


def commands(text: str) -> list[list[str]]:
    """Each shell command of a block: continuation lines joined, comments dropped, split at && ; |."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out: list[list[str]] = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for word in words + [";"]:
            if word in {"&&", ";", "|", "||"}:
                if current:
                    out.append(current)
                current = []
            else:
                current.append(word)
    return out


def inline_commands(page: Path) -> list[tuple[str, list[str]]]:
    """Inline code spans that are a package or snakemake command line."""
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    found = []
    for span in re.findall(r"`([^`\n]+)`", text):
        if re.match(r"^(\.venv/bin/)?(python -m parallel_scaling \S+|snakemake)( |$)", span):
            try:
                words = shlex.split(span)
            except ValueError:
                continue
            if "..." in words or any("<" in w or "[" in w and "=" not in w for w in words):
                continue  # a pattern, not a command (`python -m parallel_scaling <command>`)
            found.append((span, words))
    return found


@lru_cache(maxsize=None)
def command_options(name: str) -> frozenset[str]:
    proc = subprocess.run([sys.executable, "-m", "parallel_scaling", name, "--help"], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"`python -m parallel_scaling {name} --help` failed:\n{proc.stderr[-2000:]}"
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", proc.stdout))


@lru_cache(maxsize=1)
def snakemake_options() -> frozenset[str]:
    proc = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", proc.stdout))


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(encoding="utf-8"), flags=re.M))


def _options(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if w.startswith("-") and not re.match(r"^-\d", w)]


def _repo_paths(words: list[str]) -> list[str]:
    return [w for w in words if w.startswith(REPO_DIRS) and not w.startswith(RUN_DIRS) and "{" not in w
            and "*" not in w and "<" not in w]


DRY_RUNS: set[tuple[str, ...]] = set()


def check(words: list[str], where: str) -> list[str]:
    """Problems of one command line as the docs show it (empty = fine)."""
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words = words[1:]  # VAR=value before the program
    if not words:
        return []
    program = words[0].removeprefix(".venv/bin/")
    if program in {"python", "python3"} and words[1:3] == ["-m", "parallel_scaling"] \
            or program == "parallel-scaling":
        rest = words[3:] if program != "parallel-scaling" else words[1:]
        if rest[:1] == ["--provenance"]:
            rest = rest[2:]
        if not rest or rest[0] in {"--help", "-h"}:
            return []
        from parallel_scaling.commands import COMMANDS

        if rest[0] not in COMMANDS:
            return [f"{where}: no command {rest[0]!r} in `python -m parallel_scaling`"]
        known = command_options(rest[0])
        problems = [f"{where}: `{rest[0]}` has no option {o}" for o in _options(rest[1:]) if o not in known]
        return problems + [f"{where}: no file {p}" for p in _repo_paths(rest[1:]) if not (REPO / p).exists()]
    if program in {"python", "python3"}:
        script = words[1]
        return [] if (REPO / script).exists() else [f"{where}: no script {script}"]
    if program == "snakemake":
        known = snakemake_options()
        problems = [f"{where}: snakemake has no option {o}" for o in _options(words[1:]) if o not in known]
        problems += [f"{where}: no file {p}" for p in _repo_paths(words[1:]) if not (REPO / p).exists()]
        plan: list[str] = []
        for i, w in enumerate(words):
            if w == "--configfile" and i + 1 < len(words):
                plan += ["--configfile", words[i + 1]]
            if w == "--config":
                j = i + 1
                while j < len(words) and not words[j].startswith("-"):
                    plan += ["--config", words[j]]
                    j += 1
        if all((REPO / p).exists() for p in plan[1::2] if p.endswith((".yaml", ".yml"))) and "--unlock" not in words:
            DRY_RUNS.add(tuple(plan))
        return problems
    if program == "make":
        return [f"{where}: no make target {t}" for t in words[1:] if not t.startswith("-") and "=" not in t
                and t not in makefile_targets()]
    if program == "bash":
        return [] if (REPO / words[1]).exists() else [f"{where}: no script {words[1]}"]
    if program in EXTERNAL:
        return [f"{where}: no file {p}" for p in _repo_paths(words[1:]) if not (REPO / p).exists()]
    return [f"{where}: `{program}` is not a command the docs check: add a check to tests/test_docs.py or "
            f"mark the block with {SKIP}"]


def _all_checked() -> list[str]:
    problems: list[str] = []
    for page in PAGES:
        for block in blocks(page):
            if block.lang not in {"bash", "sh", "shell", "console"} or block.marker == SKIP:
                continue
            for words in commands(block.text):
                problems += check(words, block.where())
        for span, words in inline_commands(page):
            problems += check(words, f"{page.relative_to(REPO)}: `{span}`")
    return problems


def test_every_command_in_the_docs_exists_with_its_options() -> None:
    problems = _all_checked()
    assert not problems, "\n".join(problems)
    assert DRY_RUNS, "no snakemake command found in the docs"


def test_the_studies_the_docs_run_plan(tmp_path: Path) -> None:
    """Every snakemake command shown plans, with the study and overrides it names (a dry run)."""
    DRY_RUNS.clear()
    _all_checked()
    snakemake = str(Path(sys.executable).parent / "snakemake")
    for plan in sorted(DRY_RUNS):
        proc = subprocess.run([snakemake, "-n", "--quiet", "rules", *plan], cwd=REPO, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, f"snakemake -n {' '.join(plan)}:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}"


def test_outputs_shown_are_the_commands_real_output() -> None:
    checked = 0
    for page in PAGES:
        found = blocks(page)
        for before, block in zip(found, found[1:]):
            if block.marker != OUTPUT:
                continue
            lines = commands(before.text)
            assert len(lines) == 1, f"{block.where()}: the block before an output shows one command"
            words = lines[0]
            assert words[1:3] == ["-m", "parallel_scaling"], f"{block.where()}: only package commands are run"
            proc = subprocess.run([sys.executable, *words[1:]], cwd=REPO, env=_env(), capture_output=True,
                                  text=True, timeout=120)
            assert proc.returncode == 0, proc.stderr[-2000:]
            assert proc.stdout.strip() == block.text.strip(), f"{block.where()}: the output shown is stale"
            checked += 1
    assert checked >= 1


def test_a_wrong_option_or_command_is_caught() -> None:
    assert check(["python", "-m", "parallel_scaling", "score", "x.jsonl", "--no-such-option"], "here")
    assert check(["python", "-m", "parallel_scaling", "no-such-command"], "here")
    assert check(["snakemake", "--no-such-snakemake-option"], "here")
    assert check(["make", "no-such-target"], "here")
    assert check(["frobnicate", "--x"], "here")
    assert not check([".venv/bin/python", "-m", "parallel_scaling", "cost-plan", "--configfile",
                      "configs/parallel_paper.yaml", "--gpu", "h100"], "here")


# ------------------------------------------------------------------------------------------
# the version a record and an archive name


def test_version_is_in_one_place_and_in_the_changelog() -> None:
    import parallel_scaling

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    version = pyproject["project"]["version"]
    assert parallel_scaling.__version__ == version
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\] - \d{4}-\d{2}-\d{2}$", changelog, flags=re.M)
    assert releases and releases[0] == version, "the newest CHANGELOG.md release is the package's version"
    assert f"[{version}]:" in changelog or "## [Unreleased]" in changelog


def test_provenance_record_names_the_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import parallel_scaling
    from parallel_scaling.jobs.provenance import run_with_provenance

    monkeypatch.chdir(tmp_path)
    record = tmp_path / "logs" / "job.prov.json"
    assert run_with_provenance(record, "score", ["--out", "out.txt"], lambda: 0) == 0
    rec = json.loads(record.read_text(encoding="utf-8"))
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert rec["release"] == parallel_scaling.__version__ == version


def test_crate_and_archive_readme_name_the_release() -> None:
    from parallel_scaling.archive.records import workflow_version

    commit = "a" * 40
    assert workflow_version([{"release": "0.2.0", "code_version": {"commit": commit}}]) == f"0.2.0+git.{commit}"
    assert workflow_version([{"release": "0.2.0", "code_version": None}]) == "0.2.0"
    # records written before releases were recorded: the installed package's version they list
    assert workflow_version([{"packages": {"parallel-scaling": "0.1.0"}}]) == "0.1.0"


def test_archive_names_the_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small archive built from provenance records: its README and its crate's workflow name the release."""
    import tarfile

    import parallel_scaling
    from parallel_scaling.archive import pack
    from parallel_scaling.jobs.provenance import run_with_provenance

    monkeypatch.chdir(tmp_path)
    for path, text in {"workflow/Snakefile": "rule all:\n    shell: 'true'\n", "config/config.yaml": "seeds: [0]\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")

    def job() -> int:
        Path("results/out").mkdir(parents=True, exist_ok=True)
        Path("results/out/a.txt").write_text("1\n", encoding="utf-8")
        return 0

    run_with_provenance(Path("logs/job/a.prov.json"), "score", ["--out", "results/out"], job)
    out = tmp_path / "archive" / "run.tar.gz"
    assert pack.main(["--results", "results", "--logs", "logs", "--config", "config/config.yaml",
                      "--workflow-dir", ".", "--out", str(out), "--no-profile-check"]) == 0
    with tarfile.open(out, "r:gz") as tar:
        readme = tar.extractfile("README.md").read().decode()
        crate = json.loads(tar.extractfile("ro-crate-metadata.json").read())
    release = parallel_scaling.__version__
    assert f"Workflow version: {release}" in readme
    workflow = next(e for e in crate["@graph"] if e["@id"] == "workflow/Snakefile")
    assert workflow["version"] == release or workflow["version"].startswith(f"{release}+git.")
