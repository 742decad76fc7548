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
	@echo "make demo   - create .venv, install, prepare the bundled UCR 135 series and print what was written"
	@echo "make test   - create .venv, install, run ruff and the whole test suite"
	@echo "make bench  - run the speed and memory benchmarks in bench/"
	@echo "make format - apply ruff's formatter"

# The venv is (re)built whenever requirements.txt changes. torch is in requirements.txt, so it is
# resolved in the same pip call as everything else (the local CPU wheel, not a CUDA build).
$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) make_dataset.py --dataset UCR --data_id_list "[135]" --mode train --modality image
	$(PY) make_dataset.py --dataset UCR --data_id_list "[135]" --mode test --modality image
	$(PY) make_dataset.py --dataset UCR --data_id_list "[135]" --mode test --modality text

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: lint
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/render.py

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
