# One command per job; each installs what it needs into .venv on first use.
#   make reproduce [NOTEBOOKS="00_synthetic_dataset 03_clan"] [PROFILE=cpu|smoke|paper]
#                  [DATASET=cub] [DATA_ROOT=/data/CUB_200_2011] [BACKBONE=vgg16]
#                  [EXECUTOR=auto|inline|local|slurm] [WORKERS=2]
#                  [SLURM_PARTITION=gpu] [SLURM_TIME=240] [SLURM_GPUS=1]
#                  [LOADER_WORKERS=4] [COMPILE=1] [PLAN=1]
#                  PLAN=1: print each notebook's runs, epochs and estimated hours on this machine; train nothing
#   make check     train notebook 00's baseline trial at the default rate (about 12 minutes cold, most of it the one-off pretraining) and say whether this machine
#                  reproduces the committed numbers exactly (exit code 0) or not (3)
#   make test      the whole test suite: unit tests + nbval over every notebook (smoke profile)
#   make lab       JupyterLab on notebooks/ with the project's environment
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS ?=
PROFILE ?= cpu
DATASET ?=
DATA_ROOT ?=
BACKBONE ?=
EXECUTOR ?=
WORKERS ?=
SLURM_PARTITION ?=
SLURM_TIME ?=
SLURM_GPUS ?=
LOADER_WORKERS ?=
COMPILE ?=
PLAN ?=

.PHONY: setup reproduce check test lab benchmark clean-cache

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

reproduce: $(STAMP)
	$(PY) -m fgvc_lib.reproduce --profile "$(PROFILE)" --notebooks "$(NOTEBOOKS)" \
		--dataset "$(DATASET)" --data-root "$(DATA_ROOT)" --backbone "$(BACKBONE)" \
		--executor "$(EXECUTOR)" --workers "$(WORKERS)" --slurm-partition "$(SLURM_PARTITION)" \
		--slurm-time "$(SLURM_TIME)" --slurm-gpus "$(SLURM_GPUS)" \
		--loader-workers "$(LOADER_WORKERS)" --compile "$(COMPILE)" --plan "$(PLAN)"

check: $(STAMP)
	$(PY) -m fgvc_lib.reproduce --check

test: $(STAMP)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	FGVC_PROFILE=smoke FGVC_RESULTS_DIR="$$tmp/results" FGVC_RUNS_DIR="$$tmp/runs" MPLBACKEND=Agg \
		$(PY) -m pytest tests notebooks --nbval-lax --durations=15

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

benchmark: $(STAMP)
	$(PY) benchmarks/engine_overhead.py
	$(PY) benchmarks/gpu_throughput.py
	$(PY) benchmarks/run_grid.py

clean-cache:
	rm -rf .cache
