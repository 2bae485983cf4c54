# Set-up and the course's two main jobs. Every target creates .venv when it is missing.
#   make course   execute every notebook (quick profile on a CPU) into build/, print the results table
#   make test     unit tests and nbval on every notebook
#   make lab      JupyterLab on notebooks/
#   make store-outputs  copy the notebooks executed by `make course` back into notebooks/
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
export NUMBA_CACHE_DIR := $(CURDIR)/data/cache/numba
export COURSE_HEADLESS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install course store-outputs test unit lab clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# Keep a torch that is already installed (e.g. a CUDA build); else pin the CPU build.
	@# (grep hides one harmless warning per package from this machine's pip configuration)
	@pin=$$($(PY) -c "import torch" 2>/dev/null || echo "-c constraints.txt"); \
	$(PY) -m pip install -q $$pin -e ".[dev]" 2>&1 | grep -v "is ignored: it is neither"; \
	test $${PIPESTATUS[0]} -eq 0
	@$(PY) -c "import course_utils, torch, nbval; print('installed: torch', torch.__version__)"
	@touch $@

install: $(VENV)/.installed

course: install
	@mkdir -p build/notebooks
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		$(PY) -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 --ExecutePreprocessor.record_timing=False \
			--output-dir build/notebooks "$$nb" || exit 1; \
		$(PY) -m jupyter nbconvert --to html --output-dir build/notebooks "build/notebooks/$$(basename $$nb)" || exit 1; \
	done
	@$(PY) -m course_utils.results

test: install
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 -p no:cacheprovider $(NOTEBOOKS)

# After `make course`: keep the executed notebooks' outputs in notebooks/ (what nbval compares against).
store-outputs:
	@for nb in $(NOTEBOOKS); do cp "build/notebooks/$$(basename $$nb)" "$$nb" && echo "stored $$nb"; done

unit: install
	$(PY) -m pytest -q tests

lab: install
	$(PY) -m jupyter lab --notebook-dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

clean:
	rm -rf build
