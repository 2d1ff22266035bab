# The README's commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= server,postgres,comfyui,dev

.PHONY: install run test lint fmt bench clean services browser screenshots

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

run: install
	$(BIN)/nanobanana serve --host 127.0.0.1 --port 8000

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

services:
	bash scripts/services.sh

browser:
	bash scripts/browser.sh

test: install services browser lint
	$(BIN)/python -m pytest

screenshots: install browser
	NANOBANANA_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/browser/test_screenshots.py -k page_screenshots -q

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
