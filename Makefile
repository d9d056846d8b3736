# hashbank: `make run` serves a demo bank, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# Development defaults; every one can be overridden from the environment.
export DEBUG ?= 1

.PHONY: run test lint format install migrate demo bench-cases clean messages

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (Python 3.11+) on PATH, or set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py demo_data

run: demo
	@echo "hashbank on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs/)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m mypy hashbank cases exchange config reviewers webapi

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

messages: $(STAMP)
	$(BIN)/python manage.py makemessages -l nl -l sv --no-obsolete -i ".venv/*" -i "var/*"
	$(BIN)/python manage.py makemessages -d djangojs -l nl -l sv --no-obsolete -i ".venv/*" -i "var/*" -i "tests/*" -i "*/vendor/*"
	$(BIN)/python manage.py compilemessages -i ".venv"

bench-cases: $(STAMP)
	$(BIN)/python scripts/bench_cases.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
