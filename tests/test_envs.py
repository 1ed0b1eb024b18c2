"""The pinned GPU/analysis requirements resolve together for Linux x86_64 / CPython 3.11.

For each envs/requirements-*.txt that a conda env file (envs/*.yaml) uses, pip's resolver runs in
dry-run mode for the target platform (`pip install --dry-run --ignore-installed --only-binary=:all:
--platform manylinux_2_31_x86_64 ... --python-version 3.11 --implementation cp`), with the machine's pip
configuration switched off (PIP_CONFIG_FILE=/dev/null: no local wheel folder or mirror, no torch cap).
pip takes a --platform tag literally, so every manylinux tag a glibc 2.28 system accepts is passed
(manylinux_2_31 down to manylinux_2_17 / manylinux2014 and older). A pin
conflict (e.g. vllm 0.33 next to torch 2.13) makes pip fail, and so the test.

Two limits of what can be checked from here, each handled explicitly:
* Packages marked `# sdist-only` (DeepSpeed publishes no wheels) cannot take part in a binary-only
  resolve for another platform; their metadata is built here and each of their requirements is
  checked against the versions the resolve chose.
* Where the reachable index lacks one of NVIDIA's CUDA runtime wheels that torch pins exactly
  (e.g. a registry mirror that keeps only the newest nvidia-cudnn-cu13), the test stands in an empty
  wheel of that exact name and version and resolves again; the stand-ins are printed as warnings.
  Only nvidia-*/cuda-* distributions are ever stood in for.

The predict set is a subset of the train set at the same pins, so it is checked against the train
resolution instead of a second resolve. Skipped when PyPI cannot be reached within 5 s. Takes about
4 minutes here (pip fetching wheels for metadata, the CUDA torch wheel among them), hence slow."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
import warnings
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "envs"
#: Linux x86_64 with glibc 2.31 (Ubuntu 20.04+, RHEL 9+), CPython 3.11. Not 2.28 (RHEL 8): vllm 0.30
#: needs llguidance 1.7, whose only x86_64 wheel for CPython 3.11 is manylinux_2_31.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(31, 4, -1)] + [
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"]
TARGET = [*[a for p in PLATFORMS for a in ("--platform", p)], "--python-version", "3.11", "--implementation", "cp"]
MISSING = re.compile(r"No matching distribution found for ((?:nvidia|cuda)-[A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)")
pytestmark = pytest.mark.slow


def _index_url() -> str:
    return os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple/"


@pytest.fixture(scope="module")
def pypi():
    url = _index_url().rstrip("/") + "/pip/"
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=5).close()
    except Exception as exc:  # noqa: BLE001 - any failure means: no index here
        pytest.skip(f"package index {_index_url()} unreachable within 5 s ({exc}); cannot check the pins")


def _pip_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT", "PIP_NO_INDEX"}}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _pip(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", *args]
    for _ in range(3):  # an index that answers an empty page now and then: ask again
        proc = subprocess.run(cmd, env=_pip_env(), capture_output=True, text=True, timeout=600, cwd=tmp)
        if proc.returncode == 0 or "(from versions: none)" not in proc.stderr:
            break
    return proc


def _stub_wheel(folder: Path, name: str, version: str) -> None:
    """An empty wheel standing in for an NVIDIA runtime wheel the index does not carry."""
    dist = re.sub(r"[-_.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{dist}-{version}-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test_envs\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """Stand-in wheels, shared by the requirement files (they pin the same torch)."""
    return {"dir": tmp_path_factory.mktemp("stubs"), "names": []}


def split_requirements(path: Path) -> tuple[list[str], list[str]]:
    """(lines for the binary resolve, `# sdist-only` requirements)."""
    binary, sdist = [], []
    for line in path.read_text().splitlines():
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        (sdist if "sdist-only" in line else binary).append(body)
    return binary, sdist


def resolve(path: Path, tmp: Path, stubs: dict) -> dict[str, str]:
    """Resolve a requirements file for the target; {canonical name: version}."""
    binary, sdist = split_requirements(path)
    req = tmp / f"{path.stem}.binary.txt"
    req.write_text("\n".join(binary) + "\n")
    report = tmp / f"{path.stem}.report.json"
    for _ in range(20):
        args = ["--only-binary=:all:", *TARGET, "--target", str(tmp / "target"), "--report", str(report),
                "--find-links", str(stubs["dir"]), "-r", str(req)]
        proc = _pip(args, tmp)
        if proc.returncode == 0:
            break
        hit = MISSING.search(proc.stderr)
        if not hit or f"{hit.group(1)}=={hit.group(2)}" in stubs["names"]:
            pytest.fail(f"{path.name}: pins do not resolve together for Linux x86_64 / CPython 3.11:\n"
                        f"{proc.stderr[-4000:]}")
        _stub_wheel(stubs["dir"], hit.group(1), hit.group(2))
        stubs["names"].append(f"{hit.group(1)}=={hit.group(2)}")
    else:
        pytest.fail(f"{path.name}: too many CUDA runtime wheels missing from the index: {stubs['names']}")
    if stubs["names"]:
        warnings.warn(f"{path.name}: the index lacks {stubs['names']} (pinned by torch); resolved with empty "
                      f"stand-ins of those exact versions", stacklevel=1)
    chosen = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
              for i in json.loads(report.read_text())["install"]}
    if sdist:
        check_sdist_requirements(path, sdist, chosen, tmp)
    return chosen


def check_sdist_requirements(path: Path, sdist: list[str], chosen: dict[str, str], tmp: Path) -> None:
    """Build the metadata of each sdist-only pin here and check its requirements against `chosen`."""
    report = tmp / f"{path.stem}.sdist.json"
    proc = _pip(["--no-deps", "--report", str(report), *sdist], tmp)
    assert proc.returncode == 0, f"{path.name}: {sdist} not available:\n{proc.stderr[-3000:]}"
    env = default_environment()
    env.update(sys_platform="linux", platform_system="Linux", platform_machine="x86_64",
               python_version="3.11", python_full_version="3.11.7", implementation_name="cpython")
    problems = []
    for item in json.loads(report.read_text())["install"]:
        for spec in item["metadata"].get("requires_dist") or []:
            r = Requirement(spec)
            if r.marker and not r.marker.evaluate(dict(env, extra="")):
                continue
            have = chosen.get(canonicalize_name(r.name))
            if have is not None and not r.specifier.contains(have, prereleases=True):
                problems.append(f"{item['metadata']['name']} needs {spec}, the set has {r.name} {have}")
    assert not problems, f"{path.name}: " + "; ".join(problems)


def env_requirement_files() -> list[Path]:
    """The requirements files the conda env files point to (`-r FILE` in their pip section)."""
    files = []
    for env_file in sorted(ENVS.glob("*.yaml")):
        for m in re.finditer(r"-r\s+(\S+)", env_file.read_text()):
            f = (ENVS / m.group(1)).resolve()
            assert f.is_file(), f"{env_file.name}: {m.group(1)} does not exist"
            if f not in files:
                files.append(f)
    return files


def test_env_files_point_to_pinned_requirements():
    names = {p.stem for p in ENVS.glob("*.yaml")}
    assert {"data", "train", "predict", "analysis"} <= names
    files = env_requirement_files()
    assert {f.name for f in files} == {"requirements-train-gpu.txt", "requirements-predict-gpu.txt",
                                       "requirements-analysis.txt"}
    for f in files:
        binary, sdist = split_requirements(f)
        for line in binary + sdist:
            r = Requirement(line)
            if r.name.lower() not in {"pyyaml", "jsonschema"}:
                assert str(r.specifier).startswith("=="), f"{f.name}: {line} is not pinned"


def _check_pins(name: str, chosen: dict[str, str]) -> None:
    binary, _ = split_requirements(ENVS / name)
    for line in binary:  # sdist-only pins are checked by their requirements in resolve()
        r = Requirement(line)
        if str(r.specifier).startswith("=="):
            assert chosen.get(canonicalize_name(r.name)) == str(r.specifier)[2:], f"{name}: {line}"


def test_gpu_requirements_resolve(pypi, stubs, tmp_path):
    """The train set resolves; the predict set is checked against it: every predict pin is in the train
    set at the same version, so the train resolution restricted to them resolves the predict set too
    (one ~2 min resolve instead of two)."""
    chosen = resolve(ENVS / "requirements-train-gpu.txt", tmp_path, stubs)
    _check_pins("requirements-train-gpu.txt", chosen)
    assert "triton" in chosen, "a CUDA torch build was expected (triton comes with it on Linux)"
    _check_pins("requirements-predict-gpu.txt", chosen)
    predict, _ = split_requirements(ENVS / "requirements-predict-gpu.txt")
    missing = [r for r in predict if canonicalize_name(Requirement(r).name) not in chosen]
    assert not missing, f"requirements-predict-gpu.txt: {missing} are not in the train set; resolve it on its own"


def test_analysis_requirements_resolve(pypi, stubs, tmp_path):
    _check_pins("requirements-analysis.txt", resolve(ENVS / "requirements-analysis.txt", tmp_path, stubs))


def test_a_pin_conflict_fails(pypi, stubs, tmp_path):
    """The check catches a conflict: vllm 0.33 pins torch 2.14, so it cannot sit next to torch 2.13."""
    bad = tmp_path / "requirements-bad.txt"
    bad.write_text("torch==2.13.0\nvllm==0.33.0\n")
    with pytest.raises(pytest.fail.Exception, match="do not resolve together"):
        resolve(bad, tmp_path, stubs)
