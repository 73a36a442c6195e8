# Two commands on a fresh machine (Python 3.10+; Java 17 and npm for the real-server tests):
#   make demo   an order saga end to end on an embedded DynamoDB (moto)
#   make test   install everything, then ruff, mypy --strict, the docs build and all tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.demo-installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(VENV)/.test-installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,docs]'
	touch $@ $(VENV)/.demo-installed

demo: $(VENV)/.demo-installed
	$(BIN)/python -m saga_store_pynamo.demo

test: $(VENV)/.test-installed
	$(BIN)/ruff check saga_store_pynamo tests benchmarks examples
	$(BIN)/ruff format --check saga_store_pynamo tests benchmarks examples
	$(BIN)/mypy --strict saga_store_pynamo examples
	$(BIN)/mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"
	$(BIN)/python -m benchmarks.run --quick
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
