# Quick start: `make demo` (set up, run the main job) and `make test` (set up, run the suite).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup system demo test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[test]'
	touch $@

system:
	./scripts/install-system-packages.sh

demo: setup
	$(VENV)/bin/edge-asr demo

test: system setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
