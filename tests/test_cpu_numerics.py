"""The same bits on every machine: the CPU kernels a job runs, fixed by ``cpu_kernels``.

torch picks its vectorised kernels by the CPU's instruction sets; one machine shows what another
CPU would compute by capping that choice (``ATEN_CPU_CAPABILITY``), and MKL's choice by
``MKL_ENABLE_INSTRUCTIONS``. A training step plus a greedy generation of the released initial
model, run in fresh processes as each simulated CPU, gives different weights on each with the
machine's own kernels (the schema's default) and the same bits on all of them with the fixed ones
(the released model's recipe).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from parallel_scaling.jobs import cpu_numerics
from parallel_scaling.dataio.schema import defaults

REPO = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = REPO / "models" / "tiny-qwen2"

#: one optimizer step on a batch of the study's kind of prompt, then a greedy generation
STEP = textwrap.dedent("""
    import hashlib, json, sys
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.manual_seed(0)
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(sys.argv[1])
    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], attn_implementation="eager")
    texts = ["Lena hat 7 Äpfel und kauft 5 dazu. Wie viele Äpfel hat sie?\\n7 + 5 = 12 #### 12",
             "ตั้มมีดินสอ 9 แท่ง ให้เพื่อนไป 4 แท่ง เหลือกี่แท่ง\\n9 - 4 = 5 #### 5",
             "Tom has 6 boxes of 8 pens. How many pens?\\n6 * 8 = 48 #### 48"] * 4
    batch = tok(texts, padding=True, return_tensors="pt")
    out = model(**batch, labels=batch["input_ids"])
    out.loss.backward()
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().numpy().tobytes())
    prompt = tok(["Tom has 6 boxes of 8 pens. How many pens?\\n"], return_tensors="pt")
    gen = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    print(json.dumps({"weights": h.hexdigest(), "loss": out.loss.item(), "text": tok.decode(gen[0]),
                      "capability": torch.backends.cpu.get_cpu_capability()}))
""")

#: CPUs this machine can stand in for (each with AVX2): its own, and one without AVX-512
SIMULATED_CPUS = {
    "this CPU": {},
    "an AVX2 CPU": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def _has(flag: str) -> bool:
    return flag in cpu_numerics.cpu_record()["isa"]


def run_step(cpu: dict[str, str], kernels: dict[str, str]) -> dict:
    """The step in a fresh process on the simulated ``cpu``, with the study's fixed ``kernels`` on
    top (the rules export them the same way, after whatever the machine has)."""
    env = {k: v for k, v in os.environ.items() if k not in cpu_numerics.NUMERICS_ENV}
    env.update(cpu)
    env.update(kernels)
    proc = subprocess.run([sys.executable, "-c", STEP, str(SHIPPED_MODEL)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: the released model's recipe: fixed kernels
FIXED = yaml.safe_load((REPO / "models/tiny-qwen2/recipe.yaml").read_text())["cpu_kernels"]


def test_kernel_env_of_the_recipe_and_of_the_schema_defaults():
    assert cpu_numerics.kernel_env(FIXED) == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE"}
    assert cpu_numerics.shell_exports(FIXED) == "export ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=COMPATIBLE; "
    assert defaults()["cpu_kernels"] == {"aten_cpu_capability": None, "mkl_cbwr": None}  # the machine's own
    assert cpu_numerics.kernel_env(defaults()["cpu_kernels"]) == {}
    assert cpu_numerics.shell_exports({"aten_cpu_capability": None, "mkl_cbwr": None}) == ""


def test_cpu_record_names_model_instruction_sets_and_environment(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
                       "flags\t\t: fpu sse4_2 avx avx2 fma avx512f amx_tile\n\nprocessor\t: 1\n"
                       "model name\t: something else\n")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    record = cpu_numerics.cpu_record(cpuinfo)
    assert record["model"] == "Intel(R) Xeon(R) Platinum 8480+" and record["vendor"] == "GenuineIntel"
    assert record["isa"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "amx_tile"]
    assert record["env"]["ATEN_CPU_CAPABILITY"] == "avx2" and record["env"]["MKL_CBWR"] == "COMPATIBLE"
    import torch  # noqa: F401 - the record reads torch's state only once the job imported it

    record = cpu_numerics.cpu_record(cpuinfo)
    assert record["torch"]["threads"] >= 1
    assert any("Math Kernel Library" in line or "CPU capability" in line for line in record["torch"]["build"])
    assert record["kernels_as_requested"] is (record["torch"]["aten_capability"] == "AVX2")


@pytest.mark.skipif(not (SHIPPED_MODEL / "model.safetensors").is_file(), reason="the shipped model is absent")
@pytest.mark.skipif(not _has("avx512f"), reason="needs an AVX-512 CPU to stand in for two kinds of CPU")
def test_fixed_kernels_give_the_same_bits_on_every_simulated_cpu():
    fixed = cpu_numerics.kernel_env(FIXED)
    free = {name: run_step(cpu, {}) for name, cpu in SIMULATED_CPUS.items()}
    pinned = {name: run_step(cpu, fixed) for name, cpu in SIMULATED_CPUS.items()}
    # the control: left to choose, the two CPUs train different weights from the same batch
    assert free["this CPU"]["capability"] == "AVX512" and free["an AVX2 CPU"]["capability"] == "AVX2"
    assert free["this CPU"]["weights"] != free["an AVX2 CPU"]["weights"]
    # with the study's kernels: the same bits, the same loss, the same generated text
    assert pinned["this CPU"] == pinned["an AVX2 CPU"]
    assert pinned["this CPU"]["capability"] == "AVX2"
