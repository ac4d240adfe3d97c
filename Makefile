# Two commands for users: `make run` (the service) and `make test`. Both (re)create .venv
# when needed. `make run ARGS="meta-train --help"` runs another fewshot command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?= serve

.PHONY: run test lint format bench smoke clean

$(STAMP): pyproject.toml client/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: this exact version is a local CPU wheel; any other spec pulls CUDA builds
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	# the client is its own distribution (client/): first, so the server's dependency on it is met
	$(BIN)/python -m pip install --quiet -e "./client[cli]"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/fewshot $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# the embedded default end to end: make run, /readyz, one adaptation + prediction, Ctrl-C, no leftovers
smoke: $(STAMP)
	$(BIN)/python scripts/smoke_make_run.py

bench: $(STAMP)
	$(BIN)/python benchmarks/meta_train_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
