"""bench/gpu_smoke.sh without a GPU: its arguments, what it runs or skips and why, its exit codes,
and its two study configs (validated and planned by Snakemake). What runs on a GPU is not tested
here (README, "GPU code paths").

For the decisions that depend on the machine, a folder with stand-in ``torch`` and ``vllm`` modules
is put first on PYTHONPATH, so the script *believes* there is a GPU (or vLLM); nothing GPU-side
runs then: the one run with a stand-in GPU checks that a failing step is reported with its log and
status 1. About 15 s."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers import REPO, offline_env

SCRIPT = REPO / "bench" / "gpu_smoke.sh"
FAKE_TORCH = '''
__version__ = "0.0-standin"
class version:
    cuda = "0.0"
class cuda:
    @staticmethod
    def is_available():
        return True
    @staticmethod
    def get_device_name(i):
        return "Stand-in GPU"
'''


def run(*args: str, pythonpath: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = f"{pythonpath}:{env.get('PYTHONPATH', '')}"
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def standin(tmp_path):
    """A folder that makes `import torch` report a GPU; `vllm` importable when asked for."""
    (tmp_path / "torch.py").write_text(FAKE_TORCH)

    def with_vllm():
        (tmp_path / "vllm.py").write_text('__version__ = "0.0-standin"\n')
        return tmp_path
    return tmp_path, with_vllm


@pytest.fixture(scope="module")
def real_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def test_help_and_bad_arguments():
    out = run("--help")
    assert out.returncode == 0 and "--workdir" in out.stdout and "--no-vllm" in out.stdout and "Exit status" in out.stdout
    bad = run("--frobnicate")
    assert bad.returncode == 2 and "unknown argument '--frobnicate'" in bad.stderr
    assert run("--workdir").returncode == 2
    nopy = run("--python", "/nonexistent/python")
    assert nopy.returncode == 2 and "no usable Python" in nopy.stderr


def test_without_a_gpu_nothing_runs_and_says_why(real_gpu, tmp_path):
    if real_gpu:
        pytest.skip("this machine has a GPU")
    out = run("--workdir", str(tmp_path / "w"))
    assert out.returncode == 3
    assert "skipped  cuda:" in out.stdout and "skipped  vllm:" in out.stdout
    assert out.stdout.count("(no CUDA GPU: torch sees no CUDA GPU)") == 2
    assert "nothing ran: torch sees no CUDA GPU" in out.stdout
    assert not (tmp_path / "w").exists()


def test_vllm_step_is_skipped_when_vllm_does_not_import(standin):
    folder, with_vllm = standin
    plan = run("--plan", pythonpath=folder)
    assert plan.returncode == 0, plan.stderr
    assert "gpu_smoke: GPU Stand-in GPU" in plan.stdout
    assert "would run cuda:" in plan.stdout
    assert "skip     vllm:" in plan.stdout and "vLLM not importable (ModuleNotFoundError" in plan.stdout
    plan = run("--plan", pythonpath=with_vllm())
    assert "would run vllm:" in plan.stdout and "gpu_smoke: vllm 0.0-standin" in plan.stdout
    plan = run("--plan", "--no-vllm", pythonpath=folder)
    assert "skip     vllm:" in plan.stdout and "(--no-vllm given)" in plan.stdout


def test_a_failing_step_is_reported_with_its_log(standin, tmp_path):
    """With the stand-in torch the jobs cannot train: the step fails, the summary says where its log is."""
    folder, _ = standin
    out = run("--workdir", str(tmp_path / "w"), "--no-vllm", pythonpath=folder, timeout=600)
    assert out.returncode == 1, out.stdout[-2000:]
    assert "FAILED   cuda:" in out.stdout and f"log: {tmp_path / 'w'}/gpu_smoke_cuda.log" in out.stdout
    assert "skipped  vllm:" in out.stdout
    assert (tmp_path / "w" / "gpu_smoke_cuda.log").is_file()
    # the end of the failing step's log is shown: here the refusal before any job (this machine has
    # no NVIDIA driver, whatever the stand-in torch says), on a GPU node a job's own error
    log = (tmp_path / "w" / "gpu_smoke_cuda.log").read_text().strip().splitlines()
    assert log[-2].strip() in out.stdout or "Error in rule" in out.stdout, out.stdout[-2000:]


@pytest.mark.parametrize("configfile", ["bench/gpu_smoke.yaml", "bench/gpu_smoke_vllm.yaml"])
def test_smoke_configs_plan_gpu_jobs(configfile, tmp_path):
    targets = [f"results/gpu_smoke/scored/tiny/{r}/s0/scored.jsonl" for r in ("init/init", "grpo/k1")]
    proc = subprocess.run(
        ["python" if not (REPO / ".venv/bin/python").exists() else str(REPO / ".venv/bin/python"), "-m", "snakemake",
         "-n", "--cores", "2", "--resources", "gpu=1", "--configfile", str(REPO / configfile),
         "--directory", str(tmp_path), *targets],
        cwd=REPO, env=offline_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    for rule in ("build_init_model", "train_grpo", "predict"):
        assert f"rule {rule}:" in out, rule
    assert "gpu=1" in out
