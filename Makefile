# The two commands of the README. Everything installs into .venv from the pinned requirements.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run run-houses test install install-dev stack-check clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## make run: generate the workshop data, train, gate, deploy, and serve the form on http://127.0.0.1:5005
run: install
	$(PY) run_python_script.py quickstart

## make run-houses: the same for the house-prices problem; the server serves both (/houses/)
run-houses: install
	$(PY) run_python_script.py quickstart --problem houses

## make test: run every test (unit, integration against real processes, browser)
test: install-dev
	$(PY) -m pytest -n 2

## make stack-check: after `docker compose up -d --build`, check every part of the stack (one line each)
stack-check: install
	$(PY) run_python_script.py stack-check

clean:
	rm -rf $(VENV) data
