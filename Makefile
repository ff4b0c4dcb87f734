# Two commands do all the set-up on a fresh machine:
#   make demo   - the whole factory end to end on embedded defaults
#   make test   - lint, format check and the test suite
# Both create .venv when it is missing and (re)install the package when pyproject.toml changes.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlfactory demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .mlfactory .pytest_cache .ruff_cache
