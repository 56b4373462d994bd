# The two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
export DBT_SEND_ANONYMOUS_USAGE_STATS ?= false

.PHONY: help install run test test-fast lint format docs dist clean airflow airflow-test
.DEFAULT_GOAL := help

help: ## list the targets (the default)
	@grep -E '^[a-zA-Z][a-zA-Z_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## create .venv with the locked dependencies (installs uv first if needed)
	@test -x "$(UV)" || python3 -m pip install --user --quiet uv
	$(UV) sync --frozen --extra thrift

run: install ## run the whole pipeline on data/sample with the embedded database
	.venv/bin/condo pipeline --source data/sample

test: install ## run the whole test suite (unit, integration and end-to-end)
	.venv/bin/pytest

test-fast: install ## every test that starts no Spark and no long run (no `slow`, no `spark` mark): under 2 minutes
	.venv/bin/pytest -m "not slow and not spark"

lint: install ## the pre-commit hooks on every file: hygiene, ruff, mypy, vulture, sqlfluff, promtool, amtool, actionlint
	.venv/bin/pre-commit run --all-files --show-diff-on-failure

format: install ## ruff format and ruff's fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

docs: install ## build and serve the dbt docs on http://127.0.0.1:8080
	.venv/bin/condo docs

dist: ## zip the spark_loaders package for spark-submit --py-files
	@mkdir -p dist
	rm -f dist/spark_loaders.zip
	python3 -c "import pathlib, zipfile; z = zipfile.ZipFile('dist/spark_loaders.zip', 'w', zipfile.ZIP_DEFLATED); [z.write(p) for p in sorted(pathlib.Path('spark_loaders').rglob('*.py'))]; z.close()"
	@echo "dist/spark_loaders.zip: pass it to spark-submit --py-files"

clean: ## stop the embedded database and remove local state
	-.venv/bin/condo db stop
	rm -rf .condo target logs dist data/lake data/landing data/processed data/rejected

# Apache Airflow and astronomer-cosmos: the `airflow` extra of the same lock, installed into a
# separate .venv-airflow so the default .venv stays lean (and `make install` keeps it exact).
AIRFLOW_VENV := .venv-airflow
SOURCE ?= data/sample
OUT ?= data/lake/gold
TARGET ?= postgres

airflow: ## create .venv-airflow: the project plus Airflow 3.3 and Cosmos 1.15 (uv sync --extra airflow)
	@test -x "$(UV)" || python3 -m pip install --user --quiet uv
	UV_PROJECT_ENVIRONMENT=$(AIRFLOW_VENV) $(UV) sync --frozen --extra airflow

airflow-test: airflow ## run the condomanage_lakehouse DAG once with `airflow dags test` (SOURCE=DIR OUT=DIR)
	orchestration/airflow/dag_test.sh "$(SOURCE)" "$(OUT)" "$(TARGET)"
