# Quick start: `make demo` (set up, run the main job) and `make test` (set up, run the suite).
# The host suite includes the base install's checks (tests/test_base_install.py builds a
# venv of its own with no extras) and the examples; the board suite runs in .venv-board.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The board side in its own environment, as on a PYNQ image: the real pynq 4.0.0 pins
# numpy<2 and protobuf<6, which the host side (onnx, hls4ml) cannot live with.
BOARD_VENV ?= .venv-board
BOARD_PY := $(BOARD_VENV)/bin/python

.PHONY: setup board-setup system demo test test-host test-board clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[all,test]'
	touch $@

board-setup: $(BOARD_VENV)/.installed

$(BOARD_VENV)/.installed: Makefile
	python3 -m venv $(BOARD_VENV)
	$(BOARD_PY) -m pip install -q --upgrade pip
	$(BOARD_PY) -m pip install -q 'pynq==4.0.0' 'pytest>=7' 'hypothesis>=6' 'soundfile>=0.12' 'soxr>=0.3' 'threadpoolctl>=3'
	touch $@

system:
	./scripts/install-system-packages.sh

demo: setup
	$(VENV)/bin/edge-asr demo

test: system setup board-setup
	$(PY) -m ruff check edge_asr tests benchmarks examples scripts
	$(PY) -m pytest
	$(BOARD_PY) -m pytest tests/board

test-host: setup
	$(PY) -m pytest

test-board: board-setup
	$(BOARD_PY) -m pytest tests/board

clean:
	rm -rf $(VENV) $(BOARD_VENV) build *.egg-info .pytest_cache
