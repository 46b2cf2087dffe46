# make run: the app on embedded defaults (SQLite, filesystem broker) with two Celery workers:
# one for the background queues (and beat), one for what a person waits for (scores,
# best-of-N, a judge's preview), so that those are answered while a run trains. Each queue
# has one consumer: the filesystem broker is not made for several on one queue.
# make test: the whole suite. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format bench bench-ml clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[ml,dev]'
	touch $@

run: $(BIN)/.installed
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py seed_demo --yes-demo --url http://$(HOST):$(PORT)/
	@echo "Open http://$(HOST):$(PORT)/ (Ctrl-C stops the server and the workers)"
	@trap 'kill 0' EXIT; \
	$(BIN)/celery -A workers worker -B -s var/celerybeat-schedule -Q celery,gpu,scoring --concurrency 1 --loglevel INFO & \
	$(BIN)/celery -A workers worker -n interactive@%h -Q interactive,interactive_judge --concurrency 1 --loglevel INFO & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(BIN)/.installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/import_pairs.py
	$(BIN)/python benchmarks/next_pair.py
	$(BIN)/python benchmarks/agreement.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/pairs_table.py
	$(BIN)/python benchmarks/export_dataset.py
	$(BIN)/python benchmarks/judging.py
	$(BIN)/python benchmarks/sharded_scoring.py

# The trainer against TRL and the scorer against transformers' pipeline, on HH pairs.
HH ?= ../shared/data/hh-rlhf-harmless-dev.jsonl
bench-ml: $(BIN)/.installed
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/train_vs_trl.py --data $(HH)
	$(BIN)/python benchmarks/score_vs_pipeline.py --data $(HH)

clean:
	rm -rf $(VENV) var
