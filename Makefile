# Two commands do everything on a fresh machine:
#   make demo   -> set up .venv, fetch the offline weights, run the demo (runs/demo/index.html)
#   make test   -> set up .venv, fetch the offline weights, run the test suite
PYTHON ?= python3
VENV   ?= .venv
# REQS=requirements-gpu.txt installs tensorflow[and-cuda] and onnxruntime-gpu instead
REQS   ?= requirements.txt
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED := 1

.PHONY: demo test weights bench venv clean

$(STAMP): $(REQS) pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r $(REQS)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

weights: $(STAMP)
	$(PY) -m model_zoo fetch

demo: weights
	$(PY) -m demo --out runs/demo

test: weights
	$(PY) -m pytest -q tests

bench: weights
	$(PY) -m benchmarks.foundation

clean:
	rm -rf runs .pytest_cache
