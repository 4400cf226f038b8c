# dmrnet: one entry point for set-up, tests, the demo and the paper's experiments.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed

.PHONY: venv test demo params clean-venv
venv: $(STAMP)

# Idempotent: the stamp is newer than every file that defines the environment.
$(STAMP): setup.py requirements.txt requirements-test.txt $(wildcard */__init__.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -r requirements.txt -r requirements-test.txt
	$(PIP) install -q --no-deps onnxruntime==1.16.3
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

test: venv
	$(PY) -m pytest -q tests

params: venv
	$(PY) tools/params.py

clean-venv:
	rm -rf $(VENV)
