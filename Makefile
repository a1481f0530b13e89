# Two commands do everything on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv browser demo test soak bench bench-peers clean

# Benchmarks (never part of `make test`): see docs/performance.md. BENCH_* variables tune them.
BENCH_ITEMS ?= 5000
PEERS_VENV  := bench/.peers-venv
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SUDO_QUIET  := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

# setup.py, pvc/_walk.c, pvc/_pages.c and pvc/_files.c: the C extensions (the stat walk, pages read from their bytes,
# the file creation loop of restore), built in place by the editable install. Its compat mode puts the checkout on
# sys.path (a .pth line) instead of installing an import hook, which costs every pvc process ~10 ms at start (it
# imports pathlib, urllib.parse and importlib.util): a wheel install has no hook, and the benchmarks measure pvc as
# one would run it. (The Makefile is a prerequisite: a change of how pvc is installed reinstalls it.)
$(STAMP): Makefile pyproject.toml setup.py pvc/_walk.c pvc/_pages.c pvc/_files.c
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# The headless browser tests/test_graph.py opens the lineage page in (Debian's chromium package). If it cannot be
# installed (no apt, no sudo without a password), the suite still runs and that one test says it was skipped.
browser:
	@command -v chromium >/dev/null || $(SUDO_QUIET) apt-get install -y chromium >/dev/null 2>&1 || \
	  { $(SUDO_QUIET) apt-get update >/dev/null 2>&1 && $(SUDO_QUIET) apt-get install -y chromium >/dev/null 2>&1; } || \
	  echo "make: chromium could not be installed; the browser test of tests/test_graph.py will be skipped"

test: $(STAMP) browser
	$(BIN)/python -m pytest

# The long versions of the reliability battery (docs/reliability.md): 200 kills each of commit and gc, 4 x 25
# concurrent commits, 500 byte flips, 2000 fuzz examples per decoder, 600 crafted versions through every read
# command. Each battery test prints a BATTERY summary line.
soak: $(STAMP)
	PVC_SOAK=1 $(BIN)/python -m pytest -s --durations=0 tests/test_battery.py tests/test_hostile.py tests/test_fuzz_commands.py

bench: $(STAMP)
	BENCH_ITEMS=$(BENCH_ITEMS) $(BIN)/python -m bench

# Installs restic (system package manager) and DVC (its own venv), then runs the benchmark with them.
bench-peers: $(STAMP)
	command -v restic >/dev/null || $(SUDO) apt-get install -y restic || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y restic; }
	test -x $(PEERS_VENV)/bin/dvc || { $(PYTHON) -m venv $(PEERS_VENV) && \
	  $(PEERS_VENV)/bin/python -m pip install --quiet --upgrade pip; }
	$(PEERS_VENV)/bin/python -c 'import dvc_s3' 2>/dev/null || $(PEERS_VENV)/bin/python -m pip install --quiet 'dvc[s3]'  # S3 remotes
	BENCH_ITEMS=$(BENCH_ITEMS) BENCH_PEERS=1 $(BIN)/python -m bench

clean:
	rm -rf $(VENV) demo build *.egg-info .pytest_cache .hypothesis pvc/*.so
