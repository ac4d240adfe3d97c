# Two commands for users: `make run` (the service) and `make test`. Both (re)create .venv
# when needed. `make run ARGS="meta-train --help"` runs another fewshot command.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?= serve

.PHONY: run test lint format bench smoke clean lock wheelhouse images compose-test

$(STAMP): pyproject.toml client/pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: this exact version is a local CPU wheel; any other spec pulls CUDA builds
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	# the client is its own distribution (client/): first, so the server's dependency on it is met
	$(BIN)/python -m pip install --quiet -c requirements.lock -e "./client[cli]"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
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

# every third-party package of the venv, pinned: the venv and the image install with it
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable --all \
	  | grep -v -E '^(robust-fewshot|pip==|setuptools==|wheel==)' \
	  | sed -E 's/^(torch==[^+]*)\+.*/\1/' > requirements.lock  # any variant (cpu, cu128)

# offline image builds: every wheel the CPU image installs, downloaded here into
# wheelhouse/cpu/ (the build installs from it, --no-index). pip picks wheels for this host, so
# run it on linux x86_64 with CPython 3.11 (as the image), and with torch's CPU wheel reachable
# (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu; PyPI's torch is the CUDA build)
wheelhouse: $(STAMP)
	rm -rf wheelhouse && mkdir -p wheelhouse/cpu
	$(BIN)/python -m pip download --quiet --only-binary=:all: --dest wheelhouse/cpu \
	  -c requirements.lock "torch==2.13.0" "./client[cli]" . setuptools wheel \
	  "async-timeout>=4.0.3"  # redis-py needs it below Python 3.11.3 (Debian's 3.11.2)
	rm -f wheelhouse/cpu/robust_fewshot*

# the CPU image (needs docker; without a registry run scripts/airgap_base_images.sh first)
images:
	docker build -t robust-fewshot:cpu .

# the stack end to end under docker compose (bounded; leaves nothing behind)
compose-test: $(STAMP)
	scripts/compose_test.sh
