# Two commands do all the set-up on a fresh machine:
#   make demo   - the whole factory end to end on embedded defaults
#   make test   - the system tools the tests need (scripts/ensure_test_deps.sh: PostgreSQL server
#                 binaries, Chromium, docker-compose; installed with apt-get when root on Debian,
#                 else one line naming what is missing), then lint, format check and the test suite
# Both create .venv when it is missing and (re)install the package with the extras below when
# pyproject.toml changes. `make test-deps DRY_RUN=1` says what the tools step would do.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# dev: pytest and its plugins, ruff, psycopg, schemathesis, playwright; postgres: psycopg;
# bench: what benchmarks/ needs; s3: s3fs for object stores. README's "The two commands" names
# the same extras.
EXTRAS := dev,postgres,bench,s3

.PHONY: demo test test-deps lint format bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlfactory demo

test-deps:
	PYTHON=$(PYTHON) VENV=$(VENV) scripts/ensure_test_deps.sh $(if $(DRY_RUN),--dry-run)

test: test-deps $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf .mlfactory .pytest_cache .ruff_cache
