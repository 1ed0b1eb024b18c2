"""`make test` runs the suite on several pytest-xdist workers (`-n 3`, with pyproject.toml's `--dist
loadgroup`); the work units of tests/conftest.py must keep what shares state together, or each
worker would repeat a module's study run, or start a second SLURM cluster. Checked on a small
generated suite, run the same way in a subprocess: which process ran each test."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict

from helpers import REPO

MODULE = '''
import json, os
import pytest

@pytest.fixture(scope="module")
def study():
    return os.getpid()

{cluster}

@pytest.mark.parametrize("i", range(3))
def test_module(study, i):
    with open("ran.jsonl", "a") as f:
        f.write(json.dumps({{"unit": "{name}", "pid": os.getpid()}}) + "\\n")

{extra}
'''

CLUSTER = '''
@pytest.fixture
def slurm_cluster():  # stands in for the conftest's session cluster
    return None

def test_on_the_cluster(slurm_cluster):
    with open("ran.jsonl", "a") as f:
        f.write(json.dumps({"unit": "cluster", "pid": os.getpid()}) + "\\n")
'''

STUDIES = '''
@pytest.fixture(scope="module", params=[pytest.param(s, marks=pytest.mark.xdist_group(f"study-{s}")) for s in "xy"])
def finished(request):
    return request.param

@pytest.mark.parametrize("j", range(2))
def test_study(finished, j):
    with open("ran.jsonl", "a") as f:
        f.write(json.dumps({"unit": f"study-{finished}", "pid": os.getpid()}) + "\\n")
'''


def test_each_work_unit_runs_in_one_worker_and_both_workers_run(tmp_path):
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    for name in "abcd":
        (tmp_path / f"test_{name}.py").write_text(MODULE.format(
            name=name, cluster=CLUSTER if name in "ab" else "", extra=STUDIES if name == "c" else ""))
    addopts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                           *shlex.split(addopts)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pids = defaultdict(set)
    for line in (tmp_path / "ran.jsonl").read_text().splitlines():
        row = json.loads(line)
        pids[row["unit"]].add(row["pid"])
    assert sorted(pids) == ["a", "b", "c", "cluster", "d", "study-x", "study-y"]
    assert all(len(p) == 1 for p in pids.values()), dict(pids)  # a unit never spans two workers
    assert len(set().union(*pids.values())) == 2  # and the units are shared out between both


def test_every_test_that_needs_vllm_runs_in_make_test_vllm() -> None:
    """A test skipped in the main environment for want of vLLM runs in `make test-vllm` (CI runs both):
    each test module that asks for vLLM, or each such test, is in the Makefile's VLLM_TESTS."""
    import re

    makefile = (REPO / "Makefile").read_text()
    listed = set(re.search(r"^VLLM_TESTS\s*:=\s*(.+)$", makefile, re.M).group(1).split())
    needing: set[str] = set()
    for path in sorted((REPO / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO).as_posix()
        if re.search(r"^\w+ = pytest\.importorskip\(\"vllm\"|^pytestmark.*vllm|VLLM_CPU_ENV\b.*\n.*import vllm", text, re.M):
            needing.add(rel)
            continue
        for match in re.finditer(r"^def (test_\w+)\(.*\n(?:    .*\n|\n)*?    pytest\.importorskip\(\"vllm\"", text, re.M):
            needing.add(f"{rel}::{match.group(1)}")
    assert needing, "found no vLLM test: the pattern is stale"
    assert needing - listed - {"tests/test_vllm_cpu.py"} == set() and "tests/test_vllm_cpu.py" in listed
