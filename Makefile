# make run: the sandbox on its embedded default (SQLite + local DingTalk emulator + browser page).
# make test: installs everything into .venv and runs lint (ruff, mypy) and the test suite on
#   SQLite, then again on PostgreSQL when TEST_POSTGRES answers (see README, "Tests on PostgreSQL").
#   LIANDONG_REQUIRE_POSTGRES=1 (CI sets it) makes a server that does not answer a failure.
# Python 3.11: python3.11 where it exists, else python3 (checked below).
PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
# The PostgreSQL leg on both cores: its time is mostly the server's, cloning databases.
PG_PYTEST_ARGS ?= -n 2

.PHONY: run test lint clean

$(BIN)/python:
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { echo "需要 Python 3.11 (PY=$(PY))"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/liandong sandbox

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@if LIANDONG_TEST_DATABASE_URL='$(TEST_POSTGRES)' $(BIN)/python -m tests.postgres; then \
	  echo "== SQLite leg (the PostgreSQL-only tests run in the PostgreSQL leg)"; \
	  $(BIN)/python -m pytest -m 'not postgres' && \
	  echo "== PostgreSQL leg: $(TEST_POSTGRES)" && \
	  LIANDONG_TEST_DATABASE_URL='$(TEST_POSTGRES)' $(BIN)/python -m pytest $(PG_PYTEST_ARGS); \
	elif [ -n "$$LIANDONG_REQUIRE_POSTGRES" ]; then \
	  echo "LIANDONG_REQUIRE_POSTGRES is set and PostgreSQL does not answer: the PostgreSQL leg cannot run" >&2; \
	  exit 1; \
	else \
	  echo "== SQLite leg only (no PostgreSQL at TEST_POSTGRES: the PostgreSQL leg is skipped)"; \
	  $(BIN)/python -m pytest; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache
