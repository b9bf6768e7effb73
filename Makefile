# Two commands on a fresh machine with only Python:
#   make demo   run a bundled model on a bundled input stream, print latency
#   make test   run every test
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed

.PHONY: demo test lint bench clean venv

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(VPY) -m pip install -q -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	$(VPY) -c "import edgernn, numba, onnx, onnxruntime, torch, serial, paho.mqtt, prometheus_client"
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(VPY) -m pip install -q -e '.[demo]' 2>&1 | grep -v "is ignored" || true
	$(VPY) -c "import edgernn, numba, serial, soundfile, matplotlib"
	touch $(DEMO_STAMP)

venv: $(STAMP)

# the demo installs only what it needs (no torch, no converters)
demo: $(DEMO_STAMP)
	$(VPY) demo.py

test: $(STAMP)
	$(VPY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(VPY) -m pytest -q

lint: $(STAMP)
	$(VPY) -m ruff check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VPY) bench/step_latency.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
