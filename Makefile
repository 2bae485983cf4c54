# Set-up and the course's two main jobs. Every target creates .venv when it is missing, and `course` and
# `test` fetch the speech of notebooks 04 and 05 when it is missing (apt-get download, no root).
#   make course   execute every notebook (quick profile on a CPU) into build/, print the results table
#   make test     unit tests and nbval on every notebook
#   make lab      JupyterLab on notebooks/
#   make store-outputs  copy the notebooks executed by `make course` back into notebooks/
# `course` and `test` run with COURSE_PROFILE=quick COURSE_DEVICE=cpu (what the stored outputs hold) unless
# you set them, e.g. `make course COURSE_PROFILE=full COURSE_DEVICE=cuda` on a GPU.
# Checks of the other ways students use the course:
#   make colab-sim     the wheel in a fresh venv, each notebook run alone in an empty folder (as on Colab)
#   make smoke-full    every notebook in the full profile (paper sizes) on the CPU, 2 steps per training
#   make browser-test  JupyterLab in headless Chromium: the sampling control of 01, the studio of 03
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
export NUMBA_CACHE_DIR := $(CURDIR)/data/cache/numba
export COURSE_HEADLESS := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install speech course store-outputs test unit lab clean colab-sim smoke-full browser-test

# The stored outputs are quick-profile CPU runs: nbval and `make course` use that unless told otherwise.
course test: export COURSE_PROFILE ?= quick
course test: export COURSE_DEVICE ?= cpu

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

# The Debian speaker of notebooks 04 and 05: found where it is installed, else fetched into the data cache
# (apt-get download + dpkg -x, no root); without apt, it says how to get the speech and the rest goes on.
speech: install
	@$(PY) -m course_utils.speech --fetch

course: install speech
	@mkdir -p build/notebooks
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		$(PY) -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 --ExecutePreprocessor.record_timing=False \
			--output-dir build/notebooks "$$nb" || exit 1; \
		$(PY) -m jupyter nbconvert --to html --output-dir build/notebooks "build/notebooks/$$(basename $$nb)" || exit 1; \
	done
	@$(PY) -m course_utils.results

# nbval runs NBVAL_WORKERS notebooks at a time (pytest-xdist, one notebook per worker), each on
# OMP_NUM_THREADS threads (default 1): much of a notebook is one-threaded (sampling loops, PESQ, ViSQOL).
NBVAL_WORKERS ?= 2
test: install speech
	$(PY) -m pytest -q tests
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -n $(NBVAL_WORKERS) --dist loadfile --nbval \
		--nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 -p no:cacheprovider $(NOTEBOOKS)

# After `make course`: keep the executed notebooks' outputs in notebooks/ (what nbval compares against).
store-outputs:
	@for nb in $(NOTEBOOKS); do cp "build/notebooks/$$(basename $$nb)" "$$nb" && echo "stored $$nb"; done

unit: install
	$(PY) -m pytest -q tests

lab: install
	$(PY) -m jupyter lab --notebook-dir=notebooks $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# Colab, simulated: the package as a wheel in a fresh venv (torch pinned by constraints.txt to the local CPU
# build), each notebook copied into an empty folder and executed there (quick profile, 20 steps per training).
colab-sim: install speech
	$(PY) scripts/simulate_colab.py

# The full profile end to end on the CPU: paper-size models, COURSE_MAX_STEPS updates per training,
# evaluation on capped subsets; executed notebooks, checkpoints and results go to build/smoke-full/.
smoke-full: export COURSE_PROFILE := full
smoke-full: export COURSE_DEVICE ?= cpu
smoke-full: export COURSE_MAX_STEPS ?= 2
smoke-full: export COURSE_BUILD_DIR := $(CURDIR)/build/smoke-full
smoke-full: install speech
	@rm -rf build/smoke-full && mkdir -p build/smoke-full
	@start=$$(date +%s); for nb in $(NOTEBOOKS); do \
		t=$$(date +%s); \
		$(PY) -m jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
			--output-dir build/smoke-full "$$nb" 2>&1 | grep -v "Kernel is running over TCP"; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; \
		echo "== $$nb: full profile, $$COURSE_MAX_STEPS steps per training, $$(( $$(date +%s) - t )) s"; \
	done; echo "smoke-full: every notebook ran in $$(( $$(date +%s) - start )) s"

# JupyterLab in a real browser (Debian's chromium, driven by playwright); screenshots in build/browser/.
browser-test: install
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && { apt-get install -y -qq --no-install-recommends chromium \
		|| { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }; }; } \
		|| { echo "browser-test needs Debian's chromium: sudo apt-get install chromium"; exit 1; }
	$(PY) scripts/browser_test.py

clean:
	rm -rf build
