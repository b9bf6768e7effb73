# Two commands on a fresh machine with only Python:
#   make demo   run a bundled model on a bundled input stream, print latency
#   make test   run every test
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.demo-installed
# what each install must be able to import afterwards
DEV_IMPORTS := edgernn, numba, onnx, onnxruntime, torch, serial, paho.mqtt, prometheus_client
DEMO_IMPORTS := edgernn, numba, serial, soundfile, matplotlib

.PHONY: demo test lint bench clean venv

# $(call install,EXTRA,MODULES): create .venv if missing, install edgernn[EXTRA] into it,
# check that MODULES import, then touch the stamp ($@)
define install
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(VPY) -m pip install -q -e '.[$(1)]' 2>&1 | grep -v "is ignored" || true
	$(VPY) -c "import $(2)"
	touch $@
endef

$(STAMP): pyproject.toml
	$(call install,dev,$(DEV_IMPORTS))

$(DEMO_STAMP): pyproject.toml
	$(call install,demo,$(DEMO_IMPORTS))

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
