# threatmesh: `make run` starts a node with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TM := $(VENV)/bin/threatmesh
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test bench lint clean

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

# pytest exits 5 when it collected no test; that is not a failure of the code.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: $(STAMP)
	$(PY) bench/ingest.py

lint: $(STAMP)
	$(PY) -m mypy src/threatmesh

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .hypothesis
