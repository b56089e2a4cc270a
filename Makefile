# threatmesh: `make run` starts a node with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TM := $(VENV)/bin/threatmesh
STAMP := $(VENV)/.installed-stamp

# Debian packages the test suite uses (real tools as judges, browsers, servers).
# Installed by `make test` when running as root (as CI does); otherwise listed,
# and the tests that need them skip with a reason. Pango is what WeasyPrint renders PDF briefs with.
DEBIAN_PACKAGES := bind9-utils poppler-utils fonts-dejavu-core chromium libpango-1.0-0 libpangoft2-1.0-0

.PHONY: install system-deps run test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Creates the node on first use (default home ./.threatmesh, or THREATMESH_HOME),
# loads the generated demo data set and serves on 127.0.0.1.
run: $(STAMP)
	$(TM) init --exist-ok --name "threatmesh demo node"
	$(TM) demo
	$(TM) serve

system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "note: sudo apt-get install$$missing for the full suite; tests that need them will skip"; fi; \
	fi

# pytest exits 5 when it collected no test; that is not a failure of the code.
test: $(STAMP) system-deps
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(PY) bench/ingest.py
	$(PY) bench/match.py --scale 0.1

lint: $(STAMP)
	$(PY) -m mypy src/threatmesh

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .hypothesis
