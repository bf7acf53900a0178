# Two commands a newcomer needs: `make demo` and `make test`. Both create the venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench soak clean venv provision

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/swiftchain demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Mosquitto (and chromium) installed if this user can, else one line says what to install.
provision:
	PYTHON=$(PYTHON) VENV=$(VENV) .ci/provision

test: provision $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Every benchmark, then bench/results.md (machine, versions, each figure against its target);
# the PostgreSQL rows on the machine's server (127.0.0.1:5432), skipped when none answers.
bench: $(STAMP)
	$(BIN)/python -m bench.report $(ARGS)

# Mixed ingest and queries for 30 minutes (not in CI): `make soak ARGS="--minutes 1"`.
soak: $(STAMP)
	$(BIN)/python -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
