# The README's commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
#: `make run` needs the service; `make test` also the ComfyUI nodes' CPU torch and the dev tools.
RUN_EXTRAS  ?= server,postgres,redis,s3,mcp
TEST_EXTRAS ?= server,postgres,redis,s3,mcp,comfyui,dev
#: Every install is pinned to the versions CI tested; `make lock` refreshes them.
LOCK := constraints.txt

.PHONY: install install-dev run-env bare-env dist run test lint fmt bench clean services browser screenshots lock comfyui-pack node-clients

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-test

$(VENV)/.installed-%: pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e ".[$(if $(filter run,$*),$(RUN_EXTRAS),$(TEST_EXTRAS))]"
	touch $@

#: A second environment with only what `make run` installs: tests/install runs the CLI and the
#: service from it, so that a dependency the test tools happen to bring cannot hide a crash.
RUN_ENV := .venv-run
run-env: $(RUN_ENV)/.installed

$(RUN_ENV)/.installed: pyproject.toml $(LOCK)
	rm -rf $(RUN_ENV)
	$(PYTHON) -m venv $(RUN_ENV)
	$(RUN_ENV)/bin/python -m pip install --quiet --upgrade pip
	$(RUN_ENV)/bin/python -m pip install --quiet -c $(LOCK) -e ".[$(RUN_EXTRAS)]"
	touch $@

#: The sdist and the wheel as they would be published, checked the way PyPI checks them.
dist: install-dev
	rm -rf dist
	$(BIN)/uv build --quiet --out-dir dist
	$(BIN)/twine check --strict dist/*

#: The wheel installed with no extras, as `pip install nanobanana` would: tests/install checks
#: the library (typed), the CLI and the hint for the service from it.
BARE_ENV := .venv-bare
bare-env: dist
	test -x $(BARE_ENV)/bin/python || $(PYTHON) -m venv $(BARE_ENV)
	$(BARE_ENV)/bin/python -m pip install --quiet -c $(LOCK) dist/nanobanana-*.whl
	$(BARE_ENV)/bin/python -m pip install --quiet --force-reinstall --no-deps dist/nanobanana-*.whl

#: The ComfyUI node pack as the Comfy Registry and ComfyUI-Manager take it, in build/comfyui/.
#: To publish: make comfyui-pack REPOSITORY=<public URL> PUBLISHER=<registry publisher id>.
comfyui-pack:
	$(PYTHON) scripts/comfyui_pack.py --out build/comfyui \
		$(if $(REPOSITORY),--repository $(REPOSITORY)) $(if $(PUBLISHER),--publisher $(PUBLISHER))

run: install
	$(BIN)/nanobanana serve --host 127.0.0.1 --port 8000

lint: install-dev
	$(BIN)/deptry src
	$(BIN)/lint-imports
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

fmt: install-dev
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

services:
	bash scripts/services.sh

browser:
	bash scripts/browser.sh

#: The published JavaScript clients tests/compat drives the service with (OpenAI's Node SDK),
#: at the versions in tests/compat/node/package-lock.json.
NODE_CLIENTS := tests/compat/node
node-clients: $(NODE_CLIENTS)/node_modules/.installed

$(NODE_CLIENTS)/node_modules/.installed: $(NODE_CLIENTS)/package.json $(NODE_CLIENTS)/package-lock.json
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install-dev run-env bare-env services browser node-clients lint
	$(BIN)/python -m pytest

screenshots: install-dev browser
	NANOBANANA_SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest tests/browser/test_screenshots.py -k page_screenshots -q

#: Re-resolve every extra's dependencies to the newest releases and pin them in $(LOCK).
lock: install-dev
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
		--upgrade --quiet -o $(LOCK)

bench: install-dev
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(RUN_ENV) $(BARE_ENV) dist build $(NODE_CLIENTS)/node_modules .pytest_cache .mypy_cache .ruff_cache
