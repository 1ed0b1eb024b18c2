"""The conda environments of the GPU/analysis stages can be created by Snakemake, and their pins
resolve together for Linux x86_64 / CPython 3.11.

How Snakemake and conda use an env file (snakemake/deployment/conda.py, ``Env.create``): the file is
copied to ``.snakemake/conda/<hash>.yaml`` (``<hash>`` = md5 of the env folder's path and the file's
text, ``Env._get_hash``) and ``conda env create --file`` runs on that copy; conda writes the ``pip:``
list to a temporary requirements file in the copy's folder and runs pip there. So a ``-r FILE``
line would look for ``.snakemake/conda/FILE``, which does not exist, and a pin kept in another file
would not change the hash. The tests below make that copy (with Snakemake's own hash function) and:

* read its pip part with pip's own requirements parser from that folder (fast, offline);
* check that changing one pin changes the environment's hash (so Snakemake rebuilds it);
* resolve the pip part with uv's resolver for the target platform from that folder
  (`uv pip compile --only-binary :all: --python-platform x86_64-manylinux_2_31 --python-version 3.11`;
  the x86_64-manylinux_2_31 target accepts manylinux_2_31 and the older manylinux tags), with the
  machine's pip and uv configuration switched off (`--no-config`, no UV_* index/find-links/constraint
  variables, pip's configuration is not read by uv: no local wheel folder or mirror, no torch cap) and
  the index given explicitly: UV_INDEX_URL, else PIP_INDEX_URL, else PyPI. uv comes from the project's
  own install (`python -m uv`, pinned in envs/requirements-cpu.txt). A pin conflict (e.g. vllm 0.33
  next to torch 2.13) makes uv fail, and so the test. Marked slow (network: the package registry
  only). uv was checked against pip's resolver (`pip install --dry-run --only-binary=:all: --platform
  ... --python-version 3.11`, what this test ran before): the same {name: version} set for train and
  archive (219 and 113 packages).

Two limits of what can be checked from here, each handled explicitly:
* Packages marked `# sdist-only` (DeepSpeed, and connection_pool, a dependency of Snakemake, publish
  no wheels) cannot take part in a binary-only resolve for another platform: their metadata is
  built here from the source distribution (by pip, as conda's pip will on the cluster: `pip install
  --dry-run --no-deps --report`), and a wheel carrying exactly that metadata (name, version,
  requirements) stands in for each of them in the resolve (`--find-links`).
* Where the reachable index lacks one of NVIDIA's CUDA runtime wheels that torch pins exactly
  (e.g. a registry mirror that keeps only the newest nvidia-cudnn-cu13), the test stands in an empty
  wheel of that exact name and version and resolves again; the stand-ins are printed as warnings.
  Only nvidia-*/cuda-* distributions are ever stood in for.

The predict and data sets are subsets of the train set at the same pins, so they are checked against
the train resolution instead of resolves of their own. The resolves are skipped when the index cannot
be reached within 5 s; together they take about 18 s here (most of it pip building DeepSpeed's metadata
from its source), against about 4 minutes with pip's resolver."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import warnings
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
ENVS = ROOT / "envs"
ENV_FILES = ("train", "predict", "data", "analysis", "archive")
#: Linux x86_64 with glibc 2.31 (Ubuntu 20.04+, RHEL 9+), CPython 3.11: uv's x86_64-manylinux_2_31
#: accepts manylinux_2_31 and every older manylinux tag. Not 2.28 (RHEL 8): vllm 0.30 needs llguidance
#: 1.7, whose only x86_64 wheel for CPython 3.11 is manylinux_2_31.
UV_TARGET = ["--python-platform", "x86_64-manylinux_2_31", "--python-version", "3.11"]
#: how uv says that the index lacks an exactly pinned version ("there is no version of X==V") or the
#: whole project ("X was not found in the package registry and torch==... depends on X==V"); only
#: NVIDIA/CUDA names are stood in for, and a version that exists only for other platforms is not
MISSING = [
    re.compile(r"there is no version of ((?:nvidia|cuda)-[A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+?)[,\s]"),
    re.compile(r"((?:nvidia|cuda)-[A-Za-z0-9_.-]+) was not found in the (?:package registry|provided package "
               r"locations) and .*? depends? on \1==([A-Za-z0-9_.+!-]+?)[,\s]"),
]


# --------------------------------------------------------------------------------------------------
# what Snakemake and conda do with an env file


def snakemake_env_hash(text: bytes, envs_dir: Path) -> str:
    """The hash Snakemake names an env by (``Env._get_hash``, called on an Env without workflow:
    a file-based env with no pin file, no post-deploy script, no container)."""
    from snakemake.deployment.conda import Env

    env = Env.__new__(Env)
    env.name, env.dir, env._envs_dir, env._container_img = None, None, str(envs_dir), None
    env._content, env._content_deploy, env._content_pin = text, b"", b""
    return env._get_hash(include_location=True, include_container_img=True)


def snakemake_copy(env_file: Path, workdir: Path) -> Path:
    """Copy an env file where Snakemake puts it before `conda env create`: ``.snakemake/conda/<hash>.yaml``
    (``Env.create``: ``target_env_file = env_path + ".yaml"``)."""
    envs_dir = workdir / ".snakemake" / "conda"
    envs_dir.mkdir(parents=True, exist_ok=True)
    target = envs_dir / (snakemake_env_hash(env_file.read_bytes(), envs_dir) + ".yaml")
    shutil.copyfile(env_file, target)
    return target


def conda_pip_requirements(copy: Path) -> Path:
    """What conda's pip installer does with the ``pip:`` list of an env file: write it to a temporary
    requirements file in the env file's folder (pip then runs with that folder as working directory)."""
    spec = yaml.safe_load(copy.read_text())
    pip_specs = next((d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d), [])
    req = copy.parent / "condaenv.test.requirements.txt"
    req.write_text("\n".join(pip_specs) + "\n")
    return req


def parse_with_pip(req: Path) -> list[str]:
    """Read a requirements file with pip's own parser (follows -r/-c lines relative to the file)."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements

    return [r.requirement for r in parse_requirements(str(req), session=PipSession())]


def sdist_only(env_file: Path) -> set[str]:
    """Names of the pins marked ``# sdist-only`` in an env file (no wheels: resolved by metadata)."""
    out = set()
    for line in env_file.read_text().splitlines():
        if "sdist-only" in line and line.strip().startswith("- "):
            out.add(canonicalize_name(Requirement(line.strip()[2:].split("#", 1)[0].strip()).name))
    return out


# --------------------------------------------------------------------------------------------------
# fast, offline checks


@pytest.mark.parametrize("name", ENV_FILES)
def test_snakemake_copy_of_each_env_file_has_a_readable_pip_part(name, tmp_path):
    env_file = ENVS / f"{name}.yaml"
    copy = snakemake_copy(env_file, tmp_path)
    reqs = parse_with_pip(conda_pip_requirements(copy))
    assert reqs, f"{env_file.name}: no pip requirements"
    for line in reqs:
        r = Requirement(line)
        if r.name.lower() not in {"pyyaml", "jsonschema"}:
            assert str(r.specifier).startswith("=="), f"{env_file.name}: {line} is not pinned"


def test_a_requirements_file_reference_breaks_in_snakemakes_copy(tmp_path):
    """What went wrong before: `-r requirements-x.txt` beside the env file is not beside its copy."""
    from pip._internal.exceptions import InstallationError

    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "requirements-x.txt").write_text("pyyaml\n")
    env_file = tmp_path / "envs" / "x.yaml"
    env_file.write_text("name: x\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n      - -r requirements-x.txt\n")
    assert parse_with_pip(conda_pip_requirements(env_file)) == ["pyyaml"]  # conda on the original: fine
    with pytest.raises(InstallationError, match="requirements-x.txt"):
        parse_with_pip(conda_pip_requirements(snakemake_copy(env_file, tmp_path / "wd")))


@pytest.mark.parametrize("name", ENV_FILES)
def test_changing_a_pin_changes_the_environment(name, tmp_path):
    text = (ENVS / f"{name}.yaml").read_bytes()
    pin = re.search(rb"==(\d+)\.(\d+)", text)
    bumped = text[:pin.start()] + b"==" + pin.group(1) + b"." + str(int(pin.group(2)) + 1).encode() + text[pin.end():]
    assert snakemake_env_hash(text, tmp_path) != snakemake_env_hash(bumped, tmp_path)


def test_gpu_stages_share_the_train_pins():
    """predict and data run the same engines as train: the same pins, so one resolve covers them."""
    def pins(name):
        copy = ENVS / f"{name}.yaml"
        spec = yaml.safe_load(copy.read_text())
        items = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        return {canonicalize_name(Requirement(i).name): str(Requirement(i).specifier) for i in items}

    train = pins("train")
    for name in ("predict", "data"):
        for pkg, spec in pins(name).items():
            assert train.get(pkg) == spec, f"{name}.yaml: {pkg}{spec} differs from train.yaml ({train.get(pkg)})"
    analysis = pins("analysis")
    for pkg, spec in analysis.items():
        assert pins("archive").get(pkg) == spec, f"archive.yaml: {pkg} differs from analysis.yaml"


def test_no_requirement_files_for_the_conda_envs():
    """One source of truth: the env files. envs/requirements-cpu.txt is the laptop's venv and
    envs/requirements-vllm-cpu.txt the vLLM CPU test venv (make test-vllm), not conda envs."""
    assert sorted(p.name for p in ENVS.glob("requirements-*.txt")) == ["requirements-cpu.txt",
                                                                       "requirements-vllm-cpu.txt"]
    for name in ENV_FILES:
        spec = yaml.safe_load((ENVS / f"{name}.yaml").read_text())
        items = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        assert not [i for i in items if i.startswith("-")], f"{name}.yaml: pip options/file references"


# --------------------------------------------------------------------------------------------------
# resolves against the package index (slow)


def _index_url() -> str:
    return os.environ.get("UV_INDEX_URL") or os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple/"


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


def _pip(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", *args]
    for _ in range(3):  # an index that answers an empty page now and then: ask again
        proc = subprocess.run(cmd, env=_pip_env(), capture_output=True, text=True, timeout=600, cwd=cwd)
        if proc.returncode == 0 or "(from versions: none)" not in proc.stderr:
            break
    return proc


#: UV_* variables that may stay: where the cache is, TLS and network settings. The others (indexes,
#: find-links, constraints, overrides, config files, offline, ...) would change what is resolved.
UV_KEEP = {"UV_CACHE_DIR", "UV_NO_CACHE", "UV_NATIVE_TLS", "UV_SYSTEM_CERTS", "UV_HTTP_TIMEOUT",
           "UV_HTTP_RETRIES", "UV_CONCURRENT_DOWNLOADS", "UV_INSECURE_HOST", "UV_NO_PROGRESS"}


def _uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UV_") or k in UV_KEEP}
    if os.environ.get("PIP_CERT") and not os.environ.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = os.environ["PIP_CERT"]  # the CA bundle pip is told to use, for uv too
    return env


def _uv_compile(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`uv pip compile` of the project's own uv (envs/requirements-cpu.txt), isolated from the machine's
    configuration, against one index: UV_INDEX_URL, else PIP_INDEX_URL, else PyPI."""
    cmd = [sys.executable, "-m", "uv", "--no-config", "--no-progress", "--color", "never", "pip", "compile",
           "--python", sys.executable, "--index-url", _index_url(), "--no-header", "--no-annotate", *args]
    for _ in range(3):  # an index that answers an empty page now and then: ask again
        proc = subprocess.run(cmd, env=_uv_env(), capture_output=True, text=True, timeout=600, cwd=cwd)
        if proc.returncode == 0 or "not found in the package registry" not in proc.stderr:
            break
    if "No module named uv" in proc.stderr:
        pytest.fail(f"uv is not installed beside {sys.executable}: install envs/requirements-cpu.txt (make setup)")
    return proc


def _missing_runtime_wheel(stderr: str) -> tuple[str, str] | None:
    """The NVIDIA/CUDA wheel (name, version) that uv says the index lacks, if any."""
    text = " ".join(stderr.split()) + " "
    for pattern in MISSING:
        hit = pattern.search(text)
        if hit:
            return hit.group(1), hit.group(2)
    return None


def _stub_wheel(folder: Path, name: str, version: str, requires: list[str] = ()) -> None:
    """A wheel with only metadata: an NVIDIA runtime wheel the index does not carry (no requirements),
    or a source-only package (its own requirements)."""
    dist = re.sub(r"[-_.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
    with zipfile.ZipFile(folder / f"{dist}-{version}-py3-none-any.whl", "w") as zf:
        zf.writestr(f"{info}/METADATA", meta)
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test_envs\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """Stand-in wheels, shared by the environments (they pin the same torch)."""
    return {"dir": tmp_path_factory.mktemp("stubs"), "names": []}


def sdist_stand_ins(label: str, sdist_lines: list[str], stubs: dict, cwd: Path) -> None:
    """Wheels with the metadata of the sdist-only pins (built here from their sources), so that the
    binary resolve sees them and their requirements exactly as pip would from the source."""
    report = cwd / "sdist.report.json"
    proc = _pip(["--no-deps", "--report", str(report), *sdist_lines], cwd)
    assert proc.returncode == 0, f"{label}: {sdist_lines} not available:\n{proc.stderr[-3000:]}"
    for item in json.loads(report.read_text())["install"]:
        meta = item["metadata"]
        _stub_wheel(stubs["dir"], meta["name"], meta["version"], meta.get("requires_dist") or [])


def resolve_requirements(req: Path, label: str, sdist: set[str], stubs: dict) -> dict[str, str]:
    """Resolve a requirements file for the target from its own folder; {canonical name: version}."""
    lines = [ln for ln in req.read_text().splitlines() if ln.strip()]
    sdist_lines = [ln for ln in lines if canonicalize_name(Requirement(ln).name) in sdist]
    if sdist_lines:
        sdist_stand_ins(label, sdist_lines, stubs, req.parent)
    for _ in range(20):
        args = ["--only-binary", ":all:", *UV_TARGET, "--find-links", str(stubs["dir"]), req.name]
        proc = _uv_compile(args, req.parent)
        if proc.returncode == 0:
            break
        hit = _missing_runtime_wheel(proc.stderr)
        if not hit or f"{hit[0]}=={hit[1]}" in stubs["names"]:
            pytest.fail(f"{label}: pins do not resolve together for Linux x86_64 / CPython 3.11:\n"
                        f"{proc.stderr[-4000:]}")
        _stub_wheel(stubs["dir"], *hit)
        stubs["names"].append(f"{hit[0]}=={hit[1]}")
    else:
        pytest.fail(f"{label}: too many CUDA runtime wheels missing from the index: {stubs['names']}")
    if stubs["names"]:
        warnings.warn(f"{label}: the index lacks {stubs['names']} (pinned by torch); resolved with empty "
                      f"stand-ins of those exact versions", stacklevel=1)
    chosen = {}
    for line in proc.stdout.splitlines():  # `name==version`, one a line
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            r = Requirement(line)
            chosen[canonicalize_name(r.name)] = str(r.specifier).removeprefix("==")
    for line in lines:
        r = Requirement(line)
        if str(r.specifier).startswith("=="):
            assert chosen.get(canonicalize_name(r.name)) == str(r.specifier)[2:], f"{label}: {line}"
    return chosen


def resolve_env(name: str, workdir: Path, stubs: dict) -> dict[str, str]:
    """Resolve an env file's pip part exactly where conda would install it from."""
    env_file = ENVS / f"{name}.yaml"
    req = conda_pip_requirements(snakemake_copy(env_file, workdir))
    return resolve_requirements(req, env_file.name, sdist_only(env_file), stubs)


@pytest.mark.slow
def test_gpu_environments_resolve(pypi, stubs, tmp_path):
    """train resolves from Snakemake's copy; predict and data are subsets at the same pins
    (test_gpu_stages_share_the_train_pins), so the train resolution covers them."""
    chosen = resolve_env("train", tmp_path, stubs)
    assert "triton" in chosen, "a CUDA torch build was expected (triton comes with it on Linux)"


@pytest.mark.slow
def test_archive_environment_resolves(pypi, stubs, tmp_path):
    """archive = analysis + snakemake + roc-validator: resolving it covers the analysis set too."""
    chosen = resolve_env("archive", tmp_path, stubs)
    assert "snakemake" in chosen and "scipy" in chosen


@pytest.mark.slow
def test_a_pin_conflict_fails(pypi, stubs, tmp_path):
    """The check catches a conflict: vllm 0.33 pins torch 2.14, so it cannot sit next to torch 2.13."""
    bad = tmp_path / "requirements-bad.txt"
    bad.write_text("torch==2.13.0\nvllm==0.33.0\n")
    with pytest.raises(pytest.fail.Exception, match="do not resolve together"):
        resolve_requirements(bad, bad.name, set(), stubs)
