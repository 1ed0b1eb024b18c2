"""The CPU's part in a job's numbers: which kernels torch and MKL run, and what the CPU was.

Why this exists: the default study's numbers used to change with the machine. torch dispatches its
vectorised CPU kernels (softmax, norms, reductions, the activations) by the instruction sets the
CPU has (``default``, ``avx2``, ``avx512``), and MKL picks its matrix-multiply code by the CPU's make
and model; each variant rounds differently, and hundreds of training steps amplify a last-bit
difference into a different model. Measured on one machine by capping the dispatch (the suite's
``tests/test_cpu_numerics.py`` does it again): three ATen capabilities give three different
gradients of the same batch, MKL's COMPATIBLE branch a fourth.

A study can therefore run every job with both fixed (``cpu_kernels`` in the config, exported by the
rules as ``ATEN_CPU_CAPABILITY`` and ``MKL_CBWR``). ATen's AVX2 kernels are the same code on every
CPU that has AVX2; MKL documents only its ``COMPATIBLE`` branch as reproducible across Intel and
other CPUs (its AVX2/AVX512 branches are Intel-only and fall back, silently, to the CPU's own code
path elsewhere), and that branch is SSE2 code: GRPO steps take about twice the CPU time. The
released tiny model's recipe fixes both (a 450-step build amplifies any difference); the default
study, which starts from that model, leaves them to the machine: its tables came out the same under
both (docs/default-study.md). What remains machine-dependent with fixed kernels is the thread count
of a job (reductions split by thread), which the rules fix per rule, and a CPU without AVX2, which
falls back to the ``default`` kernels: :func:`cpu_record` puts what was actually in use into each
job's provenance record, so two runs that disagree can be told apart.

Nothing here imports torch: :func:`cpu_record` reads torch's state only when the job already
imported it.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

#: config key (``cpu_kernels.<key>``) -> the environment variable that the library reads
KERNEL_ENV: dict[str, str] = {"aten_cpu_capability": "ATEN_CPU_CAPABILITY", "mkl_cbwr": "MKL_CBWR"}

#: environment variables that decide CPU numerics or threading; recorded when set
NUMERICS_ENV: tuple[str, ...] = (
    "ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "OMP_NUM_THREADS",
    "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES",
)

#: the instruction-set flags of /proc/cpuinfo that select a kernel somewhere in the stack
ISA_FLAGS: tuple[str, ...] = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "avx_vnni",
)

#: the lines of ``torch.__config__.show()`` that name the math libraries and the kernel dispatch
_TORCH_CONFIG_KEYS = ("Math Kernel Library", "MKL-DNN", "CPU capability usage", "OpenMP", "LAPACK")


def kernel_env(settings: dict[str, Any] | None) -> dict[str, str]:
    """The environment a job gets from the config's ``cpu_kernels`` section (null values: none)."""
    settings = settings or {}
    return {env: str(settings[key]) for key, env in KERNEL_ENV.items() if settings.get(key) is not None}


def shell_exports(settings: dict[str, Any] | None) -> str:
    """``export NAME=value ...; `` for a Snakemake shell prefix (empty when nothing is fixed)."""
    env = kernel_env(settings)
    if not env:
        return ""
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + "; "


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (Linux); empty elsewhere."""
    fields: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def _torch_state() -> dict[str, Any] | None:
    """What torch runs with, only if the job imported torch (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    state: dict[str, Any] = {}
    try:
        state["aten_capability"] = torch.backends.cpu.get_cpu_capability()
        state["threads"] = torch.get_num_threads()
        state["interop_threads"] = torch.get_num_interop_threads()
        shown = torch.__config__.show().splitlines()
        state["build"] = [line.strip(" -") for line in shown
                          if any(key in line for key in _TORCH_CONFIG_KEYS) and "Build settings" not in line]
    except Exception as exc:  # an odd build must not lose the record
        state["error"] = f"{type(exc).__name__}: {exc}"
    return state


def cpu_record(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU model, its kernel-relevant instruction sets, the numerics environment, the C library
    and (when loaded) torch's kernel dispatch, threads and math libraries: what a job's provenance
    record needs to explain why two runs of the same study differ."""
    info = _cpuinfo(cpuinfo)
    flags = set(info.get("flags", "").split())
    record: dict[str, Any] = {
        "model": info.get("model name") or platform.processor() or None,
        "vendor": info.get("vendor_id"),
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "env": {name: os.environ[name] for name in NUMERICS_ENV if name in os.environ},
        "libc": "-".join(platform.libc_ver()) or None,
    }
    torch = _torch_state()
    if torch is not None:
        record["torch"] = torch
        wanted = os.environ.get("ATEN_CPU_CAPABILITY")
        in_use = str(torch.get("aten_capability", ""))
        # a CPU without the requested instruction set runs a lower one: the numbers then differ
        record["kernels_as_requested"] = wanted is None or wanted.upper() == in_use.upper()
    return record
