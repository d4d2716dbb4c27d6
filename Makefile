# malles-graph: `make demo` sets up and runs the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev

.PHONY: setup demo test test-fast lint format clean

$(BIN)/.installed-$(EXTRAS): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

setup: $(BIN)/.installed-$(EXTRAS)
	$(BIN)/malles data fetch all

demo: setup
	$(BIN)/malles demo

# The tests cover the alignment pipeline too, so they need the `align` extra (torch CPU, transformers, peft).
test: EXTRAS = dev,align
test: setup
	$(BIN)/python -m pytest

test-fast: EXTRAS = dev,align
test-fast: setup
	$(BIN)/python -m pytest -m "not llm"

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache
