# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on first use
# and are safe to repeat.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test bench bench-webhook bench-console bench-broadcast clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

run: $(STAMP)
	$(VENV)/bin/bot serve

test: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q

bench: $(DEV_STAMP)
	$(VENV)/bin/python benchmarks/faq.py

bench-webhook: $(DEV_STAMP)
	$(VENV)/bin/python benchmarks/webhook.py

bench-console: $(DEV_STAMP)
	$(VENV)/bin/python benchmarks/console.py

bench-broadcast: $(DEV_STAMP)
	$(VENV)/bin/python benchmarks/broadcast.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
