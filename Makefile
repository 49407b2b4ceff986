# Everything sets itself up: a .venv with torch pinned to its CPU wheel, serotiny in editable mode.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format docs bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# The suite is mostly CLI subprocesses: one worker per core (at most 4) cuts its time by a third on 2 cores.
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n auto --maxprocesses=4 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/cli_overhead.py
	$(BIN)/python benchmarks/resume_overhead.py
	$(BIN)/python benchmarks/datamodule_throughput.py
	$(BIN)/python benchmarks/tracking_overhead.py
	$(BIN)/python benchmarks/image_throughput.py

docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

clean:
	rm -rf $(VENV) build *.egg-info demo-project
