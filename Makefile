# Every target creates .venv if it is missing and installs the pinned set into it first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
AIRFLOW_PORT ?= 8080

.PHONY: demo test lint pytest airflow clean bench

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q -p $(BIN)/python --compile-bytecode -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python dags/demo_airflow.py

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy runai_extract transforms warehouse dags

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

# Airflow standalone (UI on :$(AIRFLOW_PORT)) against a fake control plane on :8765.
airflow: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/airflow-standalone.sh

clean:
	rm -rf .ledger .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (not part of `make test` or CI): ours vs a minimal floor vs dlt, see docs/performance.md.
# BENCH_ARGS=--quick for a small smoke run.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)
