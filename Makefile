# The README's commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
#: `make run` needs the service; `make test` also the ComfyUI nodes' CPU torch and the dev tools.
RUN_EXTRAS  ?= server,postgres
TEST_EXTRAS ?= server,postgres,comfyui,dev

.PHONY: install install-dev run test lint fmt bench clean services browser screenshots

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-test

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(if $(filter run,$*),$(RUN_EXTRAS),$(TEST_EXTRAS))]"
	touch $@

run: install
	$(BIN)/nanobanana serve --host 127.0.0.1 --port 8000

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: install-dev
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

services:
	bash scripts/services.sh

browser:
	bash scripts/browser.sh

test: install-dev services browser lint
	$(BIN)/python -m pytest

screenshots: install-dev browser
	NANOBANANA_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/browser/test_screenshots.py -k page_screenshots -q

bench: install-dev
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
