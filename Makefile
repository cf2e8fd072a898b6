# Two commands on a fresh machine: `make sweep` and `make test`.
# Both create .venv and install everything first (offline except the package registry).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch by default; set TORCH_SPEC to pick another build (e.g. a CUDA one).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
SPEC ?= sweeps/quick.yaml

.PHONY: setup sweep test report pretrain benchmark clean

$(STAMP): pyproject.toml requirements-data.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
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
	$(BIN)/python benchmarks/overhead.py

clean:
	rm -rf runs .pytest_cache
