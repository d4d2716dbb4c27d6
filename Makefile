# malles-graph: `make demo` sets up and runs the demo; `make test` sets up and runs the tests.
# Each set of extras has its own stamp file, so the two commands work alone, in either order and in
# sequence on one checkout (the tests need the `align` extra: torch CPU, transformers, peft).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_EXTRAS := dev
TEST_EXTRAS := dev,align,ray

.PHONY: setup setup-test demo test test-fast lint format clean

# `make` expands a prerequisite's name when it reads the file, so the extras are part of each
# target's own name instead of a variable that a later target overrides.
$(BIN)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$*]"
	touch $@

setup: $(BIN)/.installed-$(DEMO_EXTRAS)
	$(BIN)/malles data fetch all

setup-test: $(BIN)/.installed-$(TEST_EXTRAS)
	$(BIN)/malles data fetch all

demo: setup
	$(BIN)/malles demo

test: setup-test
	$(BIN)/python -m pytest

test-fast: setup-test
	$(BIN)/python -m pytest -m "not llm"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache
