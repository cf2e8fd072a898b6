# Two commands on a fresh machine: `make sweep` and `make test`.
# Both create .venv and install everything first (offline except the package registry).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is installed first, pinned, so nothing later pulls another build. On the
# project's machines pip takes the CPU wheel of 2.13.0 from local disk; elsewhere
# plain PyPI serves the default (CUDA on Linux) wheel unless TORCH_INDEX names
# another index, e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
STAMP := $(VENV)/.installed
SPEC ?= sweeps/quick.yaml

.PHONY: setup sweep test report pretrain benchmark benchmark-memory benchmark-engine clean

$(STAMP): pyproject.toml requirements-data.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps -r requirements-data.txt
	touch $(STAMP)

setup: $(STAMP)

sweep: $(STAMP)
	$(BIN)/orchestrator sweep $(SPEC)

pretrain: $(STAMP)
	$(BIN)/orchestrator pretrain $(SPEC)

report: $(STAMP)
	$(BIN)/orchestrator report runs/$(basename $(notdir $(SPEC)))

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

benchmark: $(STAMP)
	$(BIN)/python benchmarks/orchestration.py

benchmark-memory: $(STAMP)
	$(BIN)/python benchmarks/memory.py

benchmark-engine: $(STAMP)
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf runs .pytest_cache
