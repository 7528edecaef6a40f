# Two commands work on a fresh machine with python3, git and make:
#   make serve   install the server (runtime dependencies only), then run on the embedded
#                SQLite default (./gitward-data)
#   make test    install the server and the test tools, then the whole suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One stamp per flavour: each is redone only when pyproject.toml changes.
RUNTIME_STAMP := $(VENV)/.installed-runtime
TEST_STAMP := $(VENV)/.installed-test
PYTEST_ARGS ?=

.PHONY: install serve test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUNTIME_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(TEST_STAMP) $(RUNTIME_STAMP)

install: $(TEST_STAMP)

serve: $(RUNTIME_STAMP)
	$(BIN)/gitward serve

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
